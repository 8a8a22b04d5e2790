// The ledger: the one owner of a message's life. Workers, reconciliation, retention, the CLI and
// the console call its verbs; none of them writes a message's status, the spool, the quarantine
// body or its queue job in an order of its own. Each verb writes the metadata store in one
// transaction (store.step: status by compare-and-set, verdict, events together) and places it
// in the one crash-safe order of its side effects, chosen so that a crash between any two steps
// leaves a state start-up reconciliation (reconcile.ts) finishes or repeats harmlessly:
//
//   body kept (blob store)  →  store step  →  spool cleared            (quarantine, report, finish)
//   spool written           →  store step  →  job enqueued             (deliver, generated, release)
//   spool written           →  store step  →  attempt → finish, or job enqueued   (deliver here)
//
// - A body is copied to the blob store before any record says it lives there.
// - The spool is cleared only after the record says where the message went; leftover spool
//   files of a message in a final state are removed by reconciliation.
// - A job is enqueued only after the status it needs is written; a lost enqueue is redone by
//   reconciliation (every spooled message without a job is queued again).
// - Quarantine is the exception the other way: the spool is cleared BEFORE the status says
//   "quarantined", because a release may start the moment it does and restores the message into
//   the spool under the same id. A crash in between leaves "queued" with a 'quarantined' event and
//   the body in the blob store: `finishQuarantine` completes it.
import type { Writable } from 'node:stream';
import type { Logger } from '../log.ts';
import type { Envelope, EnvelopeDsn, Spool } from '../spool/spool.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DeliveryRecord, LedgerStep, MessageRecord, MessageStatus, MetadataStore } from '../store/metadata.ts';
import type { Continuation, JobQueue, QueueName } from '../store/queue.ts';
import { MOVES, SUMMARISED, releaseHoldMove, type Move } from './states.ts';
import { logSummary, type FinalState, type KnownFacts, type SummaryRecord } from '../summary.ts';
import { lastOf, toStored, type LedgerEvent } from './events.ts';

/** The parts of the spool the ledger uses (a fake in tests implements the same). */
export type LedgerSpool = Pick<
  Spool,
  'remove' | 'discardIncoming' | 'restoreForDelivery' | 'readEnvelope' | 'hasOutput' | 'messagePath' | 'outputPath' | 'committedIds' | 'evictLocal'
>;
export type LedgerQueue = Pick<JobQueue, 'enqueue' | 'hasJob' | 'removeJob'>;

/**
 * The store is always needed; the spool, queue and blob store only by the verbs that touch them
 * (a console that only deletes quarantined mail has no spool): a verb missing one throws.
 */
export interface LedgerDeps {
  store: MetadataStore;
  spool?: LedgerSpool;
  queue?: LedgerQueue;
  /** Bodies kept after the spool: quarantined, failed, reported, released. */
  quarantine?: BlobStore;
  logger: Logger;
  /**
   * Called once a verb has moved a message to where its handling ends (states.ts SUMMARISED);
   * default: its one summary line in the log (gateway/summary.ts), from what the verb `known`
   * (read back for the rest).
   */
  onFinal?: (id: string, state: FinalState, known: KnownFacts) => Promise<void> | void;
}

export type Verdict = NonNullable<LedgerStep['verdict']>;

/** A move refused by the table (a bug in the caller), never written. */
export class IllegalMove extends Error {}

export type OpResult = { ok: true; detail: string } | { ok: false; reason: string };

/** The job that carries a message in `queue`: a release's delivery has a job id of its own. */
export function jobIdFor(id: string, queue: QueueName, released: boolean): string {
  return queue === 'deliver' && released ? `${id}-release` : id;
}

/**
 * The envelope a message was received with, narrowed to the recipients it is still about (a
 * split narrows them). Rows from before the envelope was kept (migration 0005) fall back to their
 * columns: those have no DSN parameters to lose.
 */
