// Per-client counters for the front line's limits (like Postfix's anvil): sessions open now and
// events in a sliding time window. In memory, per process: in a cluster each node counts its own
// clients (as anvil does per host). Keys are rules/frontline.ts clientKey() values (IPv4 address,
// IPv6 /64). Memory is bounded: idle keys are dropped, and past maxKeys the oldest go first.
// The decisions (how many is too many, which reply) are in rules/frontline.ts.

export class SessionCounter {
  readonly #open = new Map<string, number>();

  /** Counts one more session for the key; returns the new count. */
  open(key: string): number {
    const n = (this.#open.get(key) ?? 0) + 1;
    this.#open.set(key, n);
    return n;
  }

  close(key: string): void {
    const n = (this.#open.get(key) ?? 0) - 1;
    if (n <= 0) this.#open.delete(key);
    else this.#open.set(key, n);
  }

  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}

/** Events per key in the last `windowMs`, kept as timestamps (at most `max + 1` per key are needed). */
export class WindowCounter {
  readonly #events = new Map<string, number[]>();
  readonly #windowMs: number;
  readonly #keep: number;
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(o: { windowSec: number; max: number; maxKeys?: number; now?: () => number }) {
    this.#windowMs = o.windowSec * 1000;
    this.#keep = o.max + 1;
    this.#maxKeys = o.maxKeys ?? 100_000;
    this.#now = o.now ?? Date.now;
  }

  /** Records one event; returns how many the key had in the window, this one included. */
  hit(key: string): number {
    const now = this.#now();
    const recent = (this.#events.get(key) ?? []).filter((t) => now - t < this.#windowMs);
    recent.push(now);
    // Re-inserted so that Map order is least recently active first (for eviction).
    this.#events.delete(key);
    this.#events.set(key, recent.slice(-this.#keep));
    if (this.#events.size > this.#maxKeys) this.#evict(now);
    return recent.length;
  }

  /** Takes an event back (e.g. a recipient that was refused for another reason after counting). */
  undo(key: string): void {
    this.#events.get(key)?.pop();
  }

  #evict(now: number): void {
    for (const [key, times] of this.#events) {
      if (this.#events.size <= this.#maxKeys && times.every((t) => now - t < this.#windowMs)) break;
      if (this.#events.size > this.#maxKeys || times.every((t) => now - t >= this.#windowMs)) this.#events.delete(key);
    }
  }
}
