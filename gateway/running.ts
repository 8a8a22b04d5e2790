// Finding the running mailmoat processes of a data dir, for `mailmoat reload`: each role process
// (start, smtp, worker, console) writes run/<role>.<pid>.pid under the data dir while it runs.
// A pid file rather than the health endpoint: it needs no port, works for every role, and finds
// every process of one machine (several may share a data dir and config file).
//
// A pid file left by a crash may name a pid that now belongs to another program; sending it SIGHUP
// could kill it (SIGHUP's default action). So a pid is signalled only when /proc says its command
// line runs mailmoat (gateway/cli.ts); where there is no /proc, only when the process exists.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const runDir = (dataDir: string) => path.join(dataDir, 'run');

/** Records this process as running `role`; returns the function that removes the record. */
export function registerProcess(dataDir: string, role: string): () => void {
  const dir = runDir(dataDir);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${role}.${process.pid}.pid`);
  writeFileSync(file, `${process.pid}\n`);
  return () => rmSync(file, { force: true });
}

export interface SignalOutcome {
  role: string;
  pid: number;
  /** signalled, or why not (the pid file was stale and is removed). */
  outcome: 'signalled' | 'not running' | 'not mailmoat';
}

/** Sends `signal` to each mailmoat process recorded under `dataDir`. */
export function signalRunning(dataDir: string, signal: NodeJS.Signals): SignalOutcome[] {
  const dir = runDir(dataDir);
  if (!existsSync(dir)) return [];
  const outcomes: SignalOutcome[] = [];
  for (const name of readdirSync(dir).sort()) {
    const m = /^([a-z]+)\.(\d+)\.pid$/.exec(name);
    if (!m) continue;
    const role = m[1]!;
    const pid = Number(m[2]);
    const stale = (outcome: SignalOutcome['outcome']) => {
      rmSync(path.join(dir, name), { force: true });
      outcomes.push({ role, pid, outcome });
    };
    if (!isAlive(pid)) {
      stale('not running');
      continue;
    }
    if (!runsMailmoat(pid)) {
      stale('not mailmoat');
      continue;
    }
    process.kill(pid, signal);
    outcomes.push({ role, pid, outcome: 'signalled' });
  }
  return outcomes;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function runsMailmoat(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return !existsSync('/proc/self'); // no /proc on this system: the pid file is all we have
  }
  return cmdline.split('\0').some((arg) => arg.endsWith(path.join('gateway', 'cli.ts')));
}
