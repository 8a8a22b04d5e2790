// Delivery slots of this process: per next hop (its maxConnections and maxPerMinute) and per lane
// (outside destinations may use at most delivery.externalConcurrency of the delivery slots, so
// dead MX hosts of forged senders, or a stuck relay, can never take the slots that deliver to the
// hosted domains' mailbox servers). Taking a slot never waits: a delivery that finds its host or
// lane full gives its queue slot back and is put back in the queue for a moment
// (gateway/store/queue.ts WaitForSlot), so a waiting delivery holds nothing.
// Attempts in all are bounded too (queue.deliverConcurrency): deliver jobs are bounded by their
// queue, but a scan job makes a message's first attempt itself (deliver.ts attemptFirstHere), and
// scan workers must not add attempts beyond what delivery is allowed.
import type { Lane, Target } from './transport.ts';

export type SlotGrant = { ok: true; release: () => void } | { ok: false; reason: string; retryInMs: number };

const RATE_WINDOW_MS = 60_000;
/** How soon a delivery that found no free slot is tried again (plus jitter). */
export const SLOT_RETRY_MS = 1_000;
/** The jitter grows with the queue of waiters, so a thousand messages for one slow host do not poll Redis every second. */
const MAX_SLOT_RETRY_MS = 30_000;
const WAITERS_WINDOW_MS = 10_000;

export class DeliverySlots {
  private readonly active = new Map<string, number>();
  private readonly sent = new Map<string, number[]>();
  private readonly lanes: Record<Lane, number> = { hosted: 0, external: 0 };
  /** Recent refusals per host or lane: roughly how many deliveries wait for it. */
  private readonly waiters = new Map<string, number[]>();

  private readonly externalConcurrency: number;
  private readonly maxAttempts: number;
  private attempts = 0;
  private readonly now: () => number;

  constructor(o: { externalConcurrency: number; maxAttempts?: number }, now: () => number = Date.now) {
    this.externalConcurrency = o.externalConcurrency;
    this.maxAttempts = o.maxAttempts ?? Infinity;
    this.now = now;
  }

  /** A place for one delivery attempt of this process (of maxAttempts), or when to ask again. */
  tryStartAttempt(): SlotGrant {
    if (this.attempts >= this.maxAttempts) {
      return { ok: false, reason: `all ${this.maxAttempts} delivery slots are busy`, retryInMs: this.backoff('attempts', this.maxAttempts, this.now()) };
    }
    this.attempts++;
    return granted(() => this.attempts--);
  }

  /** A slot for one connection to `t`, or why not and when to ask again. */
  tryAcquire(t: Pick<Target, 'host' | 'port' | 'maxConnections' | 'maxPerMinute' | 'lane'>): SlotGrant {
    const key = `${t.host.toLowerCase()}:${t.port}`;
    const now = this.now();
    const recent = (this.sent.get(key) ?? []).filter((at) => at > now - RATE_WINDOW_MS);
    this.sent.set(key, recent);
    const connections = this.active.get(key) ?? 0;
    if (t.lane === 'external' && this.lanes.external >= this.externalConcurrency) {
      return {
        ok: false,
        reason: `all ${this.externalConcurrency} slots for outside destinations are busy`,
        retryInMs: this.backoff('lane:external', this.externalConcurrency, now),
      };
    }
    if (connections >= t.maxConnections) {
      return { ok: false, reason: `${t.host}:${t.port} has ${connections} connections, its limit`, retryInMs: this.backoff(key, t.maxConnections, now) };
    }
    if (t.maxPerMinute > 0 && recent.length >= t.maxPerMinute) {
      return { ok: false, reason: `${t.host}:${t.port} reached ${t.maxPerMinute} messages a minute`, retryInMs: recent[0]! + RATE_WINDOW_MS - now + 50 };
    }
    this.active.set(key, connections + 1);
    this.lanes[t.lane]++;
    this.waiters.delete(key);
    recent.push(now);
    return granted(() => {
      this.active.set(key, (this.active.get(key) ?? 1) - 1);
      this.lanes[t.lane]--;
    });
  }

  /** Retry delay for a refused delivery: spread over more time the more deliveries wait per slot. */
  private backoff(key: string, slots: number, now: number): number {
    const recent = (this.waiters.get(key) ?? []).filter((at) => at > now - WAITERS_WINDOW_MS);
    recent.push(now);
    this.waiters.set(key, recent);
    const spread = Math.min(MAX_SLOT_RETRY_MS, SLOT_RETRY_MS * Math.max(1, Math.ceil(recent.length / slots)));
    return SLOT_RETRY_MS + Math.floor(Math.random() * spread);
  }
}

/** A grant whose release gives the place back once, however often it is called. */
function granted(giveBack: () => void): SlotGrant {
  let released = false;
  return {
    ok: true,
    release: () => {
      if (released) return;
      released = true;
      giveBack();
    },
  };
}
