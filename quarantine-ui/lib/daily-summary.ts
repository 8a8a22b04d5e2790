// The daily summary mail: each morning (console.dailySummary.hourUtc, UTC) every domain admin
// gets the numbers of the day before for their domains, and every superadmin one for all
// domains: mail in, spam, viruses, refused at SMTP, held, delivered, deferred, failed, the
// messages in quarantine now, the top spam senders, and a link to the console. HTML with a text
// part. It goes to accounts whose username is a mail address (a console account has no other),
// unless the account turned it off (on the Numbers page: routes/stats.ts).
//
// Once per day for the whole cluster: every console runs the scheduler, and the first to claim
// the day (one INSERT … ON CONFLICT DO NOTHING in daily_summary_runs) sends; the others see the
// claim taken. A claimed run that fails part-way is logged, not retried (no second copy).
import type { Config } from '../../gateway/config/schema.ts';
import type { Logger } from '../../gateway/log.ts';
import type { Account, AccountStore } from '../../gateway/store/accounts.ts';
import type { MetadataStore, RecipientScope } from '../../gateway/store/metadata.ts';
import { DAY_MS, type StatsScope, type StatsStore } from '../../gateway/store/stats.ts';
import { esc } from './charts.ts';
import { byDomain, KIND_COLUMNS, OTHER_DOMAIN, type Counts } from './numbers.ts';
import { sendGenerated, type Submit } from './mail-out.ts';
import { displayText } from './text.ts';

export interface DailySummaryDeps {
  config: Config;
  store: MetadataStore;
  accounts: AccountStore;
  stats: StatsStore;
  publicUrl: string;
  logger: Logger;
  now(): number;
  /** Hands a generated message to the gateway for delivery (the digests' submit, lib/mail-out.ts). */
  submit: Submit;
}

const ADDRESS = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/** Whether the summary can be mailed to this account: at its username, when that is an address (one rule for the mail and the Numbers page). */
export function summaryMailable(account: Pick<Account, 'username'>): boolean {
  return ADDRESS.test(account.username);
}
const TOP_SENDERS = 5;

interface Summary {
  day: string;
  domains: { label: string; counts: Counts }[];
  total: Counts;
  held: number;
  senders: { sender: string; n: number }[];
}

/** The UTC day before `now`, as "YYYY-MM-DD" and its start. */
export function dayBefore(now: number): { day: string; start: number } {
  const start = Math.floor(now / DAY_MS) * DAY_MS - DAY_MS;
  return { day: new Date(start).toISOString().slice(0, 10), start };
}

async function summarise(deps: DailySummaryDeps, account: Account, start: number, day: string): Promise<Summary> {
  const all = account.role === 'superadmin';
  const statsScope: StatsScope = all ? { all: true } : { domains: account.domains };
  const scope: RecipientScope = all ? { all: true } : { domains: account.domains, addresses: [] };
  const rows = await deps.stats.series(statsScope, { since: start, until: start + DAY_MS, bucketMs: DAY_MS });
  const { domains, total } = byDomain(rows);
  // A domain admin's domains are all listed, also on a day without mail.
  const listed = all ? domains : account.domains.map((d) => domains.find((x) => x.domain === d) ?? { domain: d, counts: {} });
  const held = (await deps.store.statusCounts(scope)).quarantined ?? 0;
  const senders = await deps.store.topSenders(scope, { since: start, until: start + DAY_MS, verdicts: ['spam', 'high-spam'], limit: TOP_SENDERS });
  return { day, domains: listed.map((d) => ({ label: d.domain === '' ? OTHER_DOMAIN : d.domain, counts: d.counts })), total, held, senders };
}

