// A minimal SMTP client that times one thing: from writing the final "." of DATA to reading the
// server's reply, i.e. how long the gateway makes a sender wait while it makes the message durable
// and queues it. One message per connection, like smtp-source. An open-loop driver sends at a
// fixed rate (not "as fast as replies come back"), so a slow reply cannot slow the offered load
// down and hide itself (coordinated omission).
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SendResult {
  ok: boolean;
  /** End of DATA ("." written) → reply line read, ms. */
  dataReplyMs: number;
  /** Connect → QUIT sent, ms. */
  totalMs: number;
  reply: string;
}

/** Reads SMTP replies (multi-line "250-…" continuations folded into one). */
class ReplyReader {
  #buf = '';
  #waiting: ((line: string) => void) | undefined;
  #lines: string[] = [];

  constructor(socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      this.#buf += s;
      let i: number;
      while ((i = this.#buf.indexOf('\r\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        if (/^\d{3}-/.test(line)) continue; // continuation: wait for the last line
        if (this.#waiting) {
          const w = this.#waiting;
          this.#waiting = undefined;
          w(line);
        } else this.#lines.push(line);
      }
    });
  }

  next(): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => (this.#waiting = resolve));
  }
}

/** `body` is the message in wire form (CRLF, ending in CRLF); it is dot-stuffed here. */
export function sendOne(port: number, body: Buffer, timeoutMs: number): Promise<SendResult> {
  const stuffed = Buffer.from(body.toString('latin1').replace(/^\./gm, '..'), 'latin1');
  return new Promise((resolve) => {
    const t0 = performance.now();
    let tData = 0;
    let dataReplyMs = NaN;
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const reader = new ReplyReader(socket);
    let settled = false;
    const finish = (ok: boolean, reply: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, dataReplyMs, totalMs: performance.now() - t0, reply });
    };
    const timer = setTimeout(() => finish(false, `no reply within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (err) => finish(false, err.message));
    socket.on('close', () => finish(false, 'connection closed'));
    const expect = async (code: string, send?: string) => {
      if (send !== undefined) socket.write(send);
      const line = await reader.next();
      if (!line.startsWith(code)) throw new Error(line);
      return line;
    };
    socket.once('connect', () => {
      void (async () => {
        await expect('220');
        await expect('250', 'EHLO client.sender.test\r\n');
        await expect('250', 'MAIL FROM:<alice@sender.test>\r\n');
        await expect('250', 'RCPT TO:<user@bench.test>\r\n');
        await expect('354', 'DATA\r\n');
        socket.write(stuffed);
        tData = performance.now();
        socket.write('.\r\n');
        const reply = await reader.next();
        dataReplyMs = performance.now() - tData;
        if (!reply.startsWith('250')) throw new Error(reply);
        socket.write('QUIT\r\n');
        socket.end();
        finish(true, reply);
      })().catch((err: unknown) => finish(false, err instanceof Error ? err.message : String(err)));
    });
  });
}

export interface OpenLoopResult {
  sent: number;
  ok: number;
  failed: number;
  firstError?: string;
  /** Latencies of the successful messages, ms. */
  dataReplyMs: number[];
  /** Messages that started later than scheduled because `maxInFlight` were still open. */
  lateStarts: number;
  offeredRate: number;
  achievedRate: number;
  elapsedMs: number;
}

/** Starts message i at t0 + i/rate, at most maxInFlight open at once, `count` in all. */
export async function openLoop(o: {
  port: number;
  rate: number;
  count: number;
  maxInFlight: number;
  body: Buffer;
  timeoutMs: number;
}): Promise<OpenLoopResult> {
  const t0 = performance.now();
  const results: Promise<void>[] = [];
  const latencies: number[] = [];
  let inFlight = 0;
  let ok = 0;
  let failed = 0;
  let lateStarts = 0;
  let firstError: string | undefined;
  for (let i = 0; i < o.count; i++) {
    const due = t0 + (i * 1000) / o.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    if (inFlight >= o.maxInFlight) {
      lateStarts++;
      while (inFlight >= o.maxInFlight) await sleep(1);
    }
    inFlight++;
    results.push(
      sendOne(o.port, o.body, o.timeoutMs).then((r) => {
        inFlight--;
        if (r.ok) {
          ok++;
          latencies.push(r.dataReplyMs);
        } else {
          failed++;
          firstError ??= r.reply;
        }
      }),
    );
  }
  await Promise.all(results);
  const elapsedMs = performance.now() - t0;
  return {
    sent: o.count,
    ok,
    failed,
    ...(firstError ? { firstError } : {}),
    dataReplyMs: latencies,
    lateStarts,
    offeredRate: o.rate,
    achievedRate: (ok * 1000) / elapsedMs,
    elapsedMs,
  };
}
