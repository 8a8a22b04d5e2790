// Issue 16: bin/node-flags turns on Node's compile cache in var/ beside the entry point's folder,
// so that a gateway started again never loads Node's TypeScript stripper (amaro, a WebAssembly swc:
// ~12 MB in each thread that strips a file) — neither in the main thread nor in a worker thread.
// Run as bin/mailmoat runs the gateway: the flags file split into words, then the entry point.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FLAGS = readFileSync(path.join(ROOT, 'bin/node-flags'), 'utf8').split(/\s+/).filter(Boolean);
const dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-compile-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// process.moduleLoadList (undocumented) names the internal modules Node has loaded.
const stripperLoaded = () => (process as unknown as { moduleLoadList: string[] }).moduleLoadList.some((m) => m.includes('amaro'));
// The entry point (in entry/, as cli.ts is in gateway/) and the thread it starts are TypeScript.
mkdirSync(path.join(dir, 'entry'));
writeFileSync(
  path.join(dir, 'entry/thread.ts'),
  `import { parentPort } from 'node:worker_threads';
const loaded: boolean = (${stripperLoaded.toString()})();
parentPort!.postMessage(loaded);
`,
);
writeFileSync(
  path.join(dir, 'entry/main.ts'),
  `import { Worker } from 'node:worker_threads';
const main: boolean = (${stripperLoaded.toString()})();
const thread = await new Promise<boolean>((resolve) => new Worker(new URL('./thread.ts', import.meta.url)).once('message', resolve));
console.log(JSON.stringify({ main, thread }));
`,
);

function run(): { main: boolean; thread: boolean } {
  const env = { ...process.env };
  delete env.NODE_COMPILE_CACHE;
  const out = execFileSync(process.execPath, [...FLAGS, path.join(dir, 'entry/main.ts')], { cwd: tmpdir(), env, encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as { main: boolean; thread: boolean };
}

it('the first start fills var/compile-cache; the next one loads the TypeScript stripper in no thread', () => {
  expect(run()).toEqual({ main: true, thread: true });
  expect(readdirSync(path.join(dir, 'var/compile-cache')).length).toBeGreaterThan(0);
  expect(run()).toEqual({ main: false, thread: false });
});

it('a cache directory that cannot be made (a read-only install) only means no cache: the gateway still starts', () => {
  // Root may write anywhere a mode forbids; a file where var/ should be stops even root.
  const ro = mkdtempSync(path.join(tmpdir(), 'mailmoat-compile-cache-ro-'));
  try {
    mkdirSync(path.join(ro, 'entry'));
    for (const f of ['main.ts', 'thread.ts']) writeFileSync(path.join(ro, 'entry', f), readFileSync(path.join(dir, 'entry', f)));
    writeFileSync(path.join(ro, 'var'), 'not a directory');
    const env = { ...process.env };
    delete env.NODE_COMPILE_CACHE;
    const twice = [0, 1].map(() =>
      JSON.parse(
        execFileSync(process.execPath, [...FLAGS, path.join(ro, 'entry/main.ts')], { cwd: tmpdir(), env, encoding: 'utf8', timeout: 30_000 })
          .trim()
          .split('\n')
          .pop()!,
      ),
    );
    // Both runs ran their TypeScript (stripped each time: nothing was cached).
    expect(twice).toEqual([
      { main: true, thread: true },
      { main: true, thread: true },
    ]);
  } finally {
    rmSync(ro, { recursive: true, force: true });
  }
});