export function envelopeOf(record: MessageRecord): Envelope {
  const e: Envelope = record.envelope ?? {
    id: record.id,
    receivedAt: record.receivedAt,
    clientIp: record.clientIp,
    clientHostname: null,
    helo: record.helo,
    mailFrom: record.mailFrom,
    rcptTo: record.rcptTo,
    size: record.size,
    tls: false,
  };
  return { ...e, id: record.id, rcptTo: record.rcptTo, ...(e.dsn ? { dsn: narrowDsn(e.dsn, record.rcptTo) } : {}) };
}

export function narrowDsn(dsn: EnvelopeDsn, rcptTo: string[]): EnvelopeDsn {
  if (!dsn.recipients) return dsn;
  return { ...dsn, recipients: Object.fromEntries(Object.entries(dsn.recipients).filter(([r]) => rcptTo.includes(r))) };
}

export function openLedger(deps: LedgerDeps) {
  const { store, logger } = deps;
  const missing = (port: string) => new Error(`the ledger was opened without the ${port} this verb needs`);
  const ports = {
    get spool(): LedgerSpool {
      if (!deps.spool) throw missing('spool');
      return deps.spool;
    },
    get queue(): LedgerQueue {
      if (!deps.queue) throw missing('queue');
      return deps.queue;
    },
    get quarantine(): BlobStore {
      if (!deps.quarantine) throw missing('blob store');
      return deps.quarantine;
    },
  };

  /** One store transaction: the move (if any) by compare-and-set, with its verdict and events. */
  async function step(
    id: string,
    move: Move | null,
    o: {
      lastReply?: string;
      verdict?: Verdict;
      rcptTo?: string[];
      events?: LedgerEvent[];
      onlyFrom?: MessageStatus;
      deliveries?: LedgerStep['deliveries'];
      /** What the verb holds of the message's row and results after this step (for its summary). */
      known?: KnownFacts;
    } = {},
  ): Promise<boolean> {
    const m = move ? MOVES[move] : null;
    const done = await store.step({
      id,
      ...(m ? { from: o.onlyFrom ? [o.onlyFrom] : m.from, to: m.to } : {}),
      lastReply: o.lastReply,
      verdict: o.verdict,
      rcptTo: o.rcptTo,
      events: o.events?.map(toStored),
      ...(o.deliveries ? { deliveries: o.deliveries } : {}),
    });
    const summarised = done && move ? SUMMARISED[move] : undefined;
    if (summarised) {
      // A message still queued has never had a delivery attempt: it has no results to read.
      const known = m && m.from.every((from) => from === 'queued') ? { deliveries: [], ...o.known } : (o.known ?? {});
      // Never throws (logSummary logs its own failure): the message has already reached its state.
      await (deps.onFinal ?? ((i: string, st: FinalState, k: KnownFacts) => logSummary({ store, logger }, i, st, k)))(id, summarised, known);
    }
    return done;
  }

  /** The move from the status the caller read, and only from it (compare-and-set on what it saw). */
  async function moveFrom(id: string, move: Move, current: MessageStatus, o: Parameters<typeof step>[2] = {}): Promise<boolean> {
    if (!(MOVES[move].from as readonly MessageStatus[]).includes(current)) throw new IllegalMove(`${move}: not from ${current}`);
    return step(id, move, { ...o, onlyFrom: current });
  }

  return {
    /** An event that changes no status (a fault, a delay warning, a suppressed DSN…). */
    note(id: string, e: LedgerEvent): Promise<boolean> {
      return step(id, null, { events: [e] });
    },

    /** Accepted over SMTP: the spool entry is committed; its row, then its scan job. */
    async accept(envelope: Envelope, recorded?: () => void): Promise<void> {
      await store.recordReceived(envelope);
      recorded?.();
      await ports.queue.enqueue('scan', envelope.id);
    },

    /**
     * The accept failed before the client got its 250: not ours, so the spool entry goes first
     * (a later reconciliation would otherwise deliver a copy of a message the client sends
     * again), then the record says refused if the store still takes it (it may be what failed).
     */
    async abandonAccept(id: string, reply: string): Promise<void> {
      await ports.spool.remove(id);
      try {
        await step(id, 'abandon', { lastReply: reply, events: [{ kind: 'refused', reply, why: 'not queued' }] });
      } catch (err) {
        logger.warn({ id, err }, 'could not record the refusal of an unqueued message');
      }
    },

    /** A message to scan (again) on its own: a scan job (its status stays queued). */
    async rescan(id: string): Promise<void> {
      await ports.queue.enqueue('scan', id);
    },

    /** Reconciliation: a committed spool entry the store never recorded (crash between the two) gets its row. */
    async adopt(envelope: Envelope): Promise<void> {
      await store.recordReceived(envelope);
    },

    /** Reconciliation: spool files of a message whose record is already settled are leftovers. */
    async clearLeftover(id: string): Promise<void> {
      await ports.spool.remove(id);
    },

    /** A recipient group split off into a message of its own (its spool entry already committed). */
    async split(parent: Envelope, child: Envelope): Promise<void> {
      await store.recordReceived(child);
      await step(child.id, null, { events: [{ kind: 'split', side: 'child', parent: parent.id, recipients: child.rcptTo }] });
      await step(parent.id, null, { events: [{ kind: 'split', side: 'parent', child: child.id, recipients: child.rcptTo }] });
    },

    /** The parent keeps its own group: its record's recipients narrow to it. */
    narrow(id: string, rcptTo: string[]): Promise<boolean> {
      return step(id, null, { rcptTo });
    },

    /** Scanned, its copy written to the spool: delivering, then its delivery job. */
    async planDeliver(id: string, verdict: Verdict, events: LedgerEvent[] = []): Promise<void> {
      await step(id, 'planDeliver', { verdict, events });
      await ports.queue.enqueue('deliver', id);
    },

    /**
     * Scanned, its copy written to the spool: delivering, and no job yet. The scan job that says so
     * makes the first delivery attempt itself, then finishes the message or hands it on
     * (handToDelivery). A crash in between leaves "delivering" with that scan job still alive:
     * its retry hands the message on (scan.ts); if Redis lost the job, reconciliation queues it for
     * delivery (a message in delivery with its copy and no job). False if it was no longer queued.
     */
    planDeliverHere(id: string, verdict: Verdict, events: LedgerEvent[] = []): Promise<boolean> {
      return step(id, 'planDeliver', { verdict, events });
    },

    /**
     * A message in delivery with no job (planDeliverHere, or a scan job retried after a crash during
     * that attempt) goes to the deliver queue, as the job that made the attempts so far would have
     * continued (`after`); `by` records a hand-over that a crash or an error forced (an event).
     */
    async handToDelivery(id: string, after: Continuation = {}, by?: 'scan job run again'): Promise<void> {
      await ports.queue.enqueue('deliver', id, after);
      if (by) await step(id, null, { events: [{ kind: 'requeued', queue: 'deliver', by }] });
    },

    /** Held in the quarantine: body kept, verdict and event, spool cleared, then the status. */
    async planQuarantine(id: string, verdict: Verdict, e: Extract<LedgerEvent, { kind: 'quarantined' }>): Promise<void> {
      await ports.quarantine.put(id, ports.spool.messagePath(id));
      await step(id, null, { verdict, events: [e] });
      await ports.spool.remove(id);
      await step(id, 'planQuarantine');
    },

    /** A spam report learned from: its body kept for the console (when there is one), never delivered. */
    async planReport(id: string, verdict: Verdict, keepBody: boolean): Promise<void> {
      if (keepBody) await ports.quarantine.put(id, ports.spool.messagePath(id));
      await step(id, 'planReport', { verdict, lastReply: verdict.reason.slice(0, 500) });
      await ports.spool.remove(id);
    },

    /** Refused with an SMTP reply while the client waited: the client keeps it, we keep only its record. */
    async refuse(id: string, reply: string, o: { verdict?: Verdict; why?: string } = {}): Promise<boolean> {
      const done = await step(id, 'refuse', { verdict: o.verdict, lastReply: reply, events: [{ kind: 'refused', reply, ...(o.why ? { why: o.why } : {}) }] });
      await ports.spool.remove(id);
      return done;
    },

    /**
     * A message the gateway wrote (DSN, notice, digest): spooled with its envelope, recorded as
     * delivering in one step, then queued. Returns false when it exists already (ids are derived).
     */
    async submitGenerated(envelope: Envelope, produce: (out: Writable) => Promise<void>, verdict: Verdict | undefined, what: string): Promise<boolean> {
      if (await store.get(envelope.id)) return false;
      await ports.spool.restoreForDelivery(envelope, produce);
      await store.recordReceived(envelope);
      await step(envelope.id, 'submitGenerated', { verdict, events: [{ kind: 'generated', what }] });
      await ports.queue.enqueue('deliver', envelope.id);
      return true;
    },

    /** Some recipients deferred: the next attempt is the queue's (RetryLater); this records it. */
    async defer(id: string, e: Extract<LedgerEvent, { kind: 'deferred' }>): Promise<void> {
      await step(id, 'defer', { lastReply: e.reply, events: [e] });
    },

    /**
     * Every recipient has a final outcome. A failed message's copy is kept and bounced
     * (`bounce`, before the status, so that a crash repeats it: DSN ids are derived), then the
     * status and its event, then the spool is cleared.
     */
    async finish(id: string, bounce: (failed: { recipient: string; reply: string }[]) => Promise<void>): Promise<MessageStatus> {
      const results = await store.deliveries(id);
      const failed = results.filter((d) => d.outcome === 'failed');
      let status: MessageStatus;
      if (failed.length > 0) {
        await ports.quarantine.put(id, ports.spool.outputPath(id));
        await bounce(failed);
        await step(id, 'finishFailed', {
          lastReply: `${failed[0].recipient}: ${failed[0].reply}`,
          events: [{ kind: 'failed', results: failed.map(({ recipient, reply }) => ({ recipient, reply })) }],
          known: { deliveries: results },
        });
        status = 'failed';
      } else {
        const released = (await store.events(id)).some((e) => e.kind === 'released');
        const move: Move = released ? 'finishReleased' : 'finishDelivered';
        await step(id, move, {
          lastReply: results.at(-1)?.reply,
          events: [{ kind: 'delivered', results: results.map(({ recipient, reply }) => ({ recipient, reply })) }],
          known: { deliveries: results },
        });
        status = MOVES[move].to;
      }
      await ports.spool.remove(id);
      return status;
    },

    /**
     * `finish` for the common case, in one commit instead of two: this attempt delivered to every
     * recipient still pending and no recipient has failed. The attempt's delivery rows, the status
     * and its event are one transaction, then the spool is cleared. Returns false, having written
     * nothing, when that is not the case (or the status is no longer delivering): the caller then
     * records the results and finishes the usual way. `fresh`: the first attempt of a message
     * planDeliverHere moved from queued: no earlier results, never released, nothing to read.
     * `earlier`: the message's delivery rows as the caller read them before this attempt (else
     * read here); whether it was released is only in its events (a released message that was
     * deferred is no longer "releasing"), read unless fresh. `scanned`: its row as the scan job
     * that planned it wrote it, for the summary line.
     */
    async finishAllDelivered(
      id: string,
      results: { recipient: string; reply: string }[],
      o: { fresh?: boolean; earlier?: readonly DeliveryRecord[]; scanned?: SummaryRecord } = {},
    ): Promise<boolean> {
      const now = new Set(results.map((r) => r.recipient));
      const earlier = o.fresh ? [] : (o.earlier ?? (await store.deliveries(id))).filter((d) => !now.has(d.recipient));
      if (earlier.some((d) => d.outcome !== 'delivered')) return false;
      const released = !o.fresh && (await store.events(id)).some((e) => e.kind === 'released');
      const move: Move = released ? 'finishReleased' : 'finishDelivered';
      // The order finish() reads them in (by recipient).
      const all = [...earlier, ...results]
        .map(({ recipient, reply }) => ({ recipient, reply }))
        .sort((a, b) => (a.recipient < b.recipient ? -1 : a.recipient > b.recipient ? 1 : 0));
      const deliveries = results.map((r) => ({ recipient: r.recipient, outcome: 'delivered' as const, reply: r.reply }));
      const known = { deliveries: [...earlier, ...deliveries], ...(o.scanned ? { record: o.scanned } : {}) };
      if (!(await step(id, move, { lastReply: all.at(-1)?.reply, deliveries, events: [{ kind: 'delivered', results: all }], known }))) return false;
      await ports.spool.remove(id);
      return true;
    },

    /**
     * Released from quarantine: quarantined → releasing (compare-and-set: one release wins), the
     * copy written into the spool with the envelope as received, then its delivery job. If the
     * copy cannot be written it goes back to the quarantine.
     */
    async release(id: string, by: string, produce: (out: Writable, record: MessageRecord) => Promise<void>): Promise<OpResult> {
      const record = await store.get(id);
      if (!record) return { ok: false, reason: 'no such message' };
      if (!(await step(id, 'release'))) return { ok: false, reason: `not in quarantine (status: ${record.status})` };
      try {
        await ports.spool.restoreForDelivery(envelopeOf(record), (out) => produce(out, record));
        await step(id, null, { events: [{ kind: 'released', by }] });
        await ports.queue.enqueue('deliver', id, { jobId: jobIdFor(id, 'deliver', true) });
      } catch (err) {
        await step(id, 'unrelease');
        await ports.spool.remove(id);
        logger.error({ id, err }, 'release failed');
        return { ok: false, reason: `release failed: ${(err as Error).message}` };
      }
      return { ok: true, detail: 'released' };
    },

    /** Deleted from the quarantine: the record and its history stay; the body goes. */
    async deleteQuarantined(id: string, by: string): Promise<OpResult> {
      const record = await store.get(id);
      if (!record) return { ok: false, reason: 'no such message' };
      if (!(await step(id, 'deleteQuarantined', { events: [{ kind: 'deleted', by, from: 'quarantine' }] })))
        return { ok: false, reason: `not in quarantine (status: ${record.status})` };
      try {
        await ports.quarantine.delete(id);
      } catch (err) {
        // The status already says deleted; a body left behind is only disk space, never delivered.
        logger.error({ id, err }, 'deleting the quarantined body failed');
      }
      return { ok: true, detail: 'deleted' };
    },

    /**
     * Deleted while in the spool (from the queue, or held as poison): the caller has removed its
     * job; the record says deleted, then the spool is cleared.
     */
    async deleteSpooled(id: string, by: string, from: 'queue' | 'poison hold'): Promise<boolean> {
      const reply = from === 'queue' ? `deleted from the queue by ${by}` : `deleted while held as poison, by ${by}`;
      const move: Move = 'deleteQueued';
      const record = await store.get(id);
      if (!record || (from === 'poison hold' && record.status !== 'held')) return false;
      if (!(await moveFrom(id, move, record.status, { lastReply: reply, events: [{ kind: 'deleted', by, from }] }))) return false;
      await ports.spool.remove(id);
      return true;
    },

    /**
     * Retention. A quarantined message: quarantined → deleted (compare-and-set), body removed,
     * then the 'expired' event once. Another final one: its kept body, then the event. The event
     * comes last and once, so a crash in between is finished by the next pass.
     */
    async expire(m: MessageRecord, days: number): Promise<'expired' | 'removed' | 'skipped'> {
      const e: LedgerEvent = { kind: 'expired', days, wasQuarantined: m.status === 'quarantined' };
      if (m.status === 'quarantined') {
        if (!(await step(m.id, 'expireQuarantined', { lastReply: `expired after ${days} days` }))) return 'skipped';
        await ports.quarantine.delete(m.id);
        await store.addEventOnce(m.id, e.kind, toStored(e).detail);
        return 'expired';
      }
      await ports.quarantine.delete(m.id);
      return (await store.addEventOnce(m.id, e.kind, toStored(e).detail)) ? 'removed' : 'skipped';
    },

    /** Set aside as "held: poison"; its files stay in the spool. */
    async hold(id: string, q: QueueName, faults: number, reason: string): Promise<boolean> {
      const record = await store.get(id);
      if (!record || !(MOVES.hold.from as readonly MessageStatus[]).includes(record.status)) return false;
      return moveFrom(id, 'hold', record.status, {
        lastReply: `poison: ${reason}`,
        events: [{ kind: 'held-poison', queue: q, faults, was: record.status, reason }],
      });
    },

    /** A held message processed once more from the stage it was held at, with a fresh job. */
    async releaseHold(id: string, by: string): Promise<OpResult> {
      const record = await store.get(id);
      if (!record) return { ok: false, reason: 'no such message' };
      if (record.status !== 'held') return { ok: false, reason: `not held (status: ${record.status})` };
      const history = await store.events(id);
      const move = releaseHoldMove(lastOf(history, 'held-poison')?.was ?? legacyHeldFrom(history));
      const q: QueueName = MOVES[move].to === 'queued' ? 'scan' : 'deliver';
      const jobId = jobIdFor(
        id,
        q,
        history.some((e) => e.kind === 'released'),
      );
      // The held job ended: a job of the same id starts with no faults counted.
      if ((await ports.queue.hasJob(q, jobId)) && !(await ports.queue.removeJob(q, jobId)))
        return { ok: false, reason: 'a worker holds its old job right now; try again in a moment' };
      if (!(await step(id, move, { lastReply: `released from the poison hold by ${by}` }))) return { ok: false, reason: 'its state changed meanwhile' };
      await ports.queue.enqueue(q, id, { jobId });
      await step(id, null, { events: [{ kind: 'poison-released', by, queue: q }] });
      return { ok: true, detail: `released: queued for ${q} again` };
    },

    /** Reconciliation: a quarantine a crash interrupted between clearing the spool and its status. */
    finishQuarantine(id: string): Promise<boolean> {
      return step(id, 'finishQuarantine');
    },

    /**
     * Reconciliation: an envelope in the spool without its body is a commit a crash cut before any
     * reply: never ours. Its files go, even a body still in incoming/ (the client sends again;
     * finishing the commit could deliver it twice), then the record says refused.
     */
    async discardUncommitted(id: string): Promise<void> {
      await ports.spool.remove(id);
      await ports.spool.discardIncoming(id);
      const reply = 'never committed: its envelope was in the spool without its body (a crash during the commit, before any reply)';
      await step(id, 'discardUncommitted', { lastReply: reply, events: [{ kind: 'refused', reply, why: 'never committed' }] });
    },

    /** Reconciliation: a message we generated (a DSN, a notice) cut before its move to delivering is sent as written. */
    async resumeGenerated(id: string): Promise<void> {
      if (!(await step(id, 'resumeGenerated'))) return;
      await ports.queue.enqueue('deliver', id);
      await step(id, null, { events: [{ kind: 'requeued', queue: 'deliver' }] });
    },

    /** Reconciliation: a spooled message without a job gets one again. */
    async requeue(id: string, q: QueueName): Promise<void> {
      await ports.queue.enqueue(q, id);
      await step(id, null, { events: [{ kind: 'requeued', queue: q }] });
    },
  };
}

export type Ledger = ReturnType<typeof openLedger>;

/** Holds written before events had fields said "was <status>;" in their sentence. */
function legacyHeldFrom(history: { kind: string; detail: string }[]): MessageStatus {
  const hold = history.filter((e) => e.kind === 'held-poison').at(-1);
  return (/; was (\w+);/.exec(hold?.detail ?? '')?.[1] ?? 'queued') as MessageStatus;
}
