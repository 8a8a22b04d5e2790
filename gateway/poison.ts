// Poison messages: a message whose processing crashed or stalled its worker, or threw where nobody
// expected it, POISON_FAULTS times (counted by the job boundary, gateway/store/queue.ts) is set
// aside as status "held" ("held: poison") instead of being run again: one message must never keep
// a worker, or the process that also serves SMTP, crashing for ever. Its files stay in the spool
// (nothing is lost); every fault and the hold are events in its history. An administrator
// releases it (processed once more, from the stage it was held at, with a fresh fault count) or
// deletes it (gateway/delivery/queue-ops.ts deleteQueued), from the CLI or the console.
import type { Logger } from './log.ts';
import type { MessageStatus, MetadataStore } from './store/metadata.ts';
import type { JobContext, JobQueue, QueueName } from './store/queue.ts';
import { RELEASE_EVENT } from './delivery/deliver.ts';
import type { Spool } from './spool/spool.ts';

export const FAULT_EVENT = 'fault';
export const POISON_EVENT = 'held-poison';
export const POISON_RELEASED_EVENT = 'poison-released';

/** The statuses a message can be held from, and how its stage is written in the hold event. */
const HOLDABLE: readonly MessageStatus[] = ['queued', 'delivering', 'deferred', 'releasing'];

interface PoisonDeps {
  store: MetadataStore;
  queue: JobQueue;
  logger: Logger;
}

/** One fault of a job, in the message's history (and the log). */
export async function recordFault(deps: PoisonDeps, queue: QueueName, ctx: JobContext, reason: string): Promise<void> {
  deps.logger.error({ id: ctx.messageId, queue, faults: ctx.faults, reason }, 'job fault');
  await deps.store.addEvent(ctx.messageId, FAULT_EVENT, `${queue} (fault ${ctx.faults}): ${reason}`);
}

/** Sets the message aside as "held: poison"; its job then ends (the spool keeps the files). */
export async function holdAsPoison(deps: PoisonDeps, queue: QueueName, ctx: JobContext, reason: string): Promise<void> {
  const id = ctx.messageId;
  const record = await deps.store.get(id);
  if (!record || !HOLDABLE.includes(record.status)) {
    deps.logger.warn({ id, status: record?.status }, 'poison job for a message no longer in flight: nothing to hold');
    return;
  }
  if (!(await deps.store.transition(id, [record.status], 'held', `poison: ${reason}`))) return;
  // "was <status>": the stage a release returns it to.
  await deps.store.addEvent(id, POISON_EVENT, `held after its ${queue} job faulted ${ctx.faults} times; was ${record.status}; ${reason}`);
  deps.logger.error({ id, queue, faults: ctx.faults, reason }, 'message held as poison: an administrator must release or delete it');
}

export type PoisonOpResult = { ok: true; detail: string } | { ok: false; reason: string };

/** Processes a held message once more from the stage it was held at, with a fresh fault count. */
export async function releasePoison(deps: PoisonDeps, id: string, by: string): Promise<PoisonOpResult> {
  const record = await deps.store.get(id);
  if (!record) return { ok: false, reason: 'no such message' };
  if (record.status !== 'held') return { ok: false, reason: `not held (status: ${record.status})` };
  const events = await deps.store.events(id);
  const hold = events.filter((e) => e.kind === POISON_EVENT).at(-1);
  const was = (/; was (\w+);/.exec(hold?.detail ?? '')?.[1] ?? 'queued') as MessageStatus;
  const back: MessageStatus = HOLDABLE.includes(was) ? (was === 'deferred' ? 'delivering' : was) : 'queued';
  const queue: QueueName = back === 'queued' ? 'scan' : 'deliver';
  const released = events.some((e) => e.kind === RELEASE_EVENT);
  // The held job ended (and was removed): a job of the same id starts with no faults counted.
  const jobId = queue === 'deliver' && released ? `${id}-release` : id;
  if (await deps.queue.hasJob(queue, jobId)) {
    if (!(await deps.queue.removeJob(queue, jobId))) return { ok: false, reason: 'a worker holds its old job right now; try again in a moment' };
  }
  if (!(await deps.store.transition(id, ['held'], back, `released from the poison hold by ${by}`))) return { ok: false, reason: 'its state changed meanwhile' };
  await deps.queue.enqueue(queue, id, { jobId });
  await deps.store.addEvent(id, POISON_RELEASED_EVENT, `by ${by}: queued for ${queue} again`);
  return { ok: true, detail: `released: queued for ${queue} again` };
}

/** Deletes a held message: its files leave the spool, its record and history stay. */
export async function deletePoison(deps: PoisonDeps & { spool: Spool }, id: string, by: string): Promise<PoisonOpResult> {
  const record = await deps.store.get(id);
  if (!record) return { ok: false, reason: 'no such message' };
  if (record.status !== 'held') return { ok: false, reason: `not held (status: ${record.status})` };
  if (!(await deps.store.transition(id, ['held'], 'deleted', `deleted while held as poison, by ${by}`))) return { ok: false, reason: 'its state changed meanwhile' };
  await deps.store.addEvent(id, 'deleted', `deleted while held as poison, by ${by}`);
  await deps.spool.remove(id);
  return { ok: true, detail: 'deleted; its record is kept' };
}
