// Group commit for the metadata stores' hot writes (metadata.ts): one transaction, one fsync, for
// the writes of many concurrent callers.

/** Rows written together at most (a bound on one transaction's size). */
const GROUP_COMMIT_MAX = 256;

/** Thrown by a group's `write` when one item's own statement failed; the others may still be written. */
export class ItemFailed extends Error {}

/**
 * Group commit: items asked for while one commit is under way (concurrent SMTP sessions
 * accepting, concurrent jobs stepping at the same moment) are written together in the next
 * transaction, so that N callers cost one commit, one WAL fsync, instead of N. Every caller still
 * resolves only after the commit that holds its item (a 250 still waits for it), with its own
 * result. A failed commit rejects every caller in it, except when `write` threw ItemFailed (one
 * item's statement failed, not the transaction) and `alone` is given: then each item of the batch,
 * rolled back whole, is written again on its own, so that one bad item fails only its caller.
 * (Not for every error: a database that refuses writes, busy or full, would then make each caller
 * wait for it once more.)
 */
export function groupCommit<T, R = void>(write: (batch: T[]) => Promise<R[]>, alone?: (item: T) => Promise<R>): (item: T) => Promise<R> {
  type Waiter = { item: T; resolve: (r: R) => void; reject: (err: unknown) => void };
  const waiting: Waiter[] = [];
  let writing = false;
  const settleAlone = (b: Waiter) => alone!(b.item).then(b.resolve, b.reject);
  const drain = async () => {
    while (waiting.length > 0) {
      const batch = waiting.splice(0, GROUP_COMMIT_MAX);
      try {
        const results = await write(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]));
      } catch (err) {
        if (alone && batch.length > 1 && err instanceof ItemFailed) await Promise.all(batch.map(settleAlone));
        else for (const b of batch) b.reject(err);
      }
    }
    writing = false;
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (writing) return;
      writing = true;
      // One turn of the event loop first: node:sqlite commits synchronously, so without it the
      // callers whose work completes in the same poll phase would each commit alone.
      setImmediate(() => void drain());
    });
}
