// Reads a V8 .cpuprofile (node --cpu-prof) and says where the CPU went: self time per function and
// per origin (a project folder, an npm package, Node's internals, GC, idle). Self time answers
// "what is the event loop busy with"; the origin groups make a bound visible at a glance (e.g.
// "a third of the busy time is in bullmq + ioredis").
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { getGatewayRoot } from './gateway.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  where: string;
  selfMs: number;
  /** Share of the busy (non-idle) time, %. */
  busyPercent: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  idleMs: number;
  busyMs: number;
  gcMs: number;
  topFunctions: ProfileLine[];
  byOrigin: ProfileLine[];
}

function originOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const rel = relative(getGatewayRoot(), path);
  if (!rel.startsWith('..')) return rel.split('/').slice(0, -1).join('/') || rel;
  return path;
}

function whereOf(url: string, line: number): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf('/node_modules/');
  const short = nm >= 0 ? path.slice(nm + '/node_modules/'.length) : path.startsWith(getGatewayRoot() + '/') ? relative(getGatewayRoot(), path) : path;
  return `${short}:${line + 1}`;
}

/**
 * `window` (µs of CLOCK_MONOTONIC, the clock of V8's profile timestamps and of
 * process.hrtime) keeps only the samples of the measured run: start-up and warm-up are left out.
 */
export function summarizeProfile(file: string, window?: { fromUs: number; toUs: number }, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = p.startTime;
  let first = Infinity;
  let last = -Infinity;
  // timeDeltas[i] is the time since the previous sample: it belongs to the sample before i.
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + Math.max(0, dt));
  }
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const origin = new Map<string, number>();
  let idleUs = 0;
  let gcUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    if (functionName === '(garbage collector)') gcUs += us;
    const name = functionName || '(anonymous)';
    const where = whereOf(url, lineNumber);
    const key = `${name}@${where}`;
    const entry = fn.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    fn.set(key, entry);
    const o = originOf(url, functionName);
    origin.set(o, (origin.get(o) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs || 1;
  const line = (name: string, where: string, us: number): ProfileLine => ({
    name,
    where,
    selfMs: Math.round(us / 100) / 10,
    busyPercent: Math.round((1000 * us) / busyUs) / 10,
  });
  return {
    file,
    wallMs: Math.round((window ? last - first : p.endTime - p.startTime) / 1000),
    idleMs: Math.round(idleUs / 1000),
    busyMs: Math.round((totalUs - idleUs) / 1000),
    gcMs: Math.round(gcUs / 1000),
    topFunctions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => line(f.name, f.where, f.us)),
    byOrigin: [...origin.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([o, us]) => line(o, '', us)),
  };
}

interface AllocationNode {
  callFrame: CallFrame;
  selfSize: number;
  children: AllocationNode[];
}

/**
 * Reads a sampling allocation profile (memory-report.ts, SIGUSR2) and says how much JS heap one
 * message allocates and where: every byte allocated is later work for the GC threads.
 */
export function summarizeAllocations(file: string, messages: number, top = 15): { kbPerMessage: number; topFunctions: ProfileLine[]; byOrigin: ProfileLine[] } {
  const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: AllocationNode }).head;
  const fn = new Map<string, { name: string; where: string; bytes: number }>();
  const origin = new Map<string, number>();
  let total = 0;
  const walk = (n: AllocationNode) => {
    const { functionName, url, lineNumber } = n.callFrame;
    if (n.selfSize > 0) {
      total += n.selfSize;
      const name = functionName || '(anonymous)';
      const where = whereOf(url, lineNumber);
      const entry = fn.get(`${name}@${where}`) ?? { name, where, bytes: 0 };
      entry.bytes += n.selfSize;
      fn.set(`${name}@${where}`, entry);
      const o = originOf(url, functionName);
      origin.set(o, (origin.get(o) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  const line = (name: string, where: string, bytes: number): ProfileLine => ({
    name,
    where,
    selfMs: Math.round(bytes / messages / 102.4) / 10, // here: KB per message
    busyPercent: Math.round((1000 * bytes) / (total || 1)) / 10,
  });
  return {
    kbPerMessage: Math.round(total / messages / 1024),
    topFunctions: [...fn.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, top)
      .map((f) => line(f.name, f.where, f.bytes)),
    byOrigin: [...origin.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([o, b]) => line(o, '', b)),
  };
}
