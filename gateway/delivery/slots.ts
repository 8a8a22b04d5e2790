// Delivery slots of this process: per next hop (its maxConnections and maxPerMinute) and per lane
// (outside destinations may use at most delivery.externalConcurrency of the delivery slots, so
// dead MX hosts of forged senders, or a stuck relay, can never take the slots that deliver to the
// hosted domains' mailbox servers). Taking a slot never waits: a delivery that finds its host or
// lane full gives its queue slot back and is put back in the queue for a moment
// (gateway/store/queue.ts WaitForSlot), so a waiting delivery holds nothing.
import type { Lane, Target } from './transport.ts';

export type SlotGrant = { ok: true; release: () => void } | { ok: false; reason: string; retryInMs: number };

const RATE_WINDOW_MS = 60_000;
/** How soon a delivery that found no free slot is tried again (plus up to as much jitter). */
export const SLOT_RETRY_MS = 1_000;

export class DeliverySlots {
  private readonly active = new Map<string, number>();
  private readonly sent = new Map<string, number[]>();
  private readonly lanes: Record<Lane, number> = { hosted: 0, external: 0 };

  private readonly externalConcurrency: number;
  private readonly now: () => number;

  constructor(o: { externalConcurrency: number }, now: () => number = Date.now) {
    this.externalConcurrency = o.externalConcurrency;
    this.now = now;
  }

  /** A slot for one connection to `t`, or why not and when to ask again. */
  tryAcquire(t: Pick<Target, 'host' | 'port' | 'maxConnections' | 'maxPerMinute' | 'lane'>): SlotGrant {
    const key = `${t.host.toLowerCase()}:${t.port}`;
    const now = this.now();
    const recent = (this.sent.get(key) ?? []).filter((at) => at > now - RATE_WINDOW_MS);
    this.sent.set(key, recent);
    const connections = this.active.get(key) ?? 0;
    const jitter = () => SLOT_RETRY_MS + Math.floor(Math.random() * SLOT_RETRY_MS);
    if (t.lane === 'external' && this.lanes.external >= this.externalConcurrency) {
      return { ok: false, reason: `all ${this.externalConcurrency} slots for outside destinations are busy`, retryInMs: jitter() };
    }
    if (connections >= t.maxConnections) {
      return { ok: false, reason: `${t.host}:${t.port} has ${connections} connections, its limit`, retryInMs: jitter() };
    }
    if (t.maxPerMinute > 0 && recent.length >= t.maxPerMinute) {
      return { ok: false, reason: `${t.host}:${t.port} reached ${t.maxPerMinute} messages a minute`, retryInMs: recent[0]! + RATE_WINDOW_MS - now + 50 };
    }
    this.active.set(key, connections + 1);
    this.lanes[t.lane]++;
    recent.push(now);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.active.set(key, (this.active.get(key) ?? 1) - 1);
        this.lanes[t.lane]--;
      },
    };
  }
}
