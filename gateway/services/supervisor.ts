// Starts one local daemon, waits until it answers, restarts it with backoff when it dies, and
// stops it for sure. Daemons run detached in their own process group so a Ctrl-C on the terminal
// does not kill them before we stop them in order, and so a last-resort SIGKILL also reaches
// their workers (spamd's children). A pidfile lets the next run kill what a crashed run left.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';

export interface ManagedService {
  readonly name: string;
  stop(): Promise<void>;
}

/** What the supervisor adds; useful to health pages and tests. */
export interface SupervisedService extends ManagedService {
  /** pid of the running daemon once it answers; undefined while it is down or starting. */
  readonly pid: number | undefined;
  /** Restarts after unexpected exits so far. */
  readonly restarts: number;
}

export interface DaemonSpec {
  name: string;
  command: string;
  args: string[];
  /** Working directory; also where the pidfile lives. */
  dir: string;
  /** stdout and stderr go here (appended). */
  logFile: string;
  /** Other logs the daemon writes itself, shown in error messages too. */
  extraLogFiles?: string[];
  pidFile: string;
  /**
   * Strings that must all occur in /proc/<pid>/cmdline before a pidfile from an earlier run is
   * trusted: the pid may have been reused by an unrelated process since.
   */
  cmdlineMarkers: string[];
  /** One readiness check; throws while the daemon is not answering. */
  probe: () => Promise<void>;
  readyTimeoutMs: number;
  stopTimeoutMs?: number;
  /** Run as this user (PostgreSQL refuses to run as root). */
  runAs?: { uid: number; gid: number };
  logger: Logger;
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

interface Running {
  child: ChildProcess;
  pid: number;
  exited: Promise<ExitInfo>;
  gone: ExitInfo | undefined;
  ready: boolean;
  readyAt: number;
}

const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
// A daemon that ran this long before dying gets a fresh backoff: it was not crash-looping.
const STABLE_AFTER_MS = 60_000;
const PROBE_INTERVAL_MS = 100;

/** Starts the daemon and resolves once it answers; rejects with its log tail otherwise. */
export async function startSupervised(spec: DaemonSpec): Promise<SupervisedService> {
  await reapStaleDaemon({ name: spec.name, pidFile: spec.pidFile, markers: spec.cmdlineMarkers, logger: spec.logger });
  const supervisor = new Supervisor(spec);
  await supervisor.start();
  return supervisor;
}

class Supervisor implements SupervisedService {
  readonly name: string;
  readonly #spec: DaemonSpec;
  #run: Running | undefined;
  #stopping: Promise<void> | undefined;
  #restarts = 0;
  #backoffMs = INITIAL_BACKOFF_MS;
  #timer: NodeJS.Timeout | undefined;

  constructor(spec: DaemonSpec) {
    this.name = spec.name;
    this.#spec = spec;
  }

  get pid(): number | undefined {
    return this.#run && this.#run.ready && !this.#run.gone ? this.#run.pid : undefined;
  }

