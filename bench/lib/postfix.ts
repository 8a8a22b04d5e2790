// Postfix's load tools, driven as child processes: smtp-source (the SMTP client that generates
// load) and smtp-sink (the server that accepts and discards mail: the ceiling, and the downstream
// mailbox server of the full-path runs). Both are small C programs, so the load generator costs
// the machine far less than the gateway under test does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const SMTP_SOURCE = '/usr/sbin/smtp-source';
export const SMTP_SINK = '/usr/sbin/smtp-sink';

export function postfixToolsPresent(): boolean {
  return existsSync(SMTP_SOURCE) && existsSync(SMTP_SINK);
}

export interface SourceRun {
  ok: boolean;
  elapsedMs: number;
  /** smtp-source's own complaint when it gave up (it stops at the first unexpected reply). */
  error?: string;
  timedOut: boolean;
}

export interface SourceOptions {
  port: number;
  sessions: number;
  count: number;
  /** Pre-formatted message (LF line ends; smtp-source sends CRLF and dot-stuffs). */
  file: string;
  timeoutMs: number;
  onSpawn?: (pid: number) => void;
}

/**
 * smtp-source with a new connection per message (no -d), HELO/MAIL/RCPT/DATA/QUIT each time,
 * `sessions` in parallel, `count` messages in all. Resolves when it exits or is killed at timeoutMs.
 */
export function runSource(o: SourceOptions): Promise<SourceRun> {
  const args = [
    '-s',
    String(o.sessions),
    '-m',
    String(o.count),
    '-F',
    o.file,
    '-f',
    'alice@sender.test',
    '-t',
    'user@bench.test',
    '-M',
    'client.sender.test',
    `127.0.0.1:${o.port}`,
  ];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (child.pid) o.onSpawn?.(child.pid);
    let stderr = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (stderr.length < 4000) stderr += s;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.on('error', (err) => {
      stderr += err.message;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const elapsedMs = performance.now() - t0;
      const ok = code === 0 && !timedOut;
      resolve({ ok, elapsedMs, timedOut, ...(ok ? {} : { error: stderr.trim() || (timedOut ? `killed after ${o.timeoutMs} ms` : `exit ${code}`) }) });
    });
  });
}

export interface Sink {
  readonly port: number;
  readonly pid: number;
  /** Messages received so far (the "." count smtp-sink reports with -c). */
  messages(): number;
  /** Resolves true once `count` messages arrived in all, false at timeoutMs. */
  waitFor(count: number, timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * smtp-sink on 127.0.0.1:port with running counters (-c). A fresh port per sink keeps
 * connections to earlier sinks (TIME_WAIT) from crowding out the ephemeral port range.
 */
export async function startSink(port: number): Promise<Sink> {
  // smtp-sink refuses to run as root without -u (it drops privileges after binding).
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child: ChildProcess = spawn(SMTP_SINK, [...user, '-c', '-m', '512', `127.0.0.1:${port}`, '1024'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let count = 0;
  let tail = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('latin1');
  child.stdout!.on('data', (s: string) => {
    // Counter lines look like "sess=12 quit=12 mesg=12\r"; keep only the last complete one.
    tail = (tail + s).slice(-200);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    if (all.length > 0) count = Math.max(count, Number(all[all.length - 1][1]));
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4000) stderr += s;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await waitForListener(port, 5000, () => (child.exitCode !== null ? `smtp-sink exited: ${stderr.trim()}` : undefined));
  return {
    port,
    pid: child.pid!,
    messages: () => count,
    waitFor(target, timeoutMs) {
      if (count >= target) return Promise.resolve(true);
      return new Promise((resolve) => {
        const check = () => {
          if (count >= target) done(true);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        const done = (v: boolean) => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(v);
        };
        waiters.add(check);
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

/** Polls until something accepts TCP connections on the port (or `failed()` says why not). */
export async function waitForListener(port: number, timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}
