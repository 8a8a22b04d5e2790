// The delivery worker: sends the scanned copy of a message to each recipient domain's next hops
// with the original envelope. Per-recipient results are recorded, so a retry never sends again to
// a recipient a downstream already accepted. A dead host or a 4xx moves on to the next hop, then
// the message is retried with backoff until its queue lifetime ends; a 5xx fails that recipient.
// Failed recipients are reported to the sender in one DSN (never to the null sender, and never as
// backscatter: rules/backscatter.ts). A delivery whose next hop or lane has no free slot gives its
// worker slot back and waits in the queue (slots.ts). Nothing is removed from the spool before
// every recipient has a final outcome, and a message that failed keeps its body in the message
// store, so that nothing is lost.
import type { Config } from '../config/schema.ts';
import type { DnsResolver } from '../../core/dns.ts';
import type { Logger } from '../log.ts';
import { headerBlockOf, readHeaderBlock } from '../spool/files.ts';
import type { Envelope, Spool } from '../spool/spool.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DeliveryRecord, MetadataStore } from '../store/metadata.ts';
import type { SummaryRecord } from '../summary.ts';
import { RetryLater, WaitForSlot, type Continuation, type JobContext, type JobQueue } from '../store/queue.ts';
import { runInJobScope } from '../containment.ts';
import { recordFault } from '../poison.ts';
import { domainOf } from '../../rules/envelope.ts';
import { decideDeferral } from '../../rules/retry.ts';
import { decideDsn } from '../../rules/backscatter.ts';
import { countReceived, hopCountFailure, type SelfFacts } from '../../rules/delivery-route.ts';
import { routeFor, type Target } from './transport.ts';
import type { DeliverySlots } from './slots.ts';
import type { ConnectionPool } from './connection-pool.ts';
import { sendToTarget, type RecipientResult } from './smtp-send.ts';
import { DsnRateWindow, sendNotification } from './notify.ts';
import type { DeliveryRecorder } from './recorded.ts';
import { laneOf, pipelineMetrics, workerMetrics } from '../metrics.ts';
import { countDelivery, type StatsCounter } from '../stats.ts';
import { openLedger } from '../ledger/ledger.ts';
import { hasEvent, type EventKind } from '../ledger/events.ts';
import { onwardRecipients } from '../../rules/backup-hop.ts';

export interface DeliveryDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  /** Where a message that could not be delivered is kept (the quarantine store). */
  keep: BlobStore;
  queue: JobQueue;
  resolver: DnsResolver;
  /** Per-host and per-lane delivery slots of this process. */
  slots: DeliverySlots;
  /** Idle downstream connections kept for the next message (connection-pool.ts); none: a connection per message. */
  connections?: ConnectionPool;
  /** DSNs sent per sender domain, for delivery.maxDsnPerDomainPerHour. */
  dsnWindow: DsnRateWindow;
  /** Our names and addresses for loop detection; default: this machine's (transport.ts selfFacts). */
  self?: SelfFacts;
  logger: Logger;
  now?: () => number;
  /** The numbers over time (gateway/stats.ts): delivered, deferred and failed per domain. */
  stats?: StatsCounter;
}

/** The delivery worker's: results are recorded through the recorder (recorded.ts), never lost to a failing store. */
export interface DeliveryWorkerDeps extends DeliveryDeps {
  recorder: DeliveryRecorder;
}

/** The ledger of a delivery: the body of a failed message is kept in `keep`. */
const ledgerOf = (deps: DeliveryDeps) => openLedger({ ...deps, quarantine: deps.keep });

/** Written when a DSN is withheld (backscatter rules, rate limit); its text says why. */
export const DSN_SUPPRESSED_EVENT: EventKind = 'dsn-suppressed';

export type { RecipientResult };

export async function handleDeliverJob(deps: DeliveryWorkerDeps, job: JobContext): Promise<void> {
  const place = deps.slots.tryStartAttempt();
  // Scan jobs making first attempts hold the process's delivery slots: wait in the queue, as for a full host.
  if (!place.ok) throw new WaitForSlot(place.reason, place.retryInMs);
  try {
    await attemptDelivery(deps, job);
  } finally {
    place.release();
  }
}

