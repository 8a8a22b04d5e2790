// What the one-scenario tools (bench/accept-path.ts, bench/full-path.ts) share: the gateway
// process's CPU split from the kernel, a median, and the profile summary printed the same way.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { summarizeProfile } from './profile.ts';

/** utime and stime of a process (its threads included), ms: how much of its CPU is the kernel's (fsync, open, rename). */
export function cpuSplit(pid: number): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // CLK_TCK is 100 on Linux
  return { user: Number(rest[11]) * tick, system: Number(rest[12]) * tick };
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
