// Recipient verification by asking the domain's own server (Postfix reject_unverified_recipient):
// EHLO, MAIL FROM:<>, RCPT TO:<recipient>, QUIT — no message is sent. A 2xx means the mailbox
// exists, a 5xx that it does not (the server's words are kept for the reply), anything else (4xx,
// no connection, timeout, garbage) means we do not know: the next host is tried, and if none
// answers the caller tempfails (450), never accepts. Known answers are cached (positive and
// negative TTLs); "do not know" never is, and concurrent probes for one address share one.
import net from 'node:net';
import type { ProbeResult } from '../../rules/frontline.ts';

export interface ProbeTarget {
  host: string;
  port: number;
}

export interface ProbeOptions {
  hosts: ProbeTarget[];
  timeoutMs: number;
  positiveTtlSec: number;
  negativeTtlSec: number;
}

export interface RecipientProber {
  verify(recipient: string, o: ProbeOptions): Promise<ProbeResult>;
}

const MAX_REPLY = 16 * 1024;
const MAX_CACHE = 50_000;

type Reply = { code: number; text: string };

/** One SMTP conversation; resolves with the reply to RCPT, or rejects on error, timeout or a non-2xx before RCPT. */
function converse(target: ProbeTarget, helo: string, recipient: string, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => finish(new Error(`no answer from ${target.host}:${target.port} within ${timeoutMs} ms`)), timeoutMs);
    let buffer = '';
    let lines: string[] = [];
    const steps = [`EHLO ${helo}`, 'MAIL FROM:<>', `RCPT TO:<${recipient}>`];
    let step = -1; // -1: waiting for the greeting
    let settled = false;
    const finish = (result: Error | Reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!socket.destroyed) socket.end('QUIT\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`${target.host}:${target.port} closed the connection`)));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      if (buffer.length > MAX_REPLY) return finish(new Error('overlong reply'));
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
        if (!m) return finish(new Error(`not an SMTP reply: ${line.slice(0, 80)}`));
        lines.push(m[3] ?? '');
        if (m[2] === '-') continue;
        const reply = { code: Number(m[1]), text: lines.join(' ').trim() };
        lines = [];
        // The RCPT reply is the answer; before it, anything but 2xx means this host cannot tell us.
        if (step === steps.length - 1) return finish(reply);
        if (reply.code < 200 || reply.code >= 300) return finish(Object.assign(new Error(`${target.host} answered ${reply.code} ${reply.text}`), { reply }));
        step++;
        socket.write(`${steps[step]}\r\n`);
      }
    });
  });
}

export function createRecipientProber(o: { helo: string; now?: () => number }): RecipientProber {
  const now = o.now ?? Date.now;
  const cache = new Map<string, { until: number; result: ProbeResult }>();
  const inFlight = new Map<string, Promise<ProbeResult>>();

  async function probe(recipient: string, opts: ProbeOptions): Promise<ProbeResult> {
    const problems: string[] = [];
    for (const target of opts.hosts) {
      try {
        const reply = await converse(target, o.helo, recipient, opts.timeoutMs);
        if (reply.code >= 200 && reply.code < 300) return { status: 'exists' };
        if (reply.code >= 500) return { status: 'unknown', reply: `${reply.code} ${reply.text}` };
        problems.push(`${target.host} answered ${reply.code} ${reply.text}`);
      } catch (err) {
        problems.push(err instanceof Error ? err.message : String(err));
      }
    }
    return { status: 'failed', reason: problems.join('; ') || 'no downstream host' };
  }

  return {
    verify(recipient, opts) {
      const key = recipient.toLowerCase();
      const hit = cache.get(key);
      if (hit && hit.until > now()) return Promise.resolve(hit.result);
      let pending = inFlight.get(key);
      if (!pending) {
        pending = probe(recipient, opts).then((result) => {
          inFlight.delete(key);
          if (result.status !== 'failed') {
            const ttl = result.status === 'exists' ? opts.positiveTtlSec : opts.negativeTtlSec;
            cache.delete(key);
            cache.set(key, { until: now() + ttl * 1000, result });
            if (cache.size > MAX_CACHE) cache.delete(cache.keys().next().value as string);
          }
          return result;
        });
        inFlight.set(key, pending);
      }
      return pending;
    },
  };
}
