// Preloaded into the gateway processes the bench starts (node --import): records which modules
// the process loads and, once a second, its memory as V8 sees it, and writes both when the process
// exits. This says what a process's resident memory is made of (JS heap, buffers, code of which
// packages) without changing the gateway. Inert unless MAILMOAT_BENCH_MEMORY_DIR is set.
// SIGUSR2 starts V8's sampling allocation profiler (every allocation, kept or collected), a second
// SIGUSR2 writes alloc-PID.heapprofile: what a message allocates, the work of the GC threads.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import module from 'node:module';
import { join } from 'node:path';

const dir = process.env.MAILMOAT_BENCH_MEMORY_DIR;

if (dir) {
  const loaded: string[] = [];
  module.registerHooks({
    load(url, context, nextLoad) {
      loaded.push(url);
      return nextLoad(url, context);
    },
  });
  // RssAnon is the process's own memory (JS heap, malloc, wasm); RssFile the node binary and
  // other mapped files, shared with every other node process.
  const kernelView = () => {
    const status = readFileSync('/proc/self/status', 'latin1');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
  };
  let peak = { ...process.memoryUsage(), ...kernelView() };
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > peak.rss) peak = { ...m, ...kernelView() };
  }, 1000);
  timer.unref();
  process.once('exit', () => {
    const packages = new Map<string, number>();
    for (const url of loaded) {
      const nm = url.lastIndexOf('/node_modules/');
      const key =
        nm < 0
          ? url.startsWith('node:')
            ? 'node:'
            : '(project)'
          : url
              .slice(nm + 14)
              .split('/')
              .slice(0, url.slice(nm + 14).startsWith('@') ? 2 : 1)
              .join('/');
      packages.set(key, (packages.get(key) ?? 0) + 1);
    }
    const report = {
      pid: process.pid,
      role: process.argv[2] ?? '', // node [--import …] gateway/cli.ts ROLE --config FILE
      peak,
      modules: loaded.length,
      packages: [...packages.entries()].sort((a, b) => b[1] - a[1]).map(([name, files]) => ({ name, files })),
    };
    try {
      writeFileSync(join(dir, `memory-${report.role}-${process.pid}.json`), JSON.stringify(report));
    } catch {
      // the bench reports a missing file as "no memory report"
    }
  });
  let sampling: Session | undefined;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = new Session();
      sampling.connect();
      sampling.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return;
    }
    const session = sampling;
    sampling = undefined;
    session.post('HeapProfiler.stopSampling', (err, r) => {
      if (!err) writeFileSync(join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(r.profile));
      session.disconnect();
    });
  });
}
