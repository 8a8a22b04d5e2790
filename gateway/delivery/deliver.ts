// The delivery worker: sends the scanned copy of a message to each recipient domain's next hops
// with the original envelope. Per-recipient results are recorded, so a retry never sends again to
// a recipient a downstream already accepted. A dead host or a 4xx moves on to the next hop, then
// the message is retried with backoff until its queue lifetime ends; a 5xx fails that recipient.
// Failed recipients are reported to the sender in one DSN (never to the null sender). Nothing is
// removed from the spool before every recipient has a final outcome, and a message that failed
// keeps its body in the message store, so that nothing is lost.
import { createReadStream } from 'node:fs';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Config } from '../config/schema.ts';
import type { DnsResolver } from '../dns/resolver.ts';
import type { Logger } from '../log.ts';
import type { Envelope, Spool } from '../spool/spool.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DeliveryOutcome, MetadataStore } from '../store/metadata.ts';
import { RetryLater, type JobContext, type JobQueue } from '../store/queue.ts';
import { domainOf } from '../../rules/envelope.ts';
import { decideDeferral } from '../../rules/retry.ts';
import { HostLimiter, routeFor, type Hop } from './transport.ts';
import { sendNotification } from './notify.ts';
import type { DeliveryRecorder } from './recorded.ts';
import { workerMetrics } from '../metrics.ts';
import { onwardRecipients } from '../../rules/backup-hop.ts';

export interface DeliveryDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  /** Where a message that could not be delivered is kept (the quarantine store). */
  keep: BlobStore;
  queue: JobQueue;
  resolver: DnsResolver;
  limiter: HostLimiter;
  logger: Logger;
  now?: () => number;
}

/** The delivery worker's: results are recorded through the recorder (recorded.ts), never lost to a failing store. */
export interface DeliveryWorkerDeps extends DeliveryDeps {
  recorder: DeliveryRecorder;
}

/** The event kind that marks a message released from quarantine (its delivery ends as 'released'). */
export const RELEASE_EVENT = 'released';
const DELAY_WARNED_EVENT = 'delay-warned';
/** Written each time a retry is scheduled; its text starts with "next attempt <ISO time>". */
export const DEFERRED_EVENT = 'deferred';
/** How long a delivery waits for a connection slot or rate budget before deferring. */
const LIMIT_WAIT_MS = 30_000;

export interface RecipientResult {
  recipient: string;
  outcome: DeliveryOutcome;
  reply: string;
}

export async function handleDeliverJob(deps: DeliveryWorkerDeps, job: JobContext): Promise<void> {
  const { spool, store, config, logger, recorder } = deps;
  const now = deps.now ?? Date.now;
  const id = job.messageId;
  // Nothing is sent unless its result can be recorded: a store that refuses writes pauses delivery.
  await recorder.beforeAttempt(id, job.attempt);
  const envelope = await spool.readEnvelope(id);
  if (!envelope || !(await spool.hasOutput(id))) {
    logger.debug({ id }, 'delivery job for a message no longer in the spool: already handled');
    return;
  }
  const final = new Set((await store.deliveries(id)).filter((d) => d.outcome !== 'deferred').map((d) => d.recipient));
  const inJournal = recorder.doneInJournal(id);
  const pending = envelope.rcptTo.filter((r) => !final.has(r) && !inJournal.has(r));
  for (const [domain, recipients] of groupBy(pending, domainOf)) {
    const results = await deliverToDomain(deps, envelope, domain, recipients);
    for (const r of results) {
      workerMetrics.deliveries.inc({ outcome: r.outcome });
      logger.info({ id, rcpt: r.recipient, outcome: r.outcome, reply: r.reply }, 'delivery attempt');
    }
    await recorder.record(id, results);
  }
  const deferred = (await store.deliveries(id)).filter((d) => d.outcome === 'deferred');
  if (deferred.length > 0) {
    const decision = decideDeferral(
      { receivedAt: envelope.receivedAt, now: now(), attempt: job.attempt, alreadyWarned: (await store.events(id)).some((e) => e.kind === DELAY_WARNED_EVENT) },
      config.delivery,
    );
    if (decision.action === 'retry' && !job.isLastAttempt) {
      await store.transition(id, ['delivering', 'releasing', 'deferred'], 'deferred', deferred[0].reply);
      await store.addEvent(id, DEFERRED_EVENT, `next attempt ${new Date(now() + decision.delayMs).toISOString()}: ${deferred.length} recipient(s), ${deferred[0].reply}`);
      if (decision.warnSender) {
        await notifySender(deps, envelope, 'delayed', deferred);
        await store.addEvent(id, DELAY_WARNED_EVENT, `delay warning sent to <${envelope.mailFrom}>`);
      }
      throw new RetryLater(`${deferred.length} recipient(s) deferred: ${deferred[0].reply}`, decision.delayMs);
    }
    const reason = decision.action === 'give-up' ? decision.reason : `gave up after ${job.attempt} attempts`;
    for (const d of deferred) await store.recordDelivery(id, d.recipient, 'failed', `${reason}; last reply: ${d.reply}`);
  }
  await finishMessage(deps, id);
}

