// One summary line per message, written when it reaches a final state (delivered, released,
// bounced, quarantined, refused, held), so that an administrator greps one line for one message,
// as with Postfix's `postfix/smtp[…]: ID: to=<…>, relay=…, delays=…, status=sent (250 …)`:
//
//   01J…: state=delivered from=<bob@sender.test>, client=192.0.2.7, helo=mail.sender.test,
//   to=<alice@example.test> status=sent (127.0.0.1:2525: 250 OK), class=clean score=1.2,
//   delays=0.01/1.2/0.3/1.51, size=2345
//
// delays are seconds: waiting for the scan / scanning / from the verdict to the final state
// (delivery, or the quarantine write) / total; "-" where a part is unknown (a message held before
// its scan ran). The same facts go into a JSON log entry as the `summary` field. This is also
// where the end-to-end histogram is observed, so that it counts exactly what the log shows.
import type { Logger } from './log.ts';
import type { DeliveryRecord, MessageRecord, MetadataStore } from './store/metadata.ts';
import type { Envelope } from './spool/spool.ts';
import type { ScanReport } from '../scanners/types.ts';
import { pipelineMetrics } from './metrics.ts';

/** The final states a summary is written for ("held": kept for an administrator, e.g. poison). */
export type FinalState = 'delivered' | 'released' | 'bounced' | 'quarantined' | 'refused' | 'held';

export interface RecipientSummary {
  to: string;
  /** sent, bounced, deferred (as Postfix says), or the message's state (quarantined, refused, held). */
  status: string;
  reply?: string;
}

export interface MessageSummary {
  id: string;
  state: FinalState;
  from: string;
  client: string;
  helo: string;
  to: RecipientSummary[];
  class: string | null;
  score: number | null;
  /** Seconds: queue wait, scan, delivery (or quarantine), total; null where unknown. */
  delays: { queue: number | null; scan: number | null; delivery: number | null; total: number };
  size: number;
}

/** The parts of a message's row a summary is made of. */
export type SummaryRecord = Pick<
  MessageRecord,
  'id' | 'receivedAt' | 'clientIp' | 'helo' | 'mailFrom' | 'rcptTo' | 'size' | 'verdict' | 'report' | 'lastReply'
>;
export type SummaryDelivery = Pick<DeliveryRecord, 'recipient' | 'outcome' | 'reply'>;

/**
 * What the verb that finished a message already holds, so that the summary does not read it back
 * right after that verb's commit; a part left out is read from the store.
 */
export interface KnownFacts {
  record?: SummaryRecord;
  deliveries?: readonly SummaryDelivery[];
}

/**
 * The row of a message its scan job has just planned for delivery, as that job wrote it: the
 * envelope as recorded at accept (recipients narrowed to the message's own), and the verdict.
 */
export function scannedRecord(env: Envelope, verdict: { verdict: string; report: ScanReport }): SummaryRecord {
  const { id, receivedAt, clientIp, helo, mailFrom, rcptTo, size } = env;
  return { id, receivedAt, clientIp, helo, mailFrom, rcptTo, size, verdict: verdict.verdict, report: verdict.report, lastReply: null };
}

const DELIVERY_STATUS: Record<DeliveryRecord['outcome'], string> = { delivered: 'sent', failed: 'bounced', deferred: 'deferred' };

const seconds = (ms: number | null | undefined): number | null =>
  ms === null || ms === undefined || !Number.isFinite(ms) ? null : Math.max(0, Math.round(ms / 10) / 100);

/** The facts of a summary from the message's row and its per-recipient results (pure). */
export function summarise(record: SummaryRecord, deliveries: readonly SummaryDelivery[], state: FinalState, finishedAt: number): MessageSummary {
  const timing = record.report?.timing;
  const byRecipient = new Map(deliveries.map((d) => [d.recipient, d]));
  const to = record.rcptTo.map((rcpt): RecipientSummary => {
    const d = byRecipient.get(rcpt);
    if (d) return { to: rcpt, status: DELIVERY_STATUS[d.outcome], reply: d.reply };
    return { to: rcpt, status: state, ...(state === 'refused' && record.lastReply ? { reply: record.lastReply } : {}) };
  });
  return {
    id: record.id,
    state,
    from: record.mailFrom,
    client: record.clientIp,
    helo: record.helo,
    to,
    class: record.verdict,
    score: record.report?.score ? Math.round(record.report.score.total * 10) / 10 : null,
    delays: {
      queue: seconds(timing && timing.startedAt - record.receivedAt),
      scan: seconds(timing && timing.finishedAt - timing.startedAt),
      delivery: seconds(timing && finishedAt - timing.finishedAt),
      total: seconds(finishedAt - record.receivedAt) ?? 0,
    },
    size: record.size,
  };
}

/** Untrusted text (replies) cannot break the line. */
const clean = (s: string) => s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
/** One-word fields (HELO, addresses) have no spaces either: a crafted HELO cannot forge "ID: state=". */
const token = (s: string) => s.replace(/[^\x21-\x7e\u00a0-\uffff]/g, '?');

export function summaryLine(s: MessageSummary): string {
  const d = s.delays;
  const delay = (v: number | null) => (v === null ? '-' : String(v));
  const parts = [
    `${s.id}: state=${s.state} from=<${token(s.from)}>`,
    `client=${token(s.client)}`,
    `helo=${token(s.helo) || '-'}`,
    ...s.to.map((r) => `to=<${token(r.to)}> status=${r.status}${r.reply ? ` (${clean(r.reply)})` : ''}`),
    `class=${s.class ?? '-'} score=${s.score ?? '-'}`,
    `delays=${delay(d.queue)}/${delay(d.scan)}/${delay(d.delivery)}/${delay(d.total)}`,
    `size=${s.size}`,
  ];
  return parts.join(', ');
}

export interface SummaryDeps {
  store: MetadataStore;
  logger: Logger;
  now?: () => number;
}

/**
 * Logs the message's one summary line. Never throws: the message has already reached its state,
 * and a failing log read must not make its job run again (it is logged as a warning instead).
 */
export async function logSummary(deps: SummaryDeps, id: string, state: FinalState, known: KnownFacts = {}): Promise<void> {
  try {
    const record = known.record ?? (await deps.store.get(id));
    if (!record) return;
    const summary = summarise(record, known.deliveries ?? (await deps.store.deliveries(id)), state, (deps.now ?? Date.now)());
    pipelineMetrics.endToEnd.observe({ state }, summary.delays.total);
    if (state === 'held') pipelineMetrics.poisonHeld.inc();
    deps.logger.info({ summary }, summaryLine(summary));
  } catch (err) {
    deps.logger.warn({ id, err }, 'could not write the message summary');
  }
}
