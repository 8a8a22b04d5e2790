// A small pool of worker threads for the CPU-heavy analysis of a message (HTML parsing for URL
// extraction and the disarm prediction, and the rewrite's disarming), so that no message can
// block the event loop that answers SMTP, serves /healthz and renews the queue's job locks.
//
// Contract: each task runs in a thread of its own with a time budget (config
// scan.analysisTimeMs), counted from the moment a ready thread takes it (not while it waits
// for one). Past the budget the thread is terminated, a fresh one is started when needed, and
// the task rejects with AnalysisLimit ("analysis time limit") — the message is unscannable, not
// retried: a retry would burn the same CPU again. A thread that runs out of its heap
// (ANALYSIS_HEAP_MB) is an AnalysisLimit too ("analysis memory limit"). Any other failure of a
// thread rejects with an ordinary Error (the scan is retried, as for a scanner that failed).
//
// Hand-written on node:worker_threads rather than piscina: ~100 lines, and no new dependency
// in the shared install for what is one task type with a hard kill.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DisarmOptions, DisarmResult } from '../../scanners/html-disarm.ts';
import type { AnalysisTask, WorkerReply } from './analysis-worker.ts';
import type { MessageSource, MimePassResult, PlainMimePassOptions } from './mime-pass.ts';
import type { TextScanOptions, TextScanResult } from './text-scan.ts';

/** A bound of the analysis was hit: the outcome is "unscannable", never a retry, never clean. */
export class AnalysisLimit extends Error {}

export interface AnalysisPool {
  scanTextFile(file: string, options: Omit<TextScanOptions, 'registrableDomain'>): Promise<TextScanResult>;
  /** The one MIME pass (mime-pass.ts: walk and text scan) over a message's bytes or its file. */
  mimePass(source: MessageSource, options: PlainMimePassOptions): Promise<MimePassResult>;
  disarmHtml(html: string, options: Partial<DisarmOptions>): Promise<DisarmResult>;
  close(): Promise<void>;
}

export interface AnalysisPoolOptions {
  threads: number;
  timeMs: number;
  /** A thread idle this long ends (its ~50 MB go back); the next task starts one again. Default IDLE_MS. */
  idleMs?: number;
}

/**
 * Threads when the config names none: one fewer than the cores (the event loop needs one),
 * at least 1, at most 2. Each thread costs ~50 MB to exist; on 2 cores a second thread only
 * competes with the event loop for the same CPU, while a message whose analysis runs long (up to
 * scan.analysisTimeMs) holds up the others' analysis behind it.
 */
export function defaultAnalysisThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(2, cores - 1));
}

/** Long enough that a steady trickle keeps its threads; a quiet gateway gives their memory back. */
const IDLE_MS = 60_000;

/** A parse tree of a 4 MB HTML part stays well under this; a memory bomb ends only its thread. */
const ANALYSIS_HEAP_MB = 1024;
/**
 * V8 sizes a thread's young generation from its heap limit: with the limit above, each thread's
 * grew to about 70 MB of garbage between scavenges, and the two default threads made up most of
 * the `start` process's resident memory (~250 of ~600 MB at 50 sessions; 4,000 small tasks on two
 * threads: 315–331 MB without this cap, 221–231 MB with it). What a task keeps lives in the old
 * generation, so the cap changes how often the thread collects garbage, not what a task can hold.
 */
const ANALYSIS_YOUNG_MB = 16;

interface Task {
  id: number;
  task: AnalysisTask;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  running?: Task;
  timer?: NodeJS.Timeout;
  idle?: NodeJS.Timeout;
}

/** The options a thread gets: plain data only (functions do not cross threads). */
function plainDisarmOptions(o: Partial<DisarmOptions>): Omit<Partial<DisarmOptions>, 'registrableDomain'> {
  const { remoteImages, phishingNet, phishingSafeSites, maxHtmlChars, maxNesting, outputCharset } = o;
  return Object.fromEntries(
    Object.entries({ remoteImages, phishingNet, phishingSafeSites, maxHtmlChars, maxNesting, outputCharset }).filter(([, v]) => v !== undefined),
  );
}