/**
 * Every recipient has a final outcome: record the message's state, bounce what failed, and
 * clear it from the spool. Also used by the queue operations (bounce, delete by an admin).
 */
export async function finishMessage(deps: DeliveryDeps, id: string): Promise<void> {
  const { spool, store, keep, logger } = deps;
  const envelope = await spool.readEnvelope(id);
  const results = await store.deliveries(id);
  const failed = results.filter((d) => d.outcome === 'failed');
  if (failed.length > 0) {
    await keep.put(id, spool.outputPath(id));
    if (envelope) await notifySender(deps, envelope, 'failed', failed);
    await store.transition(id, ['delivering', 'releasing', 'deferred'], 'failed', `${failed[0].recipient}: ${failed[0].reply}`);
    await store.addEvent(id, 'failed', failed.map((f) => `${f.recipient}: ${f.reply}`).join('; '));
  } else {
    const wasReleased = (await store.events(id)).some((e) => e.kind === RELEASE_EVENT);
    await store.transition(id, ['delivering', 'releasing', 'deferred'], wasReleased ? 'released' : 'delivered', results.at(-1)?.reply);
    await store.addEvent(id, 'delivered', results.map((r) => `${r.recipient}: ${r.reply}`).join('; '));
  }
  await spool.remove(id);
  logger.info({ id, delivered: results.length - failed.length, failed: failed.length }, 'message done');
}

