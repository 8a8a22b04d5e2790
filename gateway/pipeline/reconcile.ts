// Start-up reconciliation: the spool, not Redis, is the source of truth. Redis (AOF everysec) can
// lose the last second of jobs in a crash, or all of them if its data is gone; every committed
// spool entry without a live job is queued again: for delivery if its scanned copy exists, else
// for a scan. Jobs are keyed by message id, so a message that still has a job is not doubled.
import type { Logger } from '../log.ts';
import type { Spool } from '../spool/spool.ts';
import type { MetadataStore } from '../store/metadata.ts';
import type { BlobStore } from '../store/blobs.ts';
import { QUARANTINED_EVENT } from './act.ts';
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
    const next = record && ['delivering', 'deferred', 'releasing'].includes(record.status) && (await spool.hasOutput(id)) ? 'deliver' : 'scan';
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
