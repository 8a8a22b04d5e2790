// Start-up reconciliation: the spool, not Redis, is the source of truth. Redis (AOF everysec) can
// lose the last second of jobs in a crash, or all of them if its data is gone; every committed
// spool entry without a live job is queued again: for delivery if its scanned copy exists, else
// for a scan. Jobs are keyed by message id, so a message that still has a job is not doubled.
// It also finishes what a crash interrupted between two steps of a ledger verb (gateway/ledger/).
import type { Logger } from '../log.ts';
import type { Spool } from '../spool/spool.ts';
import type { MetadataStore } from '../store/metadata.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { JobQueue } from '../store/queue.ts';
import { openLedger, type LedgerSpool, type LedgerQueue } from '../ledger/ledger.ts';
import { IN_DELIVERY, IN_SPOOL } from '../ledger/states.ts';
import { hasEvent } from '../ledger/events.ts';

export interface ReconcileDeps {
  spool: LedgerSpool & Pick<Spool, 'sweepSharedOrphans' | 'hasBody'>;
  store: MetadataStore;
  quarantine: BlobStore;
  queue: LedgerQueue & Pick<JobQueue, 'hasJob'>;
  logger: Logger;
}

export async function reconcileSpool(deps: ReconcileDeps): Promise<number> {
  const { spool, store, queue, logger } = deps;
  const ledger = openLedger(deps);
  await finishQuarantines(deps);
  let requeued = 0;
  for (const id of await spool.committedIds()) {
    if ((await queue.hasJob('scan', id)) || (await queue.hasJob('deliver', id)) || (await queue.hasJob('deliver', `${id}-release`))) continue;
    const envelope = await spool.readEnvelope(id);
    if (!envelope) continue;
    // A message accepted but never recorded (crash between commit and the store write) gets its row now.
    if (!(await store.get(id))) await ledger.adopt(envelope);
    const record = await store.get(id);
    // Held as poison (gateway/poison.ts): it waits for an administrator, not for a worker.
    if (record?.status === 'held') continue;
    if (record && !IN_SPOOL.includes(record.status)) {
      // Its record already says where it went (a crash before a verb cleared the spool): what is
      // left in the spool is a leftover, never a message to process again.
      await ledger.clearLeftover(id);
      logger.warn({ id, status: record.status }, 'removed spool files left by a crash after the message was settled');
      continue;
    }
    const hasBody = await spool.hasBody(id);
    const hasOutput = await spool.hasOutput(id);
    if (!hasBody && !hasOutput) {
      logger.warn({ id }, 'discarded a half-committed message found at start-up');
      await ledger.discardUncommitted(id);
      continue;
    }
    // Only an output copy and still "queued": a message we generated (a DSN, a notice), cut by a
    // crash before its move to delivering. It has no body to scan; it is sent as it was written.
    if (!hasBody && record?.status === 'queued') {
      await ledger.resumeGenerated(id);
      logger.info({ id, queue: 'deliver' }, 'requeued from spool');
      requeued++;
      continue;
    }
    const next = record && IN_DELIVERY.includes(record.status) && hasOutput ? 'deliver' : 'scan';
    await ledger.requeue(id, next);
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
async function finishQuarantines(deps: ReconcileDeps): Promise<void> {
  const inSpool = new Set(await deps.spool.committedIds());
  const ledger = openLedger(deps);
  for (const record of await deps.store.inFlight(100_000)) {
    if (record.status !== 'queued' || inSpool.has(record.id)) continue;
    if (!hasEvent(await deps.store.events(record.id), 'quarantined')) continue;
    if ((await deps.quarantine.size(record.id)) === undefined) continue;
    await ledger.finishQuarantine(record.id);
    deps.logger.warn({ id: record.id }, 'finished a quarantine interrupted by a crash');
  }
}