function textPart(s: Summary, hostname: string, link: string): string {
  const line = (c: Counts) => KIND_COLUMNS.map((k) => `${k.label} ${c[k.key] ?? 0}`).join(', ');
  return [
    `Mail at ${hostname} on ${s.day} (UTC):`,
    '',
    `All: ${line(s.total)}`,
    ...s.domains.map((d) => `${d.label}: ${line(d.counts)}`),
    '',
    `In quarantine now: ${s.held}`,
    '',
    'Top spam senders:',
    ...(s.senders.length ? s.senders.map((x) => `  ${x.n}  ${displayText(x.sender || '<>', 200)}`) : ['  none']),
    '',
    `Console: ${link}`,
    `Numbers over time: ${link}stats?range=30d`,
    `You get this mail as an administrator of these domains; turn it off on the Numbers page: ${link}stats`,
  ].join('\r\n');
}

function htmlPart(s: Summary, hostname: string, link: string): string {
  const head = `<tr><th>Domain</th>${KIND_COLUMNS.map((k) => `<th>${esc(k.label)}</th>`).join('')}</tr>`;
  const row = (label: string, c: Counts) => `<tr><td>${esc(label)}</td>${KIND_COLUMNS.map((k) => `<td align="right">${c[k.key] ?? 0}</td>`).join('')}</tr>`;
  const senders = s.senders.length
    ? `<ol>${s.senders.map((x) => `<li>${esc(displayText(x.sender || '<>', 200))} (${x.n})</li>`).join('')}</ol>`
    : '<p>none</p>';
  return `<!doctype html><html><body>
<h1>Mail at ${esc(hostname)} on ${esc(s.day)} (UTC)</h1>
<table border="1" cellpadding="4" cellspacing="0"><thead>${head}</thead><tbody>${row('All', s.total)}${s.domains.map((d) => row(d.label, d.counts)).join('')}</tbody></table>
<p>In quarantine now: <b>${s.held}</b></p>
<h2>Top spam senders</h2>${senders}
<p><a href="${esc(link)}">Open the console</a> · <a href="${esc(link)}stats?range=30d">Numbers over time</a></p>
<p>You get this mail as an administrator of these domains; turn it off on the <a href="${esc(link)}stats">Numbers page</a>.</p>
</body></html>`;
}

/** Composes and submits the summaries of `day` (default: the day before now); no claim (see runDailySummary). */
export async function sendDailySummaries(deps: DailySummaryDeps, at = dayBefore(deps.now())): Promise<{ sent: number; recipients: string[] }> {
  const result = { sent: 0, recipients: [] as string[] };
  const off = await deps.stats.summaryOptOuts();
  for (const account of await deps.accounts.list()) {
    if (account.disabled || account.role === 'user' || !summaryMailable(account) || off.has(account.id)) continue;
    if (account.role === 'domainadmin' && account.domains.length === 0) continue;
    const to = account.username;
    try {
      const s = await summarise(deps, account, at.start, at.day);
      const subject = `Mail summary for ${at.day}: ${s.total.received ?? 0} in, ${s.total.spam ?? 0} spam, ${s.total.refused ?? 0} refused`;
      await sendGenerated(deps, {
        to,
        subject,
        text: textPart(s, deps.config.hostname, deps.publicUrl),
        html: htmlPart(s, deps.config.hostname, deps.publicUrl),
      });
      result.sent++;
      result.recipients.push(to);
    } catch (err) {
      deps.logger.error({ err, to }, 'daily summary could not be queued');
    }
  }
  return result;
}

/** One scheduler tick: after hourUtc, the first console to claim yesterday sends it. */
export async function runDailySummary(deps: DailySummaryDeps): Promise<{ sent: number; recipients: string[] } | null> {
  const now = deps.now();
  if (new Date(now).getUTCHours() < deps.config.console.dailySummary.hourUtc) return null;
  const at = dayBefore(now);
  if (!(await deps.stats.claimSummaryRun(at.day))) return null;
  const r = await sendDailySummaries(deps, at);
  deps.logger.info({ day: at.day, sent: r.sent }, 'daily summaries queued');
  return r;
}

export function startDailySummaryScheduler(deps: DailySummaryDeps, everyMs = 5 * 60_000): { stop(): void } {
  const timer = setInterval(() => void runDailySummary(deps).catch((err: unknown) => deps.logger.error({ err }, 'daily summary run failed')), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
