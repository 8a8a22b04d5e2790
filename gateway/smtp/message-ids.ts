// Message ids: ULIDs (time-ordered, 26 characters). ulid's default randomness asks the kernel for
// one byte per character, 16 calls for each new id: ~40 µs a message on the accept path. The
// same bytes come from a pool refilled 4 KB at a time (still crypto.randomFillSync: ids stay
// unguessable; each byte is used once).
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/** A PRNG in ulid's shape (a fraction in [0, 1) from one random byte, as ulid's own). */
export function pooledRandom(poolBytes = 4096): () => number {
  const pool = Buffer.alloc(poolBytes);
  let next = poolBytes;
  return () => {
    if (next === poolBytes) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++] / 256;
  };
}

/** A source of message ids, monotonic within the process. */
export function messageIds(): () => string {
  const ulid = monotonicFactory(pooledRandom());
  return () => ulid();
}
