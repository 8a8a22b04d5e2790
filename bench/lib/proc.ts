// What the machine and the processes under test did during one measured run, read from /proc:
// resident memory (sampled, plus the kernel's own high-water mark), CPU time per process group,
// the machine's busy/iowait/steal shares and its load average. Linux only, by design: the bench
// runs on the gateway's target platform.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const PAGE_BYTES = 4096;
const TICKS_PER_SECOND = 100; // USER_HZ; fixed at 100 on every Linux the project targets
/** Internal group: this process and every process it started (engines, gateway, load tools). */
const OURS = '(bench and children)';

interface ProcSample {
  ppid: number;
  cpuTicks: number;
  rssBytes: number;
}

function readProc(pid: number): ProcSample | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // gone
  }
  // comm (field 2) may contain spaces and parentheses: the fields after it start at the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]), rssBytes: Number(f[21]) * PAGE_BYTES };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Kernel-recorded peak RSS (VmHWM) of one process, in bytes; 0 when it is gone. */
export function peakRssOf(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, needs ownership or root); false if refused. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** [ns on CPU, ns runnable waiting for a CPU] of a process's main thread. */
function schedstat(pid: number): [number, number] | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').trim().split(' ');
    return [Number(f[0]), Number(f[1])];
  } catch {
    return undefined;
  }
}

export function rssOf(pid: number): number {
  return readProc(pid)?.rssBytes ?? 0;
}

interface CpuTimes {
  busy: number;
  idle: number;
  iowait: number;
  steal: number;
}

function machineCpu(): CpuTimes {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq, idle, iowait, steal };
}

export interface GroupUsage {
  /** Largest sum of RSS over the group's processes at one sample. */
  sampledPeakRssBytes: number;
  /** Sum of the kernel's VmHWM of the group's root processes (reset at start when allowed). */
  kernelPeakRssBytes: number;
  /** CPU time of the group (roots and their descendants) over the run, as % of one core. */
  cpuPercentOfOneCore: number;
  pids: number[];
  /**
   * Main thread of each root (the event loop, for Node): time on a CPU and time runnable but
   * waiting for one (schedstat), ms over the run. Wall time minus both is time it was blocked
   * or idle.
   */
  mainThreads: { pid: number; onCpuMs: number; waitingForCpuMs: number }[];
}

export interface MachineUsage {
  durationMs: number;
  cores: number;
  /**
   * CPU used by processes that are not ours (not the bench or anything it started), % of one
   * core: other work on a shared machine, the main source of noise in the figures.
   */
  othersPercentOfOneCore: number;
  /** Shares of all cores' time over the run, in %. */
  busyPercent: number;
  iowaitPercent: number;
  stealPercent: number;
  loadavg1mStart: number;
  loadavg1mEnd: number;
  loadavg1mMax: number;
}

export interface Usage {
  machine: MachineUsage;
  groups: Record<string, GroupUsage>;
}

/**
 * Samples the named process groups (root pids, descendants included) every `intervalMs` until
 * stop(). Roots are re-read at every sample, so a group may gain its pids after start().
 */
export class UsageSampler {
  readonly #roots: () => Record<string, number[]>;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #t0 = 0;
  #cpu0: CpuTimes = { busy: 0, idle: 0, iowait: 0, steal: 0 };
  #load0 = 0;
  #loadMax = 0;
  /** group → pid → [first cpuTicks seen, last cpuTicks seen] */
  #ticks = new Map<string, Map<number, [number, number]>>();
  #peak = new Map<string, number>();
  #rootsSeen = new Map<string, Set<number>>();
  /** root pid → [first schedstat, last schedstat] */
  #sched = new Map<number, [[number, number], [number, number]]>();

