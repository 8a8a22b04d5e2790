// A recipient a downstream accepted is never sent the message again: the "delivered" fact must
// outlive a store that fails right after the downstream's 250 (the disk fills, PostgreSQL restarts).
// Without this, the failed write threw, the job ran again a minute later, and delivered again.
//
// What happens at each point:
//   before an attempt  The journal's facts are replayed into the store, the store must take a write
//                      (a "delivery-attempt" event) and, on SQLite, the space reserve must be in
//                      place. If any of that fails, the store refuses writes: delivery pauses (the
//                      job waits storePauseMs without contacting the downstream), logged once per
//                      outage. A fact that cannot be recorded is thus never produced to begin with.
//   after the reply    The outcomes are written to the store. If that fails, the final ones
//                      (delivered, failed) go at once to the local journal (journal.ts: space taken
//                      in advance, so a full disk cannot refuse it); on SQLite's "disk is full" the
//                      space reserve is deleted, so that the store can commit again; then the store
//                      write is retried with backoff for recordRetryMs, keeping the job and its lock
//                      (a PostgreSQL restart takes seconds). Once it succeeds the journal slots are
//                      cleared; if it never does, the job pauses and the journal keeps the facts.
//   replay             At worker start, every few seconds while the journal is not empty, and before
//                      every attempt: facts go to the store (an upsert that never downgrades
//                      "delivered"), then leave the journal. Orphaned journals of dead workers of this
//                      machine are replayed too.
//
// What remains possible: the journal is per machine. In a cluster, a job paused after its in-process
// retries may be taken by a worker on another machine before this one replays; that worker then sees
// no fact and delivers again, but only if the store came back within the last replay period (a few
// seconds) and before this machine's replay, or if this machine is lost with facts in its journal.
// The in-process retry (which covers an ordinary PostgreSQL restart) and the replay at worker start
// keep that window small; RFC 5321 §6.1 prefers a duplicate to a loss. A crash between the 250 and the
// first store write (or the journal write) can also deliver twice, as in every MTA.
import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import type { DeliveryOutcome, MetadataStore } from '../store/metadata.ts';
import { RetryLater } from '../store/queue.ts';
import { DeliveryJournal } from './journal.ts';

/** Written before every delivery attempt: proof that the store takes writes, and the message's history. */
export const ATTEMPT_EVENT = 'delivery-attempt';
/** SQLite: free space kept by a file of this size, deleted when the disk fills after a 250. */
const RESERVE_BYTES = 4 * 1024 * 1024;
const REPLAY_EVERY_MS = 5_000;
/** A store write committed this recently proves, for a first attempt, that the store takes writes (beforeAttempt). */
export const FRESH_WRITE_MS = 2_000;

export interface RecordedOutcome {
  recipient: string;
  outcome: DeliveryOutcome;
  reply: string;
}

export interface RecorderOptions {
  store: MetadataStore;
  logger: Logger;
  /** Directory of the journal files (under the data dir). */
  journalDir: string;
  /** SQLite only: the reserve file, on the same file system as the database. */
  reserveFile?: string;
  /** How long a write after a 250 is retried in-process before the job pauses. */
  retryMs: number;
  /** How long a paused delivery waits before it checks the store again. */
  pauseMs: number;
}

export class DeliveryRecorder {
  private journal: DeliveryJournal | undefined;
  private paused = false;
  private replaying: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** The reserve being made: concurrent attempts wait for it rather than race on its temp file. */
  private reserving: Promise<void> | undefined;

  private readonly o: RecorderOptions;

  constructor(o: RecorderOptions) {
    this.o = o;
  }

