// `node bench/accept-path.ts`: the bench's accept scenario alone (smtp-source → `mailmoat smtp`,
// no workers: every accepted message stays spooled and is counted there), repeated, for working
// on the CPU of the accept path (issue 16). Prints per run msg/s and the gateway process's CPU ms
// per message (all its threads; user/system from the kernel), with the 1-minute load average; with
// --profile, one more run under --cpu-prof and its top self-time functions; with --alloc, the JS
// heap the last run allocates per message, and where.
//
//   node bench/accept-path.ts [--runs N] [--count N] [--sessions N] [--size 2|50] [--profile] [--alloc] [--gateway DIR]
import { join } from 'node:path';
import { acceptCell, startPhase, warmUp, type Bench, type Phase } from './lib/scenarios.ts';
import { allocationRun, cpuSplit, loadNow, median, profiledRun, startToolBench, threadCpu, threadCpuPerMessage } from './lib/tool.ts';

async function main(): Promise<number> {
  const { values, count, sessions, runDir, m, b, log, stop } = await startToolBench('acceptpath');
  /** One measured run: rate and CPU per message, the kernel's user/system split of the gateway process. */
  const measure = async (bench: Bench, p: Phase, run: number, alloc = false) => {
    const pid = p.gateways[0].pid;
    const before = cpuSplit(pid);
    const tb = threadCpu(pid);
    const cell = () => acceptCell(bench, p, m, sessions, count, run, 120_000);
    const c = alloc ? await allocationRun({ log }, pid, join(runDir, 'memory', 'accept'), cell) : await cell();
    const after = cpuSplit(pid);
    log(`  CPU ms/msg by thread: ${threadCpuPerMessage(tb, threadCpu(pid), Math.max(1, c.done))}`);
    const per = (x: number) => (x / Math.max(1, c.done)).toFixed(2);
    log(
      `run ${run}: ${c.rate} msg/s, ${c.cpuMsPerMessage.mailmoat} ms CPU/msg (user ${per(after.user - before.user)}, system ${per(after.system - before.system)}), load ${c.usage.machine.loadavg1mStart}→${c.usage.machine.loadavg1mEnd}, others ${c.usage.machine.othersPercentOfOneCore}%${c.ok ? '' : ` FAILED ${c.error}`}`,
    );
    return c;
  };
  try {
    const p = await startPhase(b, 'accept', { roles: ['smtp'], spamd: false });
    const rates: number[] = [];
    const cpus: number[] = [];
    try {
      await warmUp(p, m, 200, false);
      for (let i = 1; i <= Number(values.runs); i++) {
        const c = await measure(b, p, i, values.alloc && i === Number(values.runs));
        rates.push(c.rate);
        cpus.push(c.cpuMsPerMessage.mailmoat);
      }
    } finally {
      await p.stop();
    }
    log(`median: ${median(rates)} msg/s, ${median(cpus)} ms CPU/msg (${sessions} sessions, ${m.label}); load now ${loadNow()}`);
    if (values.profile) {
      await profiledRun({ b, m, log }, 'accept-path', { role: 'smtp', warm: 200, waitForDelivery: false }, async (pb, p) => {
        await measure(pb, p, 0);
      });
    }
  } finally {
    await stop();
  }
  return 0;
}

process.exitCode = await main();