  constructor(roots: () => Record<string, number[]>, intervalMs = 100) {
    this.#roots = roots;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#t0 = performance.now();
    this.#cpu0 = machineCpu();
    this.#load0 = os.loadavg()[0];
    this.#loadMax = this.#load0;
    for (const pids of Object.values(this.#roots())) for (const pid of pids) resetPeakRss(pid);
    this.#ticks.set(OURS, new Map());
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.#intervalMs);
  }

  #sample(): void {
    this.#loadMax = Math.max(this.#loadMax, os.loadavg()[0]);
    const procs = new Map<number, ProcSample>();
    for (const pid of allPids()) {
      const p = readProc(pid);
      if (p) procs.set(pid, p);
    }
    const children = new Map<number, number[]>();
    for (const [pid, p] of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
    for (const [group, roots] of Object.entries({ ...this.#roots(), [OURS]: [process.pid] })) {
      const seenRoots = this.#rootsSeen.get(group) ?? new Set<number>();
      this.#rootsSeen.set(group, seenRoots);
      const members = new Set<number>();
      const stack = roots.filter((r) => procs.has(r));
      for (const r of stack) {
        seenRoots.add(r);
        if (group === OURS) continue;
        const now = schedstat(r);
        const was = this.#sched.get(r);
        if (now && was) was[1] = now;
        else if (now) this.#sched.set(r, [now, now]);
      }
      while (stack.length > 0) {
        const pid = stack.pop()!;
        if (members.has(pid)) continue;
        members.add(pid);
        stack.push(...(children.get(pid) ?? []));
      }
      let rss = 0;
      const ticks = this.#ticks.get(group) ?? new Map<number, [number, number]>();
      this.#ticks.set(group, ticks);
      for (const pid of members) {
        const p = procs.get(pid)!;
        rss += p.rssBytes;
        const t = ticks.get(pid);
        if (t) t[1] = p.cpuTicks;
        else ticks.set(pid, [p.cpuTicks, p.cpuTicks]);
      }
      this.#peak.set(group, Math.max(this.#peak.get(group) ?? 0, rss));
    }
  }

  stop(): Usage {
    this.#sample();
    if (this.#timer) clearInterval(this.#timer);
    const durationMs = performance.now() - this.#t0;
    const cpu1 = machineCpu();
    const d = (k: keyof CpuTimes) => cpu1[k] - this.#cpu0[k];
    const total = d('busy') + d('idle') + d('iowait') + d('steal') || 1;
    const pct = (x: number) => Math.round((1000 * x) / total) / 10;
    const groups: Record<string, GroupUsage> = {};
    const ourTicks = [...(this.#ticks.get(OURS)?.values() ?? [])].reduce((n, [a, b]) => n + b - a, 0);
    for (const [group, ticks] of this.#ticks) {
      if (group === OURS) continue;
      let used = 0;
      for (const [first, last] of ticks.values()) used += last - first;
      const roots = [...(this.#rootsSeen.get(group) ?? [])];
      groups[group] = {
        sampledPeakRssBytes: this.#peak.get(group) ?? 0,
        kernelPeakRssBytes: roots.reduce((sum, pid) => sum + peakRssOf(pid), 0),
        cpuPercentOfOneCore: Math.round((1000 * used) / TICKS_PER_SECOND / (durationMs / 1000)) / 10,
        pids: [...ticks.keys()],
        mainThreads: roots.flatMap((pid) => {
          const s = this.#sched.get(pid);
          return s ? [{ pid, onCpuMs: Math.round((s[1][0] - s[0][0]) / 1e6), waitingForCpuMs: Math.round((s[1][1] - s[0][1]) / 1e6) }] : [];
        }),
      };
    }
    return {
      machine: {
        durationMs: Math.round(durationMs),
        cores: os.cpus().length,
        othersPercentOfOneCore: Math.max(0, Math.round(((d('busy') - ourTicks) * 1000) / (total / os.cpus().length)) / 10),
        busyPercent: pct(d('busy')),
        iowaitPercent: pct(d('iowait')),
        stealPercent: pct(d('steal')),
        loadavg1mStart: this.#load0,
        loadavg1mEnd: os.loadavg()[0],
        loadavg1mMax: this.#loadMax,
      },
      groups,
    };
  }
}
