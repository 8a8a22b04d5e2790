// Operations on messages still in the gateway's hands, for the CLI (and the console): list with
// next attempt and last reply, show, retry now, bounce, delete. A message a worker is holding
// right now is left alone (the operation says so); a deleted message keeps its record.
import { IN_FLIGHT, type MessageRecord } from '../store/metadata.ts';
import type { JobInfo, QueueName } from '../store/queue.ts';
import { finishMessage, type DeliveryDeps } from './deliver.ts';
import { hasEvent, lastOf } from '../ledger/events.ts';
import { jobIdFor, openLedger } from '../ledger/ledger.ts';

export interface QueueEntry {
  record: MessageRecord;
  job: { queue: QueueName; id: string; info: JobInfo | undefined };
  nextAttempt: string | null;
}

export type OpResult = { ok: true; detail: string } | { ok: false; reason: string };

/** What listing, retrying and flushing need (the console has no delivery worker of its own). */
export type QueueViewDeps = Pick<DeliveryDeps, 'store' | 'queue'>;

/**
 * Which job carries a message now: a scan while queued, else its delivery (or its release's). A
 * message in delivery with no deliver job is having its first attempt made by its scan job
 * (deliver.ts attemptFirstHere): that job is the one a retry, bounce or delete must respect.
 */
async function jobOf(deps: QueueViewDeps, record: MessageRecord): Promise<{ queue: QueueName; id: string }> {
  if (record.status === 'queued') return { queue: 'scan', id: record.id };
  const deliver = jobIdFor(record.id, 'deliver', hasEvent(await deps.store.events(record.id), 'released'));
  if (record.status === 'delivering' && !(await deps.queue.hasJob('deliver', deliver)) && (await deps.queue.hasJob('scan', record.id)))
    return { queue: 'scan', id: record.id };
  return { queue: 'deliver', id: deliver };
}

async function nextAttemptOf(deps: QueueViewDeps, record: MessageRecord): Promise<string | null> {
  if (record.status !== 'deferred') return null;
  return lastOf(await deps.store.events(record.id), 'deferred')?.nextAttempt ?? null;
}

export async function queueEntry(deps: QueueViewDeps, record: MessageRecord): Promise<QueueEntry> {
  const job = await jobOf(deps, record);
  return { record, job: { ...job, info: await deps.queue.jobInfo(job.queue, job.id) }, nextAttempt: await nextAttemptOf(deps, record) };
}

export async function listQueue(deps: QueueViewDeps, limit: number): Promise<QueueEntry[]> {
  return Promise.all((await deps.store.inFlight(limit)).map((r) => queueEntry(deps, r)));
}

async function inQueue(deps: QueueViewDeps, id: string): Promise<MessageRecord | OpResult> {
  const record = await deps.store.get(id);
  if (!record) return { ok: false, reason: 'no such message' };
  if (!IN_FLIGHT.includes(record.status)) {
    return { ok: false, reason: `not in the queue (status: ${record.status})` };
  }
  return record;
}

export async function retryNow(deps: QueueViewDeps, id: string): Promise<OpResult> {
  const record = await inQueue(deps, id);
  if ('ok' in record) return record;
  const job = await jobOf(deps, record);
  if (await deps.queue.retryNow(job.queue, job.id)) return { ok: true, detail: `${job.queue} job promoted` };
  return { ok: false, reason: `nothing to hurry: the ${job.queue} job is ${(await deps.queue.jobInfo(job.queue, job.id))?.state ?? 'gone'}` };
}

/** Gives up on every recipient not yet delivered and returns the message to its sender. */
export async function bounceMessage(deps: DeliveryDeps, id: string, by: string): Promise<OpResult> {
  const record = await inQueue(deps, id);
  if ('ok' in record) return record;
  if (!(await deps.spool.hasOutput(id))) return { ok: false, reason: 'not scanned yet; delete it or wait for the scan' };
  const job = await jobOf(deps, record);
  if (!(await deps.queue.removeJob(job.queue, job.id))) return { ok: false, reason: 'a worker is delivering it right now; try again in a moment' };
  const done = new Set((await deps.store.deliveries(id)).filter((d) => d.outcome !== 'deferred').map((d) => d.recipient));
  const pending = record.rcptTo.filter((r) => !done.has(r));
  for (const r of pending) await deps.store.recordDelivery(id, r, 'failed', `5.3.0 returned to sender by the administrator (${by})`);
  await openLedger({ ...deps, quarantine: deps.keep }).note(id, { kind: 'bounced-by-admin', by });
  await finishMessage(deps, id);
  return { ok: true, detail: `${pending.length} recipient(s) returned to <${record.mailFrom}>` };
}

/** Removes a message from the queue without delivering or bouncing it; its record and events stay. */
export async function deleteQueued(deps: DeliveryDeps, id: string, by: string): Promise<OpResult> {
  const record = await inQueue(deps, id);
  if ('ok' in record) return record;
  const job = await jobOf(deps, record);
  if (!(await deps.queue.removeJob(job.queue, job.id))) return { ok: false, reason: 'a worker is processing it right now; try again in a moment' };
  if (!(await openLedger({ ...deps, quarantine: deps.keep }).deleteSpooled(id, by, 'queue'))) return { ok: false, reason: 'its state changed meanwhile' };
  return { ok: true, detail: 'deleted; its record is kept' };
}

/**
 * Tries every deferred message now (`postqueue -f`), or only those with a recipient still pending
 * in `domain` (`postqueue -s`). A message a worker holds right now is counted as skipped.
 * `within` (a domain admin's flush): only messages whose every pending recipient is in those
 * domains, as for retrying one message: one tenant does not hurry another's deliveries.
 */
export async function flushDeferred(
  deps: QueueViewDeps,
  o: { domain?: string; within?: readonly string[]; limit?: number } = {},
): Promise<{ flushed: string[]; skipped: { id: string; reason: string }[] }> {
  const flushed: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  const domain = o.domain?.toLowerCase();
  for (const record of await deps.store.inFlight(o.limit ?? 100_000)) {
    if (record.status !== 'deferred') continue;
    if (domain || o.within) {
      const done = new Set((await deps.store.deliveries(record.id)).filter((d) => d.outcome !== 'deferred').map((d) => d.recipient));
      const pending = record.rcptTo.filter((r) => !done.has(r)).map((r) => r.toLowerCase());
      if (domain && !pending.some((r) => r.endsWith(`@${domain}`))) continue;
      if (o.within && !pending.every((r) => o.within!.some((d) => r.endsWith(`@${d.toLowerCase()}`)))) continue;
    }
    const result = await retryNow(deps, record.id);
    if (result.ok) flushed.push(record.id);
    else skipped.push({ id: record.id, reason: result.reason });
  }
  return { flushed, skipped };
}