export function createAnalysisPool(o: AnalysisPoolOptions): AnalysisPool {
  const waiting: Task[] = [];
  const slots = new Set<Slot>();
  let nextId = 1;
  let closed = false;

  const settle = (slot: Slot, outcome: { ok: unknown } | { err: Error }) => {
    const t = slot.running;
    clearTimeout(slot.timer);
    slot.running = undefined;
    if (!t) return;
    if ('err' in outcome) t.reject(outcome.err);
    else t.resolve(outcome.ok);
  };

  const retire = (slot: Slot, err: Error) => {
    if (!slots.delete(slot)) return;
    clearTimeout(slot.idle);
    settle(slot, { err });
    void slot.worker.terminate();
    dispatch();
  };

  /** Out of the pool first, so that its exit is no failure of a task. */
  const endIdle = (slot: Slot) => {
    if (slot.running || !slots.delete(slot)) return;
    void slot.worker.terminate();
  };

  const spawn = () => {
    const worker = new Worker(new URL('./analysis-worker.ts', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: ANALYSIS_HEAP_MB, maxYoungGenerationSizeMb: ANALYSIS_YOUNG_MB },
    });
    const slot: Slot = { worker, ready: false };
    slots.add(slot);
    worker.on('message', (m: WorkerReply) => {
      if ('ready' in m) slot.ready = true;
      else if ('error' in m) settle(slot, { err: new Error(m.error) });
      else settle(slot, { ok: m.ok });
      dispatch();
      if (!slot.running) {
        worker.unref(); // an idle thread never keeps the process alive
        clearTimeout(slot.idle);
        slot.idle = setTimeout(() => endIdle(slot), o.idleMs ?? IDLE_MS).unref();
      }
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const limit = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      retire(slot, limit ? new AnalysisLimit('analysis memory limit') : new Error(`analysis thread failed: ${err.message}`));
    });
    worker.on('exit', (code) => retire(slot, new Error(`analysis thread exited (code ${code})`)));
  };

  function dispatch(): void {
    if (closed) return;
    for (const slot of slots) {
      if (waiting.length === 0) return;
      if (!slot.ready || slot.running) continue;
      const t = waiting.shift()!;
      clearTimeout(slot.idle);
      slot.running = t;
      slot.worker.ref();
      slot.timer = setTimeout(() => retire(slot, new AnalysisLimit(`analysis time limit (${o.timeMs} ms)`)), o.timeMs);
      slot.worker.postMessage({ id: t.id, task: t.task });
    }
    let starting = [...slots].filter((s) => !s.ready).length;
    for (; waiting.length > starting && slots.size < o.threads; starting++) spawn();
  }

  const submit = <T>(task: AnalysisTask): Promise<T> => {
    if (closed) return Promise.reject(new Error('analysis pool closed'));
    return new Promise<T>((resolve, reject) => {
      waiting.push({ id: nextId++, task, resolve: resolve as (v: unknown) => void, reject });
      dispatch();
    });
  };

  return {
    scanTextFile: (file, options) => submit<TextScanResult>({ name: 'scanTextFile', file, options }),
    mimePass: (source, options) => submit<MimePassResult>({ name: 'mimePass', source, options }),
    disarmHtml: (html, options) => submit<DisarmResult>({ name: 'disarmHtml', html, options: plainDisarmOptions(options) }),
    async close() {
      closed = true;
      for (const t of waiting.splice(0)) t.reject(new Error('analysis pool closed'));
      const all = [...slots];
      slots.clear();
      for (const s of all) {
        clearTimeout(s.idle);
        settle(s, { err: new Error('analysis pool closed') });
      }
      await Promise.all(all.map((s) => s.worker.terminate()));
    },
  };
}
