// The "test the connection to the domain's mail server" button: a short SMTP conversation with
// one downstream host (greeting, EHLO, MAIL FROM:<>, RCPT TO:<postmaster@domain>, RSET, QUIT),
// recorded line by line so the admin sees exactly what the server said. No message is sent.
// The server's words are untrusted text: the page escapes them; here they are only clipped.
import net from 'node:net';
import type { Config } from '../config/schema.ts';
import type { DnsResolver } from '../../core/dns.ts';
import { describeTarget, routeFor } from './transport.ts';

export interface TranscriptLine {
  /** Milliseconds since the connection attempt started. */
  ms: number;
  /** C: we said, S: the server said, *: what happened (connect, timeout, error). */
  dir: 'C' | 'S' | '*';
  line: string;
}

export interface SmtpTestResult {
  ok: boolean;
  summary: string;
  transcript: TranscriptLine[];
}

const MAX_LINES = 200;
const MAX_LINE = 512;

export async function smtpConnectionTest(
  target: { host: string; port: number },
  o: { domain: string; helo: string; timeoutMs: number },
): Promise<SmtpTestResult> {
  const started = Date.now();
  const transcript: TranscriptLine[] = [];
  const note = (dir: TranscriptLine['dir'], line: string) => {
    if (transcript.length < MAX_LINES) transcript.push({ ms: Date.now() - started, dir, line: line.slice(0, MAX_LINE) });
  };
  note('*', `connecting to ${target.host} port ${target.port}`);
  const socket = net.connect({ host: target.host, port: target.port });
  socket.setTimeout(o.timeoutMs);
  let buffer = '';
  let waiting: ((reply: { code: number; text: string } | Error) => void) | undefined;
  let pending: { code: number; lines: string[] } | undefined;
  let failure: Error | undefined;
  const fail = (err: Error) => {
    failure ??= err;
    waiting?.(failure);
    waiting = undefined;
  };
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    if (buffer.length > 64 * 1024) return fail(new Error('the server sent an overlong reply'));
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      note('S', line);
      const m = /^(\d{3})([ -])?(.*)$/.exec(line);
      if (!m) return fail(new Error('the server sent something that is not an SMTP reply'));
      pending ??= { code: Number(m[1]), lines: [] };
      pending.lines.push(m[3] ?? '');
      if (m[2] !== '-') {
        const reply = { code: pending.code, text: pending.lines.join(' ') };
        pending = undefined;
        waiting?.(reply);
        waiting = undefined;
      }
    }
  });
  socket.on('timeout', () => fail(new Error(`no answer within ${o.timeoutMs} ms`)));
  socket.on('error', (err) => fail(err));
  socket.on('close', () => fail(new Error('the server closed the connection')));
  const next = () =>
    new Promise<{ code: number; text: string }>((resolve, reject) => {
      if (failure) return reject(failure);
      waiting = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
  const say = (line: string) => {
    note('C', line);
    socket.write(`${line}\r\n`);
    return next();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
      socket.once('timeout', () => reject(new Error(`connect timed out after ${o.timeoutMs} ms`)));
    });
    note('*', 'connected');
    const greeting = await next();
    if (greeting.code !== 220) return done(false, `the server greeted with ${greeting.code} instead of 220`);
    let hello = await say(`EHLO ${o.helo}`);
    if (hello.code !== 250) hello = await say(`HELO ${o.helo}`);
    if (hello.code !== 250) return done(false, `the server refused EHLO and HELO (${hello.code})`);
    const mail = await say('MAIL FROM:<>');
    if (mail.code !== 250) return done(false, `the server refused MAIL FROM:<> with ${mail.code}: bounces to this domain would be refused`);
    const rcpt = await say(`RCPT TO:<postmaster@${o.domain}>`);
    await say('RSET');
    await say('QUIT').catch(() => undefined);
    if (rcpt.code >= 200 && rcpt.code < 300) return done(true, `the server accepts mail for postmaster@${o.domain}`);
    return done(false, `the server answered ${rcpt.code} to RCPT TO:<postmaster@${o.domain}>`);
  } catch (err) {
    note('*', `error: ${(err as Error).message}`);
    return done(false, `connection failed: ${(err as Error).message}`);
  }

  function done(ok: boolean, summary: string): SmtpTestResult {
    socket.destroy();
    note('*', `${ok ? 'passed' : 'failed'} after ${Date.now() - started} ms`);
    return { ok, summary, transcript };
  }
}

/**
 * The connection test for a hosted domain: every next hop of its transport map (MX hops looked
 * up through the gateway's resolver), in the order delivery would try them.
 */
export async function testDownstream(
  domain: string,
  config: Config,
  resolver: DnsResolver,
): Promise<{ ok: boolean; summary: string; hops: ({ host: string; port: number } & SmtpTestResult)[] }> {
  const route = await routeFor(domain, config, resolver);
  if (!route.ok) return { ok: false, summary: route.reason, hops: [] };
  const hops = [];
  for (const t of route.targets) {
    const result = await smtpConnectionTest({ host: t.address, port: t.port }, { domain, helo: config.hostname, timeoutMs: config.delivery.connectTimeoutMs });
    hops.push({ host: describeTarget(t).replace(/:\d+$/, ''), port: t.port, ...result });
  }
  const ok = hops.some((h) => h.ok);
  return { ok, summary: ok ? 'at least one downstream host accepts mail for the domain' : 'no downstream host accepts mail for the domain', hops };
}
