// What the one-scenario tools (bench/accept-path.ts, bench/full-path.ts) share: the gateway
// process's CPU split from the kernel, a median, and the profile summary printed the same way.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../gateway/log.ts';
import { startEngines, type Engines } from './engines.ts';
import { setGatewayRoot } from './gateway.ts';
import { asSourceFile, makeMessage, wireBytes } from './messages.ts';
import { startPhase, warmUp, type Bench, type Phase, type TestMessage } from './scenarios.ts';
import { summarizeAllocations, summarizeProfile } from './profile.ts';

/** utime and stime of a process (its threads included), ms: how much of its CPU is the kernel's (fsync, open, rename). */
export function cpuSplit(pid: number): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // CLK_TCK is 100 on Linux
  return { user: Number(rest[11]) * tick, system: Number(rest[12]) * tick };
}

/**
 * CPU ms per thread kind of a process (/proc/PID/task): the event loop ("main"), V8's helper
 * threads ("V8Worker": GC and compiling), libuv's pool ("libuv-worker": file system calls) and
 * worker_threads ("WorkerThread": the analysis thread). Says which of them a change moved.
 */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const kind = tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      out.set(kind, (out.get(kind) ?? 0) + (Number(rest[11]) + Number(rest[12])) * 10);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** `threadCpu` after − before, per message, as "main 9.8, V8Worker 2.5, …" (threads under 0.05 ms left out). */
export function threadCpuPerMessage(before: Map<string, number>, after: Map<string, number>, messages: number): string {
  return [...after]
    .map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / messages] as const)
    .filter(([, ms]) => ms >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, ms]) => `${k} ${ms.toFixed(2)}`)
    .join(', ');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : Math.round(((s[m - 1] + s[m]) / 2) * 100) / 100;
}

export const loadNow = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** The top self-time functions and origins of every .cpuprofile in `dir`, over `window` (µs, hrtime). */
export function printProfiles(dir: string, window: { fromUs: number; toUs: number }, log: (line: string) => void, top = 15): void {
  for (const f of existsSync(dir) ? readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')) : []) {
    const s = summarizeProfile(join(dir, f), window, top);
    log(`\n${f}: busy ${s.busyMs.toFixed(0)} ms, gc ${s.gcMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms`);
    for (const l of s.topFunctions) log(`  ${l.selfMs.toFixed(0).padStart(6)} ms ${l.busyPercent.toFixed(1).padStart(5)}%  ${l.name}  ${l.where}`);
    log('  by origin:');
    for (const l of s.byOrigin.slice(0, 12)) log(`  ${l.selfMs.toFixed(0).padStart(6)} ms ${l.busyPercent.toFixed(1).padStart(5)}%  ${l.name}`);
  }
}

export interface ToolBench {
  values: { runs: string; count: string; sessions: string; size: string; profile: boolean; alloc: boolean; gateway?: string };
  count: number;
  sessions: number;
  runDir: string;
  engines: Engines;
  /** The test message (2 or 50 KB, --size). */
  m: TestMessage;
  b: Bench;
  log: (line: string) => void;
  /** Stops the engines and removes the run dir. */
  stop(): Promise<void>;
}

/**
 * The common start of a one-scenario tool: its options (--runs --count --sessions --size --profile
 * --alloc --gateway), a run dir, the engines (Redis, clamd, spamd) and the test message.
 */
export async function startToolBench(name: string): Promise<ToolBench> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      count: { type: 'string', default: '300' },
      sessions: { type: 'string', default: '50' },
      size: { type: 'string', default: '2' },
      profile: { type: 'boolean', default: false },
      alloc: { type: 'boolean', default: false },
      gateway: { type: 'string' },
    },
  });
  if (values.gateway) setGatewayRoot(resolve(values.gateway));
  const log = (line: string) => console.log(line);
  const runDir = join(tmpdir(), `mailmoat-${name}-${process.pid}`);
  await rm(runDir, { recursive: true, force: true });
  await mkdir(runDir, { recursive: true, mode: 0o711 });
  const logger = createLogger({ name: 'bench', level: 'warn' });
  const engines = await startEngines({ dir: join(runDir, 'engines'), clamavDb: join(REPO_ROOT, 'deploy/clamav-test-db'), logger });
  const kind = values.size === '50' ? 'medium' : 'small';
  const bytes = kind === 'small' ? 2048 : 51_200;
  const lines = makeMessage(kind, bytes);
  const file = join(runDir, 'message.txt');
  await writeFile(file, asSourceFile(lines));
  const m: TestMessage = { label: `${values.size} KB`, bytes, file, wire: wireBytes(lines) };
  return {
    values,
    count: Number(values.count),
    sessions: Number(values.sessions),
    runDir,
    engines,
    m,
    b: { engines, runDir, logLevel: 'warn', log },
    log,
    async stop() {
      await engines.stop();
      await rm(runDir, { recursive: true, force: true });
    },
  };
}

/**
 * --profile: one more run of `role` under --cpu-prof (a gateway of its own, warmed up with
 * `warm` messages), then the top self-time functions of that run alone.
 */
export async function profiledRun(
  t: Pick<ToolBench, 'b' | 'm' | 'log'>,
  name: string,
  o: { role: 'smtp' | 'start'; warm: number; waitForDelivery: boolean },
  run: (pb: Bench, p: Phase) => Promise<void>,
): Promise<void> {
  const dir = join(REPO_ROOT, 'var/bench/profiles', `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const pb: Bench = { ...t.b, cpuProfDir: dir };
  const p = await startPhase(pb, 'profile', { roles: [o.role], spamd: false });
  let window: { fromUs: number; toUs: number };
  try {
    await warmUp(p, t.m, o.warm, o.waitForDelivery);
    const from = Number(process.hrtime.bigint() / 1000n);
    await run(pb, p);
    window = { fromUs: from, toUs: Number(process.hrtime.bigint() / 1000n) };
  } finally {
    await p.stop();
  }
  printProfiles(dir, window, t.log);
}

/**
 * --alloc: `run` (the last measured run) under V8's sampling allocation profiler in gateway `pid`
 * (bench/lib/memory-report.ts starts and stops it on SIGUSR2), then KB allocated per message and where.
 */
export async function allocationRun<T extends { done: number }>(t: Pick<ToolBench, 'log'>, pid: number, memoryDir: string, run: () => Promise<T>): Promise<T> {
  process.kill(pid, 'SIGUSR2');
  const c = await run();
  process.kill(pid, 'SIGUSR2');
  const file = join(memoryDir, `alloc-${pid}.heapprofile`);
  for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
  if (!existsSync(file)) {
    t.log('allocation profile: not written');
    return c;
  }
  const a = summarizeAllocations(file, c.done);
  const kept = join(REPO_ROOT, 'var/bench/profiles', `alloc-${new Date().toISOString().replace(/[:.]/g, '-')}.heapprofile`);
  await mkdir(dirname(kept), { recursive: true });
  await copyFile(file, kept);
  t.log(`allocations: ${a.kbPerMessage} KB of JS heap per message (profile: ${kept})`);
  for (const f of a.topFunctions) t.log(`  ${f.selfMs.toFixed(1).padStart(7)} KB ${f.busyPercent.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  t.log('  by origin:');
  for (const o of a.byOrigin) t.log(`  ${o.selfMs.toFixed(1).padStart(7)} KB ${o.busyPercent.toFixed(1).padStart(5)}%  ${o.name}`);
  return c;
}
