// The whole gateway as a real process (`mailmoat start`), for tests that kill it: started,
// SIGKILLed and restarted on one fixed SMTP port, its output appended to a log file in its data
// dir. A process that ends without being killed by the test is recorded (with the tail of its
// log) and started again, so that one crash does not hide what else goes wrong; tests assert
// that there were none. `startListenerProbe` checks that the SMTP listener answers.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');

export interface UnexpectedExit {
  at: number;
  code: number | null;
  signal: string | null;
  logTail: string;
}

export interface GatewayProcess {
  readonly logFile: string;
  /** Processes that ended on their own (crashes), oldest first. */
  readonly unexpectedExits: UnexpectedExit[];
  /** True once it ended on its own more than `maxRestarts` times and was left down. */
  readonly gaveUp: boolean;
  /** Starts the process and waits until the listener greets with 220. */
  start(): Promise<void>;
  /** SIGKILL, then waits for the process to be gone. */
  kill(): Promise<void>;
  /** The last `lines` lines of the log. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export function gatewayProcess(o: { configFile: string; dataDir: string; smtpPort: number; maxRestarts?: number }): GatewayProcess {
  const logFile = path.join(o.dataDir, 'gateway.log');
  const unexpectedExits: UnexpectedExit[] = [];
  let child: ChildProcess | undefined;
  let stopping = false;
  let gaveUp = false;
  const logTail = (lines = 40) => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const spawnOne = () => {
    const fd = openSync(logFile, 'a');
    const c = spawn(path.join(REPO, 'node_modules/.bin/node'), [path.join(REPO, 'gateway/cli.ts'), 'start', '--config', o.configFile], {
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    c.once('exit', (code, signal) => {
      if (child !== c || stopping || (c as { killedByTest?: boolean }).killedByTest) return;
      unexpectedExits.push({ at: Date.now(), code, signal, logTail: logTail() });
      child = undefined;
      // Keep the soak going (as a supervisor would), so one crash does not hide the rest.
      if (unexpectedExits.length <= (o.maxRestarts ?? 5)) child = spawnOne();
      else gaveUp = true;
    });
    return c;
  };
  return {
    logFile,
    unexpectedExits,
    get gaveUp() {
      return gaveUp;
    },
    logTail,
    async start() {
      child = spawnOne();
      const deadline = Date.now() + 30_000;
      while (!(await greets(o.smtpPort, 1_000))) {
        if (Date.now() > deadline || gaveUp) throw new Error(`gateway did not start within 30 s; log:\n${logTail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill() {
      const c = child;
      if (!c) return;
      (c as { killedByTest?: boolean }).killedByTest = true;
      const gone = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await gone;
      if (child === c) child = undefined;
    },
    async stop() {
      stopping = true;
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await gone;
    },
  };
}

/** True when a new connection gets a 220 greeting within `timeoutMs`. */
export function greets(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let seen = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      if (ok) {
        socket.end('QUIT\r\n');
        setTimeout(() => socket.destroy(), 500).unref();
      } else socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\n')) done(seen.startsWith('220'));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

export interface ListenerProbe {
  /** Times at which a probe connection was greeted with 220. */
  readonly answeredAt: number[];
  stop(): Promise<void>;
}

/** Connects every `everyMs` and records each 220 greeting; probes overlap so one slow answer does not hide the next. */
export function startListenerProbe(port: number, everyMs: number, timeoutMs: number): ListenerProbe {
  const answeredAt: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const p = greets(port, timeoutMs).then((ok) => {
      if (ok) answeredAt.push(Date.now());
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }, everyMs);
  return {
    answeredAt,
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}