  /** Worker start: opens the journal and replays what an earlier worker left in it. */
  async start(): Promise<void> {
    try {
      await this.replay();
    } catch (err) {
      this.o.logger.warn({ err }, 'delivery journal not replayed yet: the store refuses writes; retrying');
    }
    this.timer = setInterval(
      () => {
        if (this.journal && this.journal.pending().length > 0) this.replay().catch(() => {});
      },
      Math.min(REPLAY_EVERY_MS, this.o.pauseMs),
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.replaying.catch(() => {});
    await this.journal?.close();
    this.journal = undefined;
  }

  /**
   * Before a delivery attempt: throws RetryLater (delivery paused) unless the journal is replayed,
   * the reserve is in place and the store takes a write. A first attempt made while the store
   * committed a write of this process less than FRESH_WRITE_MS ago (on a busy gateway: always;
   * the commit that queued the delivery, planDeliver, is one) takes that as the proof and writes
   * nothing of its own; retries, and any attempt while delivery is paused, write their
   * "delivery-attempt" event. A store that fails in between is what the journal is for.
   */
  async beforeAttempt(id: string, attempt: number): Promise<void> {
    const lastWrite = this.o.store.lastWriteAt?.() ?? 0;
    const proven = attempt === 1 && !this.paused && Date.now() - lastWrite < FRESH_WRITE_MS;
    try {
      await this.replay();
      if (this.o.reserveFile) await this.ensureReserve(this.o.reserveFile);
      if (!proven) await this.o.store.addEvent(id, ATTEMPT_EVENT, `attempt ${attempt}`);
    } catch (err) {
      throw this.pause(err);
    }
    if (this.paused) {
      this.paused = false;
      this.o.logger.info('the store takes writes again: delivery resumed');
    }
  }

  private ensureReserve(file: string): Promise<void> {
    return (this.reserving ??= ensureReserve(file).finally(() => (this.reserving = undefined)));
  }

  /** Recipients of a message whose final outcome only the journal knows (empty after a replay). */
  doneInJournal(id: string): Set<string> {
    return this.journal?.recipientsDone(id) ?? new Set();
  }

  /** After a downstream answered: the outcomes reach the store, or the final ones the journal. */
  async record(id: string, results: RecordedOutcome[]): Promise<void> {
    const write = async () => {
      for (const r of results) await this.o.store.recordDelivery(id, r.recipient, r.outcome, r.reply);
    };
    let failure: unknown;
    try {
      return await write();
    } catch (err) {
      failure = err;
    }
    const clears = await this.journalFinal(id, results, failure);
    if (isDiskFull(failure) && this.o.reserveFile && (await releaseReserve(this.o.reserveFile))) {
      this.o.logger.warn({ id }, 'disk full after a delivery: the store space reserve was released so that the result can be recorded');
    }
    // Without a journal entry the job holds on until the store takes the fact: it is never lost.
    const deadline = clears ? Date.now() + this.o.retryMs : Infinity;
    for (let delay = 100; ; delay = Math.min(2 * delay, 5_000)) {
      try {
        await write();
        break;
      } catch (err) {
        if (Date.now() >= deadline) {
          this.o.logger.warn({ id, err }, 'delivery result not recorded in the store: kept in the local delivery journal');
          throw this.pause(err);
        }
        await sleep(delay);
      }
    }
    for (const clear of clears ?? []) await clear();
  }

  /** The final outcomes into the journal, or undefined (logged) if it cannot take them. */
  private async journalFinal(id: string, results: RecordedOutcome[], cause: unknown): Promise<(() => Promise<void>)[] | undefined> {
    const at = Date.now();
    const clears: (() => Promise<void>)[] = [];
    try {
      const journal = await this.openJournal();
      for (const r of results) {
        if (r.outcome === 'deferred') continue;
        clears.push(await journal.append({ id, recipient: r.recipient, outcome: r.outcome, reply: r.reply, at }));
      }
      return clears;
    } catch (err) {
      this.o.logger.error({ id, err, cause }, 'delivery result neither in the store nor in the journal: holding the job until the store takes it');
      return undefined;
    }
  }

  /** One replay at a time: facts to the store, then out of the journal. Throws if the store refuses. */
  private replay(): Promise<void> {
    const run = this.replaying
      .catch(() => {})
      .then(async () => {
        const journal = await this.openJournal();
        for (const { fact, clear } of journal.pending()) {
          await this.o.store.recordDelivery(fact.id, fact.recipient, fact.outcome, fact.reply);
          await clear();
          this.o.logger.info({ id: fact.id, rcpt: fact.recipient, outcome: fact.outcome }, 'delivery result replayed from the journal');
        }
      });
    this.replaying = run;
    return run;
  }

  private async openJournal(): Promise<DeliveryJournal> {
    return (this.journal ??= await DeliveryJournal.open(this.o.journalDir));
  }

  private pause(err: unknown): RetryLater {
    if (!this.paused) {
      this.paused = true;
      this.o.logger.warn({ err }, 'the store refuses writes: delivery paused until it takes them again');
    }
    return new RetryLater(`delivery paused: the store refuses writes (${err instanceof Error ? err.message : String(err)})`, this.o.pauseMs);
  }
}

/** SQLite's SQLITE_FULL ("database or disk is full") or a file system's ENOSPC/EDQUOT. */
export function isDiskFull(err: unknown): boolean {
  const e = err as { errcode?: number; code?: string; message?: string } | undefined;
  return e?.errcode === 13 || e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || /database or disk is full/.test(e?.message ?? '');
}

/** Reserves being written: concurrent first attempts share one write (each writing the same temp file raced to ENOENT at the rename, pausing delivery). */
const reserving = new Map<string, Promise<void>>();

function ensureReserve(file: string): Promise<void> {
  let p = reserving.get(file);
  if (!p) {
    p = makeReserve(file).finally(() => reserving.delete(file));
    reserving.set(file, p);
  }
  return p;
}

async function makeReserve(file: string): Promise<void> {
  if (
    (await fs.stat(file).then(
      (s) => s.size,
      () => -1,
    )) === RESERVE_BYTES
  )
    return;
  const tmp = `${file}.tmp`;
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      const zeros = Buffer.alloc(64 * 1024);
      for (let at = 0; at < RESERVE_BYTES; at += zeros.length) await handle.write(zeros, 0, zeros.length, at);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new Error(`the store's space reserve (${RESERVE_BYTES} bytes) cannot be kept: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function releaseReserve(file: string): Promise<boolean> {
  const existed = await fs.stat(file).then(
    () => true,
    () => false,
  );
  await fs.rm(file, { force: true });
  return existed;
}