  get restarts(): number {
    return this.#restarts;
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    await this.#launch();
    this.#spec.logger.info({ service: this.name, daemonPid: this.pid, startupMs: Date.now() - t0 }, `${this.name} is ready`);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#timer);
    const run = this.#run;
    if (run) await this.#terminate(run);
    rmSync(this.#spec.pidFile, { force: true });
    this.#spec.logger.info({ service: this.name }, `${this.name} stopped`);
  }

  /** Spawns one process and waits until it answers. On failure nothing is left running. */
  async #launch(): Promise<void> {
    const spec = this.#spec;
    // A marker line, so a log tail shows where this attempt begins.
    appendFileSync(spec.logFile, `--- ${new Date().toISOString()} mailmoat: starting ${spec.name}\n`);
    const out = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, { cwd: spec.dir, detached: true, stdio: ['ignore', out, out], ...spec.runAs });
    } finally {
      closeSync(out);
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    if (child.pid === undefined) {
      const info = await exited;
      throw new Error(`could not start ${spec.name} (${spec.command}): ${info.error?.message ?? 'no pid'}`);
    }
    const run: Running = { child, pid: child.pid, exited, gone: undefined, ready: false, readyAt: 0 };
    this.#run = run;
    liveGroups.add(run.pid);
    writeFileSync(spec.pidFile, `${run.pid}\n`);
    void exited.then((info) => this.#onExit(run, info));
    await this.#waitReady(run);
    run.ready = true;
    run.readyAt = Date.now();
  }

  async #waitReady(run: Running): Promise<void> {
    const spec = this.#spec;
    const deadline = Date.now() + spec.readyTimeoutMs;
    let lastProbe = 'not probed yet';
    for (;;) {
      if (run.gone) throw this.#startError(`exited during start-up (${describeExit(run.gone)})`);
      if (this.#stopping) throw new Error(`${spec.name} was stopped during start-up`);
      try {
        await spec.probe();
        if (!run.gone) return;
      } catch (err) {
        lastProbe = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) {
        await this.#terminate(run);
        throw this.#startError(`did not answer within ${spec.readyTimeoutMs} ms (last check: ${lastProbe})`);
      }
      await Promise.race([sleep(PROBE_INTERVAL_MS), run.exited]);
    }
  }

  #startError(what: string): Error {
    const spec = this.#spec;
    const tail = logTail([spec.logFile, ...(spec.extraLogFiles ?? [])]);
    return new Error(`${spec.name} ${what}.\n--- last lines of its logs ---\n${tail}`);
  }

  #onExit(run: Running, info: ExitInfo): void {
    run.gone = info;
    liveGroups.delete(run.pid);
    // Workers of a daemon that died hard (spamd's children) would otherwise linger.
    killGroup(run.pid, 'SIGKILL');
    if (this.#run !== run) return;
    rmSync(this.#spec.pidFile, { force: true });
    // Start-up failures are reported by #waitReady; a stop is expected.
    if (!run.ready || this.#stopping) return;
    if (Date.now() - run.readyAt > STABLE_AFTER_MS) this.#backoffMs = INITIAL_BACKOFF_MS;
    this.#scheduleRestart(`exited unexpectedly (${describeExit(info)})`);
  }

  #scheduleRestart(reason: string): void {
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(delay * 2, MAX_BACKOFF_MS);
    const spec = this.#spec;
    spec.logger.error(
      { service: spec.name, restartInMs: delay, logTail: logTail([spec.logFile, ...(spec.extraLogFiles ?? [])], 1500) },
      `${spec.name} ${reason}; restarting`,
    );
    this.#timer = setTimeout(() => {
      void this.#restart();
    }, delay);
  }

  async #restart(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopping) return;
    try {
      await this.#launch();
      this.#restarts += 1;
      this.#spec.logger.warn({ service: this.name, daemonPid: this.pid, restarts: this.#restarts }, `${this.name} restarted`);
    } catch (err) {
      if (!this.#stopping) this.#scheduleRestart(`failed to restart: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** SIGTERM, then SIGKILL to the whole group after the deadline; resolves when it is gone. */
  async #terminate(run: Running): Promise<void> {
    if (run.gone) return;
    // Only the leader gets SIGTERM: the daemons stop their own workers in order.
    signal(run.pid, 'SIGTERM');
    const deadline = this.#spec.stopTimeoutMs ?? 10_000;
    // The deadline timer is cancelled once the process is gone, so it cannot hold the event loop.
    const cancel = new AbortController();
    const inTime = await Promise.race([run.exited.then(() => true), sleep(deadline, false, { signal: cancel.signal }).catch(() => true)]);
    cancel.abort();
    if (!inTime) {
      this.#spec.logger.warn({ service: this.name, daemonPid: run.pid }, `${this.name} ignored SIGTERM for ${deadline} ms; killing it`);
      killGroup(run.pid, 'SIGKILL');
      await run.exited;
    }
    // The leader is gone; its workers were SIGKILLed in #onExit but may take a moment to die.
    await waitGroupGone(run.pid, 5_000);
  }
}

