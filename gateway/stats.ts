// Counting the numbers over time (store/stats.ts) without touching a message's path: count() adds
// one to an in-memory map and returns; a timer writes the map every few seconds in one
// transaction of UPSERT-adds (so several processes and machines add to the same rows), and
// close() writes what is left. A message therefore costs no extra database commit: a busy node
// writes one transaction per FLUSH_MS whatever its rate.
//
// Domains: a recipient's domain is counted under its own name only while it is hosted (the live
// config); any other ('' included: a refusal before RCPT, a relay attempt) is counted under ''.
// A sender cannot make rows by inventing domains.
//
// Failure: a write that fails keeps its counts for the next flush (logged, and counted in
// mailmoat_stats_dropped_total only if the map outgrows MAX_KEYS while the database is away).
import { Counter } from 'prom-client';
import type { Logger } from './log.ts';
import { registry } from './metrics.ts';
import { HOUR_MS, type StatKind, type StatRow, type StatsStore } from './store/stats.ts';
import { domainOf } from '../rules/envelope.ts';

const FLUSH_MS = 5_000;
/** Keys held while the database cannot be written: about a day of 50 busy domains. */
const MAX_KEYS = 50_000;
const COMPACT_EVERY_MS = HOUR_MS;
/** The first roll-up a minute after start, so that a node restarted more often than hourly still does it. */
const FIRST_COMPACT_MS = 60_000;

const dropped = new Counter({
  name: 'mailmoat_stats_dropped_total',
  help: 'Counts for the console numbers lost because the database could not be written for long',
  registers: [registry],
});

export interface StatsCounter {
  /** One more `kind` for each hosted domain among the recipients ('' when none is hosted), in this hour. */
  count(kind: StatKind, recipients: readonly string[]): void;
  /** Writes what was counted so far (tests; the timer does it on its own). */
  flush(): Promise<void>;
  /** Stops the timer and writes what is left. */
  close(): Promise<void>;
}

/** The domains a message is counted under: each hosted one once, or '' when it has none. */
export function statDomains(hosted: Record<string, unknown>, recipients: readonly string[]): string[] {
  const domains: string[] = [];
  for (const r of recipients) {
    const d = domainOf(r);
    const key = Object.hasOwn(hosted, d) ? d : '';
    if (!domains.includes(key)) domains.push(key);
  }
  return domains.length > 0 ? domains : [''];
}

export function openStatsCounter(o: {
  store: StatsStore;
  hostedDomains: () => Record<string, unknown>;
  logger?: Logger;
  flushMs?: number;
  now?: () => number;
}): StatsCounter {
  const now = o.now ?? Date.now;
  let pending = new Map<string, StatRow>();
  let running: Promise<void> = Promise.resolve();
  let lastCompact = now() - COMPACT_EVERY_MS + FIRST_COMPACT_MS;
  let warned = false;

  const add = (domain: string, hour: number, kind: StatKind, n: number) => {
    const key = `${domain}\n${hour}\n${kind}`;
    const row = pending.get(key);
    if (row) row.n += n;
    else if (pending.size < MAX_KEYS) pending.set(key, { domain, hour, kind, n });
    else dropped.inc(n);
  };
  const merge = (rows: Iterable<StatRow>) => {
    for (const r of rows) add(r.domain, r.hour, r.kind, r.n);
  };

  async function write(): Promise<void> {
    const rows = [...pending.values()];
    pending = new Map();
    try {
      await o.store.add(rows);
      warned = false;
    } catch (err) {
      merge(rows);
      if (!warned) o.logger?.warn({ err, keys: pending.size }, 'could not write the console numbers; kept for the next try');
      warned = true;
    }
    if (now() - lastCompact >= COMPACT_EVERY_MS) {
      lastCompact = now();
      await o.store.compact(now()).catch((err: unknown) => o.logger?.warn({ err }, 'could not compact the console numbers'));
    }
  }
  const flush = () => (running = running.then(write));
  const timer = setInterval(() => void flush(), o.flushMs ?? FLUSH_MS);
  timer.unref();

  return {
    count(kind, recipients) {
      const hour = Math.floor(now() / HOUR_MS) * HOUR_MS;
      for (const domain of statDomains(o.hostedDomains(), recipients)) add(domain, hour, kind, 1);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

/** The verdict classes the numbers count as spam or as a virus (the others are in `received` only). */
export function verdictKind(verdictClass: string): StatKind | undefined {
  return verdictClass === 'spam' || verdictClass === 'high-spam' ? 'spam' : verdictClass === 'virus' ? 'virus' : undefined;
}

/**
 * One delivery attempt to one domain: delivered or failed if any recipient was; deferred only
 * the first time (none of its recipients deferred before), so that a message retried for days
 * counts once.
 */
export function countDelivery(
  stats: StatsCounter | undefined,
  results: readonly { recipient: string; outcome: 'delivered' | 'deferred' | 'failed' }[],
  deferredBefore: ReadonlySet<string>,
): void {
  if (!stats) return;
  for (const outcome of ['delivered', 'failed'] as const) {
    const hit = results.filter((r) => r.outcome === outcome).map((r) => r.recipient);
    if (hit.length > 0) stats.count(outcome, hit);
  }
  const deferred = results.filter((r) => r.outcome === 'deferred').map((r) => r.recipient);
  if (deferred.length > 0 && !deferred.some((r) => deferredBefore.has(r))) stats.count('deferred', deferred);
}