/**
 * The first delivery attempt of a message its scan job has just planned for delivery (ledger
 * planDeliverHere), made by that scan job: a clean message then costs one job, not two. The same
 * attempt as a deliver job's (attemptDelivery). A message it does not finish goes to the deliver
 * queue as the deliver job making this attempt would have gone on: deferred, after the delay
 * asked (attempt 2 next); delivery paused or a slot busy, likewise; an error, as a fault of
 * attempt 1. With every delivery slot busy nothing is tried and the deliver queue has it now.
 * Throws only if the hand-over fails: the scan job's retry hands it over then (scan.ts).
 * `scanned`: the message's row as that scan job wrote it (its summary line is made from it).
 */
export async function attemptFirstHere(
  deps: DeliveryWorkerDeps,
  envelope: Envelope,
  o: { faultRetryMs: number; isLastAttempt: boolean; scanned?: SummaryRecord },
): Promise<void> {
  const id = envelope.id;
  const ledger = ledgerOf(deps);
  const place = deps.slots.tryStartAttempt();
  if (!place.ok) return ledger.handToDelivery(id);
  const job: JobContext = { messageId: id, attempt: 1, isLastAttempt: o.isLastAttempt, faults: 0 };
  let after: Continuation | undefined;
  try {
    // Its own scope: an error escaping the attempt's callbacks ends this attempt, not the scan job.
    await runInJobScope({ queue: 'deliver', messageId: id }, () => attemptDelivery(deps, job, envelope, o.scanned));
  } catch (err) {
    if (err instanceof WaitForSlot) after = { delayMs: err.delayMs };
    else if (err instanceof RetryLater) after = { delayMs: err.delayMs, attemptsBefore: 1 };
    else {
      await recordFault(deps, 'deliver', { ...job, faults: 1 }, `unexpected error: ${err instanceof Error ? err.message : String(err)}`);
      after = { delayMs: o.faultRetryMs, attemptsBefore: 1, faultsBefore: 1 };
    }
  } finally {
    place.release();
  }
  if (after) await ledger.handToDelivery(id, after);
}

/**
 * One delivery attempt. `first`: the envelope of a message its scan job has just planned for
 * delivery (planDeliverHere moved it from queued: never released, no attempt made before), so
 * not read back from the spool; `scanned`, its row as its scan job wrote it.
 */
async function attemptDelivery(deps: DeliveryWorkerDeps, job: JobContext, first?: Envelope, scanned?: SummaryRecord): Promise<void> {
  const { spool, store, config, logger, recorder } = deps;
  const now = deps.now ?? Date.now;
  const id = job.messageId;
  // Nothing is sent unless its result can be recorded: a store that refuses writes pauses delivery.
  await recorder.beforeAttempt(id, job.attempt);
  const envelope = first ?? (await spool.readEnvelope(id));
  const copy = envelope && (await spool.readOutput(id, READ_ONCE_BYTES));
  if (!envelope || !copy) {
    logger.debug({ id }, 'delivery job for a message no longer in the spool: already handled');
    return;
  }
  const earlier = await store.deliveries(id);
  // A first attempt with no results yet (a fact replayed from the journal would be one) needs no second read to finish.
  const fresh = first !== undefined && earlier.length === 0;
  const final = new Set(earlier.filter((d) => d.outcome !== 'deferred').map((d) => d.recipient));
  const deferredBefore = new Set(earlier.filter((d) => d.outcome === 'deferred').map((d) => d.recipient));
  const inJournal = recorder.doneInJournal(id);
  const pending = envelope.rcptTo.filter((r) => !final.has(r) && !inJournal.has(r));
  const byDomain = groupBy(pending, domainOf);
  for (const [domain, recipients] of byDomain) {
    const stopTimer = pipelineMetrics.delivery.startTimer(laneOf(config.domains, domain));
    const results = await deliverToDomain(deps, envelope, copy, domain, recipients);
    stopTimer({
      outcome: results.every((r) => r.outcome === 'delivered') ? 'delivered' : results.some((r) => r.outcome === 'deferred') ? 'deferred' : 'failed',
    });
    for (const r of results) {
      workerMetrics.deliveries.inc({ outcome: r.outcome });
      // A deferral is news (the message stays queued); a final outcome is in the summary line.
      logger[r.outcome === 'deferred' ? 'info' : 'debug']({ id, rcpt: r.recipient, outcome: r.outcome, reply: r.reply }, 'delivery attempt');
    }
    const finished = byDomain.size === 1 && inJournal.size === 0 && (await finishedInOneStep(deps, id, results, fresh ? { fresh, scanned } : { earlier }));
    if (!finished) await recorder.record(id, results);
    countDelivery(deps.stats, results, deferredBefore);
    if (finished) return;
  }
  const deferred = (await store.deliveries(id)).filter((d) => d.outcome === 'deferred');
  if (deferred.length > 0) {
    const decision = decideDeferral(
      { receivedAt: envelope.receivedAt, now: now(), attempt: job.attempt, alreadyWarned: hasEvent(await store.events(id), 'delay-warned') },
      config.delivery,
    );
    if (decision.action === 'retry' && !job.isLastAttempt) {
      const ledger = ledgerOf(deps);
      await ledger.defer(id, {
        kind: 'deferred',
        nextAttempt: new Date(now() + decision.delayMs).toISOString(),
        recipients: deferred.length,
        reply: deferred[0].reply,
      });
      if (decision.warnSender) {
        await notifySender(deps, envelope, 'delayed', deferred);
        await ledger.note(id, { kind: 'delay-warned', sender: envelope.mailFrom });
      }
      throw new RetryLater(`${deferred.length} recipient(s) deferred: ${deferred[0].reply}`, decision.delayMs);
    }
    const reason = decision.action === 'give-up' ? decision.reason : `gave up after ${job.attempt} attempts`;
    for (const d of deferred) await store.recordDelivery(id, d.recipient, 'failed', `${reason}; last reply: ${d.reply}`);
    deps.stats?.count(
      'failed',
      deferred.map((d) => d.recipient),
    );
  }
  await finishMessage(deps, id);
}

