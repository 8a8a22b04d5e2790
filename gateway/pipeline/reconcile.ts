// Start-up reconciliation: the spool, not Redis, is the source of truth. Redis (AOF everysec) can
// lose the last second of jobs in a crash, or all of them if its data is gone; every committed
// spool entry without a live job is queued again: for delivery if its scanned copy exists, else
// for a scan. Jobs are keyed by message id, so a message that still has a job is not doubled.
import type { Logger } from '../log.ts';
import type { Spool } from '../spool/spool.ts';
import type { MetadataStore } from '../store/metadata.ts';
import type { BlobStore } from '../store/blobs.ts';
import { QUARANTINED_EVENT } from './act.ts';
import { logSummary } from '../summary.ts';
import type { JobQueue } from '../store/queue.ts';

export async function reconcileSpool(deps: { spool: Spool; store: MetadataStore; quarantine: BlobStore; queue: JobQueue; logger: Logger }): Promise<number> {
  const { spool, store, queue, logger } = deps;
  await finishQuarantines(deps);
  let requeued = 0;
  for (const id of await spool.committedIds()) {
    if ((await queue.hasJob('scan', id)) || (await queue.hasJob('deliver', id)) || (await queue.hasJob('deliver', `${id}-release`))) continue;
    const envelope = await spool.readEnvelope(id);
    if (!envelope) continue;
    // A message accepted but never recorded (crash between commit and the store write) gets its row now.
    if (!(await store.get(id))) await store.recordReceived(envelope);
    const record = await store.get(id);
    // Held as poison (gateway/poison.ts): it waits for an administrator, not for a worker.
    if (record?.status === 'held') continue;
    const hasBody = await spool.hasBody(id);
    const hasOutput = await spool.hasOutput(id);
    if (!hasBody && !hasOutput) {
      await discardUncommitted(deps, id);
      continue;
    }
    let next: 'scan' | 'deliver' = record && ['delivering', 'deferred', 'releasing'].includes(record.status) && hasOutput ? 'deliver' : 'scan';
    // Only an output copy and still "queued": a message we generated (a DSN, a notice), cut by a
    // crash before its move to delivering. It has no body to scan; it is sent as it was written.
    if (!hasBody && record?.status === 'queued') {
      await store.transition(id, ['queued'], 'delivering', 'generated message: its commit was finished at start-up');
      next = 'deliver';
    }
    await queue.enqueue(next, id);
    await store.addEvent(id, 'requeued', `queued again for ${next} at start-up`);
    logger.info({ id, queue: next }, 'requeued from spool');
    requeued++;
    // Several machines: its job may run on another node.
    await spool.evictLocal(id);
  }
  const orphans = await spool.sweepSharedOrphans();
  if (orphans > 0) logger.warn({ orphans }, 'removed shared spool files of messages that were never committed');
  return requeued;
}

/**
 * An envelope with neither body nor output copy: a commit cut by a crash (an older version wrote
 * the envelope before moving the body in). Its 250 was never sent, so the client still holds the
 * message: it is refused (not queued: a scan could only fail), and its leftovers are removed.
 */
async function discardUncommitted(deps: { spool: Spool; store: MetadataStore; logger: Logger }, id: string): Promise<void> {
  await deps.spool.remove(id);
  await deps.spool.discardIncoming(id);
  const reason = 'never committed: its envelope was in the spool without its body (a crash during the commit, before any reply)';
  deps.logger.warn({ id }, 'discarded a half-committed message found at start-up');
  if (!(await deps.store.transition(id, ['queued'], 'refused', reason))) return;
  await deps.store.addEvent(id, 'refused', reason);
  await logSummary(deps, id, 'refused');
}

/**
 * A crash between clearing the spool and marking a message quarantined leaves its row "queued"
 * with its body already in the quarantine store: finish the move.
 */
async function finishQuarantines(deps: { spool: Spool; store: MetadataStore; quarantine: BlobStore; logger: Logger }): Promise<void> {
  const inSpool = new Set(await deps.spool.committedIds());
  for (const record of await deps.store.inFlight(100_000)) {
    if (record.status !== 'queued' || inSpool.has(record.id)) continue;
    if (!(await deps.store.events(record.id)).some((e) => e.kind === QUARANTINED_EVENT)) continue;
    if ((await deps.quarantine.size(record.id)) === undefined) continue;
    await deps.store.transition(record.id, ['queued'], 'quarantined');
    deps.logger.warn({ id: record.id }, 'finished a quarantine interrupted by a crash');
  }
}
