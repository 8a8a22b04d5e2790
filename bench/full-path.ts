// `node bench/full-path.ts`: one scenario of the bench, the full path without spamd (smtp-source →
// `mailmoat start` → smtp-sink, 2 KB, 50 sessions), repeated, for working on the gateway's CPU per
// message (issue 16). Prints per run msg/s, CPU ms per message of the gateway process (all its
// threads: the figure least moved by other load), its peak RSS and the 1-minute load average;
// with --profile, one more run under --cpu-prof and its top self-time functions; with --alloc, the
// JS heap the last run allocates per message, and where.
//
//   node bench/full-path.ts [--runs N] [--count N] [--sessions N] [--size 2|50] [--profile] [--alloc] [--gateway DIR]
import { join } from 'node:path';
import { readMemoryReports } from './lib/rounds.ts';
import { fullCell, startPhase, warmUp } from './lib/scenarios.ts';
import { allocationRun, cpuSplit, loadNow, median, profiledRun, startToolBench, threadCpu, threadCpuPerMessage } from './lib/tool.ts';

// Steady state: a fresh process spends ~4 ms more per message over its first few hundred
// messages while V8 compiles the hot code, which would hide most changes.
const WARM_UP = 500;

async function main(): Promise<number> {
  const { values, count, sessions, runDir, m, b, log, stop } = await startToolBench('fullpath');
  try {
    const p = await startPhase(b, 'full', { roles: ['start'], spamd: false });
    try {
      log(`RSS after start: ${p.rssAtStart.map((r) => `${r.role} ${(r.bytes / 1048576).toFixed(0)} MB`).join(', ')}`);
      await warmUp(p, m, WARM_UP, true);
      const rates: number[] = [];
      const cpus: number[] = [];
      for (let i = 1; i <= Number(values.runs); i++) {
        const pid = p.gateways[0].pid;
        const before = cpuSplit(pid);
        const tb = threadCpu(pid);
        const cell = () => fullCell(b, p, 'full', m, sessions, count, i, 120_000);
        const c = values.alloc && i === Number(values.runs) ? await allocationRun({ log }, pid, join(runDir, 'memory', 'full'), cell) : await cell();
        const after = cpuSplit(pid);
        const ta = threadCpu(pid);
        log(`  CPU ms/msg by thread: ${threadCpuPerMessage(tb, ta, c.done)}`);
        log(`  user ${((after.user - before.user) / c.done).toFixed(2)} ms/msg, system ${((after.system - before.system) / c.done).toFixed(2)} ms/msg`);
        const g = c.usage.groups.mailmoat;
        rates.push(c.rate);
        cpus.push(c.cpuMsPerMessage.mailmoat);
        log(
          `run ${i}: ${c.rate} msg/s (accept ${c.acceptRate}), ${c.cpuMsPerMessage.mailmoat} ms CPU/msg (gateway), peak RSS ${(g.kernelPeakRssBytes / 1048576).toFixed(0)} MB, load ${c.usage.machine.loadavg1mStart}→${c.usage.machine.loadavg1mEnd}, others ${c.usage.machine.othersPercentOfOneCore}%${c.ok ? '' : ` FAILED ${c.error}`}`,
        );
      }
      log(`median: ${median(rates)} msg/s, ${median(cpus)} ms CPU/msg; load now ${loadNow()}`);
    } finally {
      await p.stop();
    }
    for (const r of readMemoryReports(join(runDir, 'memory'))) {
      const mb = (x: number) => `${(x / 1048576).toFixed(0)} MB`;
      log(
        `memory ${r.role}: peak rss ${mb(r.peak.rss)} (anon ${mb(r.peak.rssAnon)}, file ${mb(r.peak.rssFile)}), heap ${mb(r.peak.heapUsed)}/${mb(r.peak.heapTotal)}, external ${mb(r.peak.external)}, buffers ${mb(r.peak.arrayBuffers)}; ${r.modules} modules: ${r.packages
          .slice(0, process.env.ALL_PACKAGES ? 500 : 12)
          .map((x) => `${x.name} ${x.files}`)
          .join(', ')}`,
      );
    }
    if (values.profile) {
      await profiledRun({ b, m, log }, 'full-path', { role: 'start', warm: WARM_UP, waitForDelivery: true }, async (pb, p) => {
        const c = await fullCell(pb, p, 'full', m, sessions, count, 0, 120_000);
        log(`profiled run: ${c.rate} msg/s, ${c.cpuMsPerMessage.mailmoat} ms CPU/msg`);
      });
    }
  } finally {
    await stop();
  }
  return 0;
}

process.exitCode = await main();