/**
 * Everything pending was delivered in this attempt: the results and the final status in one
 * commit (ledger finishAllDelivered). If that cannot be written (the store refuses writes right
 * after the downstream's 250), the results take the recorder's path (its journal keeps them),
 * then the usual finish: a delivered recipient is never sent the message again either way.
 */
async function finishedInOneStep(
  deps: DeliveryWorkerDeps,
  id: string,
  results: RecipientResult[],
  o: { fresh?: boolean; scanned?: SummaryRecord; earlier?: DeliveryRecord[] },
): Promise<boolean> {
  if (results.length === 0 || results.some((r) => r.outcome !== 'delivered')) return false;
  try {
    return await ledgerOf(deps).finishAllDelivered(id, results, o);
  } catch (err) {
    deps.logger.warn({ id, err }, 'could not record the delivery and the final state in one step; recording them apart');
    return false;
  }
}

/**
 * Every recipient has a final outcome: record the message's state, bounce what failed, and
 * clear it from the spool. Also used by the queue operations (bounce, delete by an admin).
 */
export async function finishMessage(deps: DeliveryDeps, id: string): Promise<void> {
  const { spool } = deps;
  const envelope = await spool.readEnvelope(id);
  await ledgerOf(deps).finish(id, async (failed) => {
    if (envelope) await notifySender(deps, envelope, 'failed', failed);
  });
}

/**
 * A DSN to the envelope sender, unless it is the null sender or every recipient said NOTIFY=NEVER
 * (or lacks this kind), or the backscatter rules withhold it (rules/backscatter.ts): then the
 * message log says why.
 */
