// Containment: no error in one message's processing may stop the process that also holds the SMTP
// listeners. Every job runs inside a scope (AsyncLocalStorage) that names its message, so an error
// that escapes its promise (a stream 'error' nobody listens to, a throw inside a library callback)
// is still traced back to the job it came from.
//
// Policy for what escapes (process 'uncaughtException' / 'unhandledRejection'), the same in every role:
//   - inside a job's scope: the error is logged with the message id and fails THAT job (the job
//     boundary in store/queue.ts counts it as a fault: retried, and set aside as "held: poison"
//     after POISON_FAULTS). Its state is known: the message is in the spool and the store, and
//     every job is idempotent. The process keeps serving.
//   - an unhandledRejection outside any job: logged, and the process keeps serving. A rejection
//     ends one async chain only; nothing half-done was unwound from under a shared object.
//   - an uncaughtException outside any job (an SMTP session, the console, a timer): logged with its
//     stack; the process keeps serving, because each SMTP session and console request is an object
//     of its own with its own deadlines, and ending the listeners for one peer's fault is the denial
//     of service this guards against. But UNATTRIBUTED_LIMIT of them within a minute means something
//     shared is broken: the process then stops cleanly and exits 1 for its supervisor to restart it
//     (the spool keeps every accepted message; see the README's crash table).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from './log.ts';

export interface JobScope {
  queue: string;
  messageId: string;
  /** Fails the job with an error that escaped its promise. */
  fail(err: Error): void;
}

const scopes = new AsyncLocalStorage<JobScope>();

/** The job whose code is running now, if any. */
export function currentJob(): JobScope | undefined {
  return scopes.getStore();
}

/**
 * Runs a job's handler in its scope. The result settles with the handler, or rejects as soon as
 * an error escapes from code the handler started (its leftovers are abandoned; the job is redone).
 */
export function runInJobScope<T>(scope: { queue: string; messageId: string }, handler: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    const full: JobScope = { ...scope, fail: (err) => settle(() => reject(err)) };
    scopes.run(full, () => {
      handler().then(
        (v) => settle(() => resolve(v)),
        (err: unknown) => settle(() => reject(err)),
      );
    });
  });
}

/** Unattributed uncaught exceptions within a minute before the process gives up and restarts. */
export const UNATTRIBUTED_LIMIT = 5;

/**
 * What one escaped error does (the policy above): fails its job, or is logged; `stop` is called
 * when unattributed exceptions reach UNATTRIBUTED_LIMIT within a minute.
 */
export function escapedErrorHandler(logger: Logger, stop: (reason: string) => void, now: () => number = Date.now) {
  const recent: number[] = [];
  let stopped = false;
  return (kind: 'uncaughtException' | 'unhandledRejection', raw: unknown): void => {
    const err = raw instanceof Error ? raw : new Error(String(raw));
    const job = currentJob();
    if (job) {
      logger.error({ err, id: job.messageId, queue: job.queue, kind }, 'an error escaped a job: the job fails, the process keeps serving');
      job.fail(err);
      return;
    }
    logger.error({ err, kind }, 'an error escaped outside any job');
    if (kind === 'unhandledRejection') return;
    const at = now();
    recent.push(at);
    while (recent.length > 0 && recent[0] < at - 60_000) recent.shift();
    if (recent.length >= UNATTRIBUTED_LIMIT && !stopped) {
      stopped = true;
      logger.fatal({ count: recent.length }, 'too many unexplained errors within a minute: stopping for a restart');
      stop(`${recent.length} uncaught exceptions within a minute`);
    }
  };
}

/**
 * Installs the policy above for this process. `stop` ends the process cleanly (exit code 1)
 * when unattributed exceptions pile up. Returns a function that removes the handlers.
 */
export function installProcessGuards(logger: Logger, stop: (reason: string) => void): () => void {
  const handle = escapedErrorHandler(logger, stop);
  const onException = (err: unknown) => handle('uncaughtException', err);
  const onRejection = (err: unknown) => handle('unhandledRejection', err);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