/** A DSN to the envelope sender, unless it is the null sender or every recipient said NOTIFY=NEVER (or lacks this kind). */
async function notifySender(deps: DeliveryDeps, envelope: Envelope, kind: 'failed' | 'delayed', rows: { recipient: string; reply: string }[]) {
  const wanted = kind === 'failed' ? 'FAILURE' : 'DELAY';
  const notify = (r: string) => envelope.dsn?.recipients?.[r]?.notify;
  const recipients = rows.filter((r) => {
    const n = notify(r.recipient);
    return n === undefined || n.includes(wanted);
  });
  if (envelope.mailFrom === '' || recipients.length === 0) return;
  const id = await sendNotification(deps, envelope, kind, recipients.map((r) => ({ ...r, originalRecipient: envelope.dsn?.recipients?.[r.recipient]?.orcpt })));
  await deps.store.addEvent(envelope.id, kind === 'failed' ? 'bounced' : 'delay-notice', `DSN ${id} to <${envelope.mailFrom}> for ${recipients.map((r) => r.recipient).join(', ')}`);
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

async function deliverToDomain(deps: DeliveryDeps, envelope: Envelope, domain: string, recipients: string[]): Promise<RecipientResult[]> {
  const route = await routeFor(domain, deps.config, deps.resolver);
  if (!route.ok) {
    return recipients.map((recipient) => ({ recipient, outcome: route.temporary ? 'deferred' : 'failed', reply: route.reason }));
  }
  // One transaction per set of DSN parameters, so that each recipient's NOTIFY/ORCPT goes on intact.
  const dsnKey = (r: string) => JSON.stringify(envelope.dsn?.recipients?.[r] ?? {});
  const results: RecipientResult[] = [];
  for (const group of groupBy(recipients, dsnKey).values()) {
    results.push(...(await deliverToHops(deps, envelope, route.hops, group)));
  }
  return results;
}

/** Tries the hops in order; recipients deferred by one hop (or refused, before a backup hop) are offered to the next. */
async function deliverToHops(deps: DeliveryDeps, envelope: Envelope, hops: Hop[], recipients: string[]): Promise<RecipientResult[]> {
  const settled: RecipientResult[] = [];
  let deferred: RecipientResult[] = recipients.map((recipient) => ({ recipient, outcome: 'deferred', reply: 'not tried' }));
  for (const [i, hop] of hops.entries()) {
    if (deferred.length === 0) break;
    const release = await deps.limiter.acquire(hop, LIMIT_WAIT_MS);
    if (!release) {
      deferred = deferred.map((r) => ({ ...r, reply: `${hop.host}:${hop.port}: local connection or rate limit reached` }));
      continue;
    }
    try {
      const results = await sendTransaction(deps, hop, envelope, deferred.map((r) => r.recipient));
      const next = onwardRecipients(results, hops[i + 1]?.backup === true);
      settled.push(...next.settled);
      deferred = next.onward.map((r) => (r.outcome === 'failed' ? { ...r, outcome: 'deferred' as const, reply: `${r.reply} (offered to the backup hop)` } : r));
    } finally {
      release();
    }
  }
  return [...settled, ...deferred];
}

function tlsOptions(hop: Hop) {
  switch (hop.tls) {
    case 'none':
      return { ignoreTLS: true };
    case 'opportunistic':
      // Downstream servers are often the hosted domains' own, with internal certificates.
      return { opportunisticTLS: true, tls: { rejectUnauthorized: false } };
    case 'required':
      return { requireTLS: true, tls: { rejectUnauthorized: false } };
    case 'verified':
      return { requireTLS: true, tls: { rejectUnauthorized: true, servername: hop.host } };
  }
}

/** One SMTP transaction with one host; every recipient gets an outcome. */
function sendTransaction(deps: DeliveryDeps, hop: Hop, envelope: Envelope, recipients: string[]): Promise<RecipientResult[]> {
  const { config, spool } = deps;
  const where = `${hop.host}:${hop.port}`;
  const all = (outcome: DeliveryOutcome, reply: string) => recipients.map((recipient) => ({ recipient, outcome, reply }));
  const rcptDsn = envelope.dsn?.recipients?.[recipients[0]];
  return new Promise((resolve) => {
    const conn = new SMTPConnection({
      host: hop.host,
      port: hop.port,
      name: config.hostname,
      connectionTimeout: config.delivery.connectTimeoutMs,
      greetingTimeout: config.delivery.connectTimeoutMs,
      socketTimeout: 5 * 60_000,
      allowInternalNetworkInterfaces: true,
      ...tlsOptions(hop),
    });
    let done = false;
    const finish = (results: RecipientResult[]) => {
      if (done) return;
      done = true;
      conn.quit();
      resolve(results);
    };
    conn.once('error', (err: Error & { response?: string; responseCode?: number }) =>
      finish(all(outcomeOf(err.responseCode), `${where}: ${describe(err)}`)),
    );
    conn.connect(() => {
      const dsn = envelope.dsn ? { ret: envelope.dsn.ret, envid: envelope.dsn.envid, notify: rcptDsn?.notify, orcpt: rcptDsn?.orcpt } : undefined;
      const smtpEnvelope = { from: envelope.mailFrom === '' ? (false as const) : envelope.mailFrom, to: recipients, dsn };
      conn.send(smtpEnvelope, createReadStream(spool.outputPath(envelope.id)), (err, info) => {
        type Rejection = Error & { recipient?: string; responseCode?: number; response?: string };
        const e = err as (Error & { responseCode?: number; response?: string; rejectedErrors?: Rejection[] }) | null;
        const rejections = (e ? e.rejectedErrors : (info.rejectedErrors as Rejection[] | undefined)) ?? [];
        const rejected = new Map(rejections.map((r) => [r.recipient ?? '', r]));
        finish(
          recipients.map((recipient) => {
            const r = rejected.get(recipient) ?? e;
            if (r) return { recipient, outcome: outcomeOf(r.responseCode), reply: `${where}: ${describe(r)}` };
            return { recipient, outcome: 'delivered', reply: `${where}: ${info.response}` };
          }),
        );
      });
    });
  });
}

/** A reply code of 5xx fails the recipient; 4xx, no reply at all (network) or anything else defers it. */
function outcomeOf(responseCode: number | undefined): DeliveryOutcome {
  return responseCode !== undefined && responseCode >= 500 ? 'failed' : 'deferred';
}

function describe(err: Error & { response?: string }): string {
  return err.response ?? err.message;
}