async function notifySender(deps: DeliveryDeps, envelope: Envelope, kind: 'failed' | 'delayed', rows: { recipient: string; reply: string }[]) {
  const wanted = kind === 'failed' ? 'FAILURE' : 'DELAY';
  const notify = (r: string) => envelope.dsn?.recipients?.[r]?.notify;
  const recipients = rows.filter((r) => {
    const n = notify(r.recipient);
    return n === undefined || n.includes(wanted);
  });
  if (envelope.mailFrom === '' || recipients.length === 0) return;
  const now = (deps.now ?? Date.now)();
  const record = await deps.store.get(envelope.id);
  const auth = record?.report?.auth;
  const decision = decideDsn({
    sender: envelope.mailFrom,
    verdictClass: record?.verdict ?? null,
    spf: auth?.status === 'checked' ? auth.spf.result : undefined,
    dmarc: auth?.status === 'checked' ? auth.dmarc?.result : undefined,
    sentLastHour: deps.dsnWindow.countLastHour(envelope.mailFrom, now),
    perHourLimit: deps.config.delivery.maxDsnPerDomainPerHour,
  });
  if (!decision.send) {
    await ledgerOf(deps).note(envelope.id, {
      kind: 'dsn-suppressed',
      notice: kind === 'failed' ? 'bounce' : 'delay notice',
      sender: envelope.mailFrom,
      recipients: recipients.map((r) => r.recipient),
      reason: decision.reason,
    });
    deps.logger.info({ id: envelope.id, sender: envelope.mailFrom, reason: decision.reason }, 'DSN suppressed');
    return;
  }
  deps.dsnWindow.note(envelope.mailFrom, now);
  const id = await sendNotification(
    deps,
    envelope,
    kind,
    recipients.map((r) => ({ ...r, originalRecipient: envelope.dsn?.recipients?.[r.recipient]?.orcpt })),
  );
  await ledgerOf(deps).note(envelope.id, {
    kind: kind === 'failed' ? 'bounced' : 'delay-notice',
    dsnId: id,
    sender: envelope.mailFrom,
    recipients: recipients.map((r) => r.recipient),
  });
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

/**
 * A scanned copy up to this size is read once, for the loop check and every transaction; a larger
 * one is streamed from its file by each, so that concurrent deliveries never hold big copies.
 */
const READ_ONCE_BYTES = 256 * 1024;

/** The scanned copy: its bytes (read once) or its spool file. */
type Copy = Buffer | string;

async function deliverToDomain(deps: DeliveryDeps, envelope: Envelope, copy: Copy, domain: string, recipients: string[]): Promise<RecipientResult[]> {
  const head = typeof copy === 'string' ? await readHeaderBlock(copy) : headerBlockOf(copy);
  const loop = hopCountFailure(countReceived(head.toString('latin1')), deps.config.delivery.maxReceivedHeaders);
  if (loop) return recipients.map((recipient) => ({ recipient, outcome: 'failed', reply: loop }));
  const route = await routeFor(domain, deps.config, deps.resolver, deps.self);
  if (route.ok && route.notes) deps.logger.warn({ id: envelope.id, domain, notes: route.notes }, 'delivery route');
  if (!route.ok) {
    return recipients.map((recipient) => ({ recipient, outcome: route.temporary ? 'deferred' : 'failed', reply: route.reason }));
  }
  // One transaction per set of DSN parameters, so that each recipient's NOTIFY/ORCPT goes on intact.
  const dsnKey = (r: string) => JSON.stringify(envelope.dsn?.recipients?.[r] ?? {});
  const results: RecipientResult[] = [];
  for (const group of groupBy(recipients, dsnKey).values()) {
    const sent = await deliverToTargets(deps, envelope, copy, route.targets, group);
    if (sent.busy && results.length === 0) {
      // Nothing of this domain was sent yet: give the worker slot back and come back in a moment
      // (not an attempt, no backoff). Once some recipients got answers they are recorded first.
      throw new WaitForSlot(sent.busy.reason, sent.busy.retryInMs);
    }
    results.push(...sent.results);
  }
  return results;
}

/**
 * Tries the targets in order; recipients deferred by one (or refused, before a backup hop) are
 * offered to the next. `busy` when the
 * first target's slot (per host, or the outside lane) was taken, so that nothing was tried.
 */
async function deliverToTargets(
  deps: DeliveryDeps,
  envelope: Envelope,
  copy: Copy,
  targets: Target[],
  recipients: string[],
): Promise<{ results: RecipientResult[]; busy?: { reason: string; retryInMs: number } }> {
  const settled: RecipientResult[] = [];
  let deferred: RecipientResult[] = recipients.map((recipient) => ({ recipient, outcome: 'deferred', reply: 'not tried' }));
  let tried = 0;
  for (const [i, target] of targets.entries()) {
    if (deferred.length === 0) break;
    const slot = deps.slots.tryAcquire(target);
    if (!slot.ok) {
      if (tried === 0) return { results: deferred, busy: slot };
      deferred = deferred.map((r) => ({ ...r, reply: `${target.host}:${target.port}: 4.4.5 local limit: ${slot.reason}` }));
      continue;
    }
    tried++;
    try {
      const results = await sendToTarget(
        deps.config,
        target,
        envelope,
        copy,
        deferred.map((r) => r.recipient),
        deps.connections,
      );
      const next = onwardRecipients(results, targets[i + 1]?.backup === true);
      settled.push(...next.settled);
      deferred = next.onward.map((r) => (r.outcome === 'failed' ? { ...r, outcome: 'deferred' as const, reply: `${r.reply} (offered to the backup hop)` } : r));
    } finally {
      slot.release();
    }
  }
  return { results: [...settled, ...deferred] };
}
