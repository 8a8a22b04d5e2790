// The Numbers page, the API and the daily summary read the same counters (gateway/store/stats.ts):
// the windows offered (1 day by hour, 7 and 30 days by day, UTC), whose numbers a user may read,
// and the rows as buckets and totals.
import type { Account } from '../../gateway/store/accounts.ts';
import { DAY_MS, HOUR_MS, type StatKind, type StatRow, type StatsScope, type StatsStore } from '../../gateway/store/stats.ts';
import type { Category } from './charts.ts';

export const RANGES = {
  '1d': { label: '1 day', bucketMs: HOUR_MS, buckets: 24 },
  '7d': { label: '7 days', bucketMs: DAY_MS, buckets: 7 },
  '30d': { label: '30 days', bucketMs: DAY_MS, buckets: 30 },
} as const;
export type RangeKey = keyof typeof RANGES;

/** The columns of every numbers table, in order, with the chart colours. */
export const KIND_COLUMNS: (Category & { key: StatKind })[] = [
  { key: 'received', label: 'mail in', color: '#3f8f3f' },
  { key: 'spam', label: 'spam', color: '#e0a800' },
  { key: 'virus', label: 'virus', color: '#8e44ad' },
  { key: 'refused', label: 'refused at SMTP', color: '#2c7be5' },
  { key: 'quarantined', label: 'held', color: '#a52a6a' },
  { key: 'delivered', label: 'delivered', color: '#00838f' },
  { key: 'deferred', label: 'deferred', color: '#e8710a' },
  { key: 'failed', label: 'failed', color: '#d9534f' },
];

export type Counts = Partial<Record<StatKind, number>>;

export interface Window {
  since: number;
  until: number;
  bucketMs: number;
  buckets: number;
}

/** The window of a range ending with the current hour (1 day) or the current day. */
export function windowOf(range: RangeKey, now: number): Window {
  const r = RANGES[range];
  const until = Math.floor(now / r.bucketMs) * r.bucketMs + r.bucketMs;
  return { since: until - r.buckets * r.bucketMs, until, bucketMs: r.bucketMs, buckets: r.buckets };
}

const add = (c: Counts, kind: StatKind, n: number) => {
  c[kind] = (c[kind] ?? 0) + Number(n);
};

/** One entry per bucket of the window (empty buckets included), oldest first. */
export function byBucket(rows: StatRow[], w: Window): { start: number; label: string; counts: Counts }[] {
  const out = Array.from({ length: w.buckets }, (_, i) => {
    const start = w.since + i * w.bucketMs;
    const d = new Date(start);
    const label = w.bucketMs < DAY_MS ? `${String(d.getUTCHours()).padStart(2, '0')}h` : d.toISOString().slice(5, 10);
    return { start, label, counts: {} as Counts };
  });
  for (const r of rows) {
    const i = Math.floor((Number(r.hour) - w.since) / w.bucketMs);
    if (i >= 0 && i < out.length) add(out[i]!.counts, r.kind, r.n);
  }
  return out;
}

/** Totals per domain ('' sorts last: mail no hosted domain owns), and over all of them. */
export function byDomain(rows: StatRow[]): { domains: { domain: string; counts: Counts }[]; total: Counts } {
  const map = new Map<string, Counts>();
  const total: Counts = {};
  for (const r of rows) {
    const c = map.get(r.domain) ?? {};
    add(c, r.kind, r.n);
    map.set(r.domain, c);
    add(total, r.kind, r.n);
  }
  const domains = [...map]
    .map(([domain, counts]) => ({ domain, counts }))
    .sort((a, b) => ((a.domain === '') !== (b.domain === '') ? (a.domain === '' ? 1 : -1) : a.domain.localeCompare(b.domain)));
  return { domains, total };
}

/** How the '' domain is shown. */
export const OTHER_DOMAIN = '(no hosted recipient)';

/**
 * Whose numbers a user reads: a superadmin every domain (and '', mail no hosted domain owns), a
 * domain admin only theirs; `asked` narrows to one domain ('*' or undefined: all of them). Another
 * domain is refused with the same answer as one that does not exist; end users have no numbers.
 */
export function numbersScope(
  account: Account,
  hosted: string[],
  asked: string | undefined,
): { denied: string } | { scope: StatsScope; domain: string | undefined; mine: string[] } {
  const all = account.role === 'superadmin';
  const mine = all ? [...[...hosted].sort(), ''] : account.domains;
  if (account.role === 'user') return { denied: 'end users have no numbers page' };
  if (asked !== undefined && asked !== '*' && !mine.includes(asked)) return { denied: 'domain outside the user’s scope' };
  const domain = asked === '*' ? undefined : asked;
  return { scope: domain !== undefined ? { domains: [domain] } : all ? { all: true } : { domains: mine }, domain, mine };
}

/** The one query behind the page and the API: a range's rows, as buckets and as domain totals. */
export async function readNumbers(stats: StatsStore | undefined, scope: StatsScope, range: RangeKey, now: number) {
  const window = windowOf(range, now);
  const rows = stats ? await stats.series(scope, window) : [];
  return { window, rows, buckets: byBucket(rows, window), ...byDomain(rows) };
}
