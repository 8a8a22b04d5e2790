// Poison messages: a message whose processing crashed or stalled its worker, or threw where nobody
// expected it, POISON_FAULTS times (counted by the job boundary, gateway/store/queue.ts) is set
// aside as status "held" ("held: poison") instead of being run again: one message must never keep
// a worker, or the process that also serves SMTP, crashing for ever. Its files stay in the spool
// (nothing is lost); every fault and the hold are events in its history. An administrator
// releases it (processed once more, from the stage it was held at, with a fresh fault count) or
// deletes it (gateway/delivery/queue-ops.ts deleteQueued), from the CLI or the console.
import type { Logger } from './log.ts';
import type { MetadataStore } from './store/metadata.ts';
import type { JobContext, JobQueue, QueueName } from './store/queue.ts';
import type { Spool } from './spool/spool.ts';
import type { EventKind } from './ledger/events.ts';
import { openLedger } from './ledger/ledger.ts';

export const FAULT_EVENT: EventKind = 'fault';
export const POISON_EVENT: EventKind = 'held-poison';
export const POISON_RELEASED_EVENT: EventKind = 'poison-released';

interface PoisonDeps {
  store: MetadataStore;
  queue: JobQueue;
  logger: Logger;
}

/** One fault of a job, in the message's history (and the log). */
export async function recordFault(deps: PoisonDeps, queue: QueueName, ctx: JobContext, reason: string): Promise<void> {
  deps.logger.error({ id: ctx.messageId, queue, faults: ctx.faults, reason }, 'job fault');
  await openLedger(deps).note(ctx.messageId, { kind: 'fault', queue, faults: ctx.faults, reason });
}

/** Sets the message aside as "held: poison"; its job then ends (the spool keeps the files). */
export async function holdAsPoison(deps: PoisonDeps, queue: QueueName, ctx: JobContext, reason: string): Promise<void> {
  const id = ctx.messageId;
  if (!(await openLedger(deps).hold(id, queue, ctx.faults, reason))) {
    deps.logger.warn({ id }, 'poison job for a message no longer in flight: nothing to hold');
    return;
  }
  deps.logger.error({ id, queue, faults: ctx.faults, reason }, 'message held as poison: an administrator must release or delete it');
}

export type PoisonOpResult = { ok: true; detail: string } | { ok: false; reason: string };

/** Processes a held message once more from the stage it was held at, with a fresh fault count. */
export function releasePoison(deps: PoisonDeps, id: string, by: string): Promise<PoisonOpResult> {
  return openLedger(deps).releaseHold(id, by);
}

/** Deletes a held message: its files leave the spool, its record and history stay. */
export async function deletePoison(deps: PoisonDeps & { spool: Spool }, id: string, by: string): Promise<PoisonOpResult> {
  const record = await deps.store.get(id);
  if (!record) return { ok: false, reason: 'no such message' };
  if (record.status !== 'held') return { ok: false, reason: `not held (status: ${record.status})` };
  if (!(await openLedger(deps).deleteSpooled(id, by, 'poison hold'))) return { ok: false, reason: 'its state changed meanwhile' };
  return { ok: true, detail: 'deleted; its record is kept' };
}
