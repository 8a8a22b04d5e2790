// The body of one analysis worker thread (analysis-pool.ts): runs the CPU-heavy HTML and text
// analysis away from the event loop that serves SMTP and holds the queue's job locks. Functions
// cannot cross the thread boundary, so the registrable-domain function is this thread's own
// (the same Public Suffix List one the rest of the gateway uses).
import { parentPort } from 'node:worker_threads';
import { disarmHtml, type DisarmOptions } from '../../scanners/html-disarm.ts';
import { registrableDomain, scanTextFile, type TextScanOptions } from './text-scan.ts';
import { mimePass, passInput, type MessageSource, type PlainMimePassOptions } from './mime-pass.ts';

export type { MessageSource, PlainMimePassOptions };

export type AnalysisTask =
  | { name: 'scanTextFile'; file: string; options: Omit<TextScanOptions, 'registrableDomain'> }
  | { name: 'disarmHtml'; html: string; options: Omit<Partial<DisarmOptions>, 'registrableDomain'> }
  | { name: 'mimePass'; source: MessageSource; options: PlainMimePassOptions };

export type WorkerReply = { ready: true } | { id: number; ok: unknown } | { id: number; error: string };

function run(task: AnalysisTask): unknown {
  if (task.name === 'scanTextFile') return scanTextFile(task.file, { ...task.options, registrableDomain });
  if (task.name === 'mimePass') {
    const { text, ...rest } = task.options;
    return mimePass(passInput(task.source), { ...rest, ...(text ? { text: { ...text, registrableDomain } } : {}) });
  }
  return disarmHtml(task.html, { ...task.options, registrableDomain });
}

const port = parentPort;
if (port) {
  port.on('message', async ({ id, task }: { id: number; task: AnalysisTask }) => {
    try {
      port.postMessage({ id, ok: await run(task) } satisfies WorkerReply);
    } catch (err) {
      port.postMessage({ id, error: (err as Error)?.message ?? String(err) } satisfies WorkerReply);
    }
  });
  port.postMessage({ ready: true } satisfies WorkerReply);
}