/**
 * If `pidFile` names a live process whose command line carries every marker, it is a daemon an
 * earlier (crashed) run left behind: stop it, or a second copy would fight it for the socket and
 * the data files. A pidfile naming anything else is stale and only removed.
 */
export async function reapStaleDaemon(o: { name: string; pidFile: string; markers: string[]; logger: Logger }): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(o.pidFile, 'utf8').trim(), 10);
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 1 && isAlive(pid)) {
    const cmdline = readCmdline(pid);
    if (o.markers.every((m) => cmdline.includes(m))) {
      o.logger.warn({ service: o.name, daemonPid: pid, cmdline }, `killing a ${o.name} left running by an earlier run`);
      await killAndWait(pid);
    } else {
      o.logger.warn({ service: o.name, stalePid: pid, pidFile: o.pidFile }, 'stale pidfile names an unrelated process; leaving that process alone');
    }
  }
  rmSync(o.pidFile, { force: true });
}

async function killAndWait(pid: number): Promise<void> {
  const ownGroup = processGroup(pid) === pid;
  const send = (sig: NodeJS.Signals) => (ownGroup ? killGroup(pid, sig) : signal(pid, sig));
  send('SIGTERM');
  for (let waited = 0; waited < 10_000 && isAlive(pid); waited += 100) await sleep(100);
  send('SIGKILL');
  for (let waited = 0; waited < 5_000 && isAlive(pid); waited += 50) await sleep(50);
  if (isAlive(pid)) throw new Error(`could not kill leftover process ${pid}`);
  if (ownGroup) {
    killGroup(pid, 'SIGKILL');
    await waitGroupGone(pid, 5_000);
  }
}

/** Live (non-zombie) members of process group `pgid`: a daemon and its workers. */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') members.push(Number(entry));
  }
  return members;
}

async function waitGroupGone(pgid: number, timeoutMs: number): Promise<void> {
  for (let waited = 0; waited < timeoutMs && processGroupMembers(pgid).length > 0; waited += 20) await sleep(20);
}

/** True while the process exists and is not a zombie (a zombie has already let go of its socket). */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function processGroup(pid: number): number | undefined {
  const stat = readStat(pid);
  if (stat === undefined) return undefined;
  // Fields after "(comm)": state ppid pgrp …
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[2]);
}

function readStat(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  signal(-pgid, sig);
}

function describeExit(info: ExitInfo): string {
  if (info.error) return info.error.message;
  return info.signal ? `signal ${info.signal}` : `exit code ${info.code}`;
}

/** The last lines of the given logs, for error messages a person can act on. */
export function logTail(files: string[], maxBytes = 4000): string {
  const parts: string[] = [];
  for (const file of files) {
    try {
      const text = readFileSync(file, 'latin1');
      const tail = text.slice(-maxBytes).split('\n').slice(-30).join('\n').trim();
      if (tail) parts.push(`[${file}]\n${tail}`);
    } catch {
      // Not written yet.
    }
  }
  return parts.length > 0 ? parts.join('\n') : '(no log output)';
}

/**
 * Creates a service's own directory, private (0700), without making missing parents private
 * too (a recursive mkdir would give them the same mode and could lock spamd's user out).
 */
export async function makeServiceDir(dir: string, mode = 0o700): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir, { recursive: true, mode });
}

/** Checks that a path can be bound as a unix socket (sun_path is 108 bytes on Linux). */
export function assertSocketPathFits(path: string): void {
  if (Buffer.byteLength(path) > 107) {
    throw new Error(`unix socket path is too long (${Buffer.byteLength(path)} bytes, max 107): ${path}; use a shorter data dir`);
  }
}

// Last-chance cleanup: if this process exits without stop() (an uncaught exception, process.exit),
// SIGTERM every daemon group we still own. A SIGKILLed parent is covered by the pidfiles instead.
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pid of liveGroups) killGroup(pid, 'SIGTERM');
});
