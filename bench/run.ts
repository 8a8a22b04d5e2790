// `npm run bench`: throughput, latency and memory of the real gateway against the SMTP ceiling of
// this machine, measured in the same run (issue 10). Figures on shared machines are noisy, so
// every throughput is reported as a ratio to a ceiling measured in the same round, with medians
// and min–max over rounds. Never part of `npm test`.
//
//   node bench/run.ts [--quick] [--rounds N] [--scale X] [--profile | --no-profile] [--keep]
//                     [--clamav-db DIR] [--log-level LEVEL] [--out DIR] [--gateway DIR]
//
// --gateway DIR measures another checkout's gateway/cli.ts (e.g. a `git worktree` of an older
// commit, with a node_modules symlink), against the same engines and load tools.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../gateway/log.ts';
import { reapStaleServices } from '../gateway/services/managed.ts';
import { startEngines, type Engines } from './lib/engines.ts';
import { asSourceFile, makeMessage, wireBytes } from './lib/messages.ts';
import { fsyncProbe, sqliteCommitProbe, type FsyncProbe } from './lib/disk.ts';
import { setGatewayRoot } from './lib/gateway.ts';
import { postfixToolsPresent } from './lib/postfix.ts';
import { summarizeProfile, type ProfileSummary } from './lib/profile.ts';
import { buildResults, renderMarkdown, type Plan, type ProfileRun } from './lib/report.ts';
import {
  acceptCell,
  bigMessageRun,
  ceilingCell,
  drain,
  fullCell,
  latencyRun,
  spamdCell,
  startPhase,
  warmUp,
  type Bench,
  type BigMessageRun,
  type Cell,
  type LatencyRun,
  type Phase,
  type TestMessage,
} from './lib/scenarios.ts';

const REPO_ROOT = resolve(import.meta.dirname, '..');
const RUN_DIR_PREFIX = 'mailmoat-bench-';

// Counts are sized so each run takes a few seconds on a 2-core machine; more rounds beat longer
// runs on a noisy machine. budgetS bounds the whole bench: no round starts that would not fit.
const FULL: Plan = {
  mode: 'full',
  rounds: 3,
  sessions: [10, 50],
  spamdSizes: ['2 KB', '50 KB'],
  counts: {
    ceiling: { '2 KB': 1500, '50 KB': 800 },
    accept: { '2 KB': 600, '50 KB': 400 },
    full: { '2 KB': 250, '50 KB': 150 },
    spamd: { '2 KB': 40, '50 KB': 10 },
  },
  capMs: { ceiling: 30_000, accept: 40_000, full: 60_000, spamd: 40_000, big: 90_000 },
  warmUp: 30,
  latencyMs: 6000,
  bigMessageBytes: 30_000_000,
  budgetS: 540,
};

const QUICK: Plan = {
  mode: 'quick',
  rounds: 1,
  sessions: [10, 50],
  spamdSizes: ['2 KB'],
  counts: {
    ceiling: { '2 KB': 200, '50 KB': 100 },
    accept: { '2 KB': 100, '50 KB': 50 },
    full: { '2 KB': 40, '50 KB': 25 },
    spamd: { '2 KB': 6, '50 KB': 2 },
  },
  capMs: { ceiling: 10_000, accept: 10_000, full: 15_000, spamd: 10_000, big: 30_000 },
  warmUp: 5,
  latencyMs: 1500,
  // A smoke run: the large-message path with a smaller message (the 64 MB target needs 30 MB).
  bigMessageBytes: 5_000_000,
  budgetS: 55,
};

function scaled(plan: Plan, scale: number): Plan {
  const counts = Object.fromEntries(
    Object.entries(plan.counts).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([s, n]) => [s, Math.max(1, Math.round(n * scale))]))]),
  ) as Plan['counts'];
  return { ...plan, counts };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      scale: { type: 'string' },
      profile: { type: 'boolean' },
      'no-profile': { type: 'boolean' },
      keep: { type: 'boolean', default: false },
      'clamav-db': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench/results') },
      gateway: { type: 'string' },
    },
  });
  let plan = values.quick ? QUICK : FULL;
  if (values.rounds) plan = { ...plan, rounds: Math.max(1, Number(values.rounds)) };
  if (values.scale) plan = scaled(plan, Number(values.scale));
  if (values.gateway) {
    if (!existsSync(join(values.gateway, 'gateway/cli.ts'))) {
      console.error(`bench: --gateway ${values.gateway}: no gateway/cli.ts there`);
      return 1;
    }
    setGatewayRoot(values.gateway);
  }
  const profile = values.profile ?? (values['no-profile'] ? false : !values.quick);
  if (!postfixToolsPresent()) {
    console.error('bench: smtp-source/smtp-sink missing: run `sh bench/bootstrap.sh` (npm run bench does)');
    return 1;
  }
  const started = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const logger = createLogger({ name: 'bench', level: 'warn' });
  await sweepAbandonedRunDirs(logger);
  const runDir = join(tmpdir(), `${RUN_DIR_PREFIX}${process.pid}`);
  await rm(runDir, { recursive: true, force: true });
  await mkdir(runDir, { recursive: true });
  // spamd's unprivileged children must pass through to their Bayes store.
  await chmod(runDir, 0o711);
  await writeFile(join(runDir, 'owner.pid'), `${process.pid}\n`);

  const clamavDb = resolve(values['clamav-db'] ?? join(REPO_ROOT, 'deploy/clamav-test-db'));
  log(`mode ${plan.mode}: ${plan.rounds} round(s); run dir ${runDir}`);
  log('starting redis, clamd, spamd and a local DNS server; writing the test messages');
  const enginesStarting = startEngines({ dir: join(runDir, 'engines'), clamavDb, logger });
  enginesStarting.catch(() => {}); // awaited below, after the messages are written
  const messages = await writeMessages(runDir, plan.bigMessageBytes);
  const engines = await enginesStarting;
  const openPhases = new Set<Phase>();
  let interrupted = false;
  let succeeded = false;
  const cleanup = async () => {
    for (const p of openPhases) await p.stop().catch(() => {});
    await engines.stop();
    // After a failure the logs of the gateway and the engines are what explains it: keep them.
    if (succeeded && !values.keep) await rm(runDir, { recursive: true, force: true });
    else console.error(`bench: logs and data kept in ${runDir}`);
  };
  process.once('SIGINT', () => {
    interrupted = true;
    log('interrupted: stopping everything');
    void cleanup().then(() => process.exit(130));
  });

  const bench: Bench = { engines, runDir, logLevel: values['log-level']!, log };
  const cells: Cell[] = [];
  const spamdSized = messages.sized.filter((m) => plan.spamdSizes.includes(m.label));
  const latency: LatencyRun[] = [];
  const big: BigMessageRun[] = [];
  const disk: FsyncProbe[] = [];
  const sqlite: FsyncProbe[] = [];
  const rssAtStart: { phase: string; role: string; bytes: number }[] = [];
  let firstRound = true;
  const skipped: string[] = [];
  const loadTimeline: [number, number][] = [];
  const loadTimer = setInterval(() => loadTimeline.push([Math.round((Date.now() - started) / 1000), Number(readFileSync('/proc/loadavg', 'latin1').split(' ')[0])]), 5000);
  const phase = async <T>(name: string, o: Parameters<typeof startPhase>[2], body: (p: Phase) => Promise<T>): Promise<T> => {
    const p = await startPhase(bench, name, o);
    openPhases.add(p);
    if (firstRound) rssAtStart.push(...p.rssAtStart.map((r) => ({ phase: name, ...r })));
    try {
      return await body(p);
    } finally {
      openPhases.delete(p);
      await p.stop();
    }
  };
  const note = (c: Cell) => {
    cells.push(c);
    log(`${c.scenario.padEnd(11)} ${c.size.padStart(5)} ×${String(c.sessions).padStart(2)}: ${String(c.rate).padStart(7)} msg/s (${c.done}/${c.count} in ${(c.elapsedMs / 1000).toFixed(1)} s)${c.ok ? '' : `  FAILED: ${c.error}`}`);
  };

  try {
    let roundSeconds = 0;
    for (let round = 1; round <= plan.rounds && !interrupted; round++) {
      const elapsedS = (Date.now() - started) / 1000;
      if (round > 1 && elapsedS + roundSeconds > plan.budgetS) {
        skipped.push(`rounds ${round}–${plan.rounds}: a round takes ${Math.round(roundSeconds)} s and the budget is ${plan.budgetS} s`);
        log(`stopping after ${round - 1} round(s): another would pass the time budget of ${plan.budgetS} s`);
        break;
      }
      const roundStart = Date.now();
      log(`round ${round} of ${plan.rounds}`);
      disk.push(fsyncProbe(runDir));
      sqlite.push(sqliteCommitProbe(runDir));
      // The ceiling is measured at the start and at the end of the round; the ratios use the mean
      // of both, so a change in the machine's other load during the round weighs on both sides.
      const ceilings = async () => {
        for (const m of messages.sized) {
          for (const s of plan.sessions) note(await ceilingCell(bench, m, s, plan.counts.ceiling[m.label], round, plan.capMs.ceiling));
        }
      };
      await ceilings();
      await phase('accept', { roles: ['smtp'], spamd: true }, async (p) => {
        await warmUp(p, messages.sized[0], plan.warmUp, false);
        for (const m of messages.sized) {
          for (const s of plan.sessions) note(await acceptCell(bench, p, m, s, plan.counts.accept[m.label], round, plan.capMs.accept));
        }
        const max = maxRate(cells, 'accept', round);
        if (max > 0) {
          const l = await latencyRun(bench, p, 'accept (smtp role alone)', messages.sized[0], max / 2, plan.latencyMs, 50, round);
          latency.push(l);
          log(`latency accept at ${l.offeredRate}/s: p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms (${l.ok}/${l.sent} ok)`);
        }
      });
      await phase('full', { roles: ['start'], spamd: false }, async (p) => {
        await warmUp(p, messages.sized[0], plan.warmUp, true);
        await runFullCells(p, 'full', messages.sized, plan.counts.full, plan.capMs.full);
        const max = maxRate(cells, 'full', round);
        if (max > 0) {
          const c0 = p.sink.messages();
          const l = await latencyRun(bench, p, 'full path, no spamd (start role)', messages.sized[0], max / 2, plan.latencyMs, 50, round);
          latency.push(l);
          log(`latency full at ${l.offeredRate}/s: p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms (${l.ok}/${l.sent} ok)`);
          await drain(p, c0 + l.ok, plan.capMs.full);
        }
        const b = await bigMessageRun(bench, p, messages.big, round, plan.capMs.big);
        big.push(b);
        log(`${messages.big.label} message: ${(b.elapsedMs / 1000).toFixed(1)} s, RSS ${mb(b.baselineRssBytes)} → ${mb(b.peakRssBytes)} MB (+${mb(b.growthBytes)})${b.ok ? '' : `  FAILED: ${b.error}`}`);
      });
      // The same path with SMTP and the workers in two processes (two event loops for two cores).
      await phase('full-split', { roles: ['smtp', 'worker'], spamd: false }, async (p) => {
        await warmUp(p, messages.sized[0], plan.warmUp, true);
        note(await fullCell(bench, p, 'full-split', messages.sized[0], 50, plan.counts.full['2 KB'], round, plan.capMs.full));
      });
      // spamd alone and the full path with spamd take turns going first, so a drift in the
      // machine's load does not always favour the same side of their ratio.
      const spamdAlone = async () => {
        for (const m of spamdSized) {
          for (const s of plan.sessions) note(await spamdCell(bench, m, s, plan.counts.spamd[m.label], round, plan.capMs.spamd));
        }
      };
      if (round % 2 === 0) await spamdAlone();
      await phase('full-spamd', { roles: ['start'], spamd: true }, async (p) => {
        await warmUp(p, messages.sized[0], Math.min(plan.warmUp, 10), true);
        await runFullCells(p, 'full-spamd', spamdSized, plan.counts.spamd, plan.capMs.spamd);
      });
      if (round % 2 === 1) await spamdAlone();
      await ceilings();
      roundSeconds = Math.max(roundSeconds, (Date.now() - roundStart) / 1000);
      firstRound = false;

      async function runFullCells(p: Phase, scenario: 'full' | 'full-spamd', sized: TestMessage[], counts: Record<string, number>, capMs: number) {
        for (const m of sized) {
          for (const s of plan.sessions) {
            const c = await fullCell(bench, p, scenario, m, s, counts[m.label], round, capMs);
            note(c);
            if (!c.ok && !(await drain(p, p.sink.messages() + (c.count - c.done), capMs))) {
              log(`${scenario}: the queue did not drain; skipping the rest of this phase`);
              return;
            }
          }
        }
      }
    }
    clearInterval(loadTimer);

    let results = buildResults({ plan, cells, latency, big, disk, sqlite, rssAtStart, skipped, loadTimeline, profiles: [], engines, clamavDb, startedAt: started });
    const missed = results.targets.filter((t) => t.pass === false);
    const profiles: ProfileRun[] = [];
    const secondsLeft = plan.budgetS + 60 - (Date.now() - started) / 1000;
    if (profile && missed.length > 0 && !interrupted && secondsLeft < 45) {
      skipped.push(`profiles: ${Math.round(secondsLeft)} s left of the time budget`);
    } else if (profile && missed.length > 0 && !interrupted) {
      log(`targets missed: ${missed.map((t) => t.id).join(', ')}; profiling`);
      profiles.push(...(await profileMissed(bench, messages.sized[0], plan, missed.map((t) => t.id))));
      results = buildResults({ plan, cells, latency, big, disk, sqlite, rssAtStart, skipped, loadTimeline, profiles, engines, clamavDb, startedAt: started });
    }
    await mkdir(values.out!, { recursive: true });
    await writeFile(join(values.out!, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
    const md = renderMarkdown(results);
    await writeFile(join(values.out!, 'latest.md'), md);
    console.log('\n' + md);
    log(`results: ${join(values.out!, 'latest.md')} and latest.json`);
    succeeded = true;
    return 0;
  } finally {
    clearInterval(loadTimer);
    if (!interrupted) await cleanup();
  }
}

function maxRate(cells: Cell[], scenario: string, round: number): number {
  return Math.max(0, ...cells.filter((c) => c.scenario === scenario && c.round === round && c.size === '2 KB' && c.ok).map((c) => c.rate));
}

const mb = (b: number) => (b / 1048576).toFixed(0);

async function writeMessages(dir: string, bigBytes: number): Promise<{ sized: TestMessage[]; big: TestMessage }> {
  const make = async (label: string, kind: 'small' | 'medium' | 'large', bytes: number): Promise<TestMessage> => {
    const lines = makeMessage(kind, bytes);
    const file = join(dir, `message-${kind}.txt`);
    await writeFile(file, asSourceFile(lines));
    return { label, bytes, file, wire: kind === 'large' ? Buffer.alloc(0) : wireBytes(lines) };
  };
  return { sized: [await make('2 KB', 'small', 2048), await make('50 KB', 'medium', 51_200)], big: await make(`${Math.round(bigBytes / 1e6)} MB`, 'large', bigBytes) };
}

/** Runs the scenario behind each missed target once more, under --cpu-prof, and summarises the profiles. */
async function profileMissed(b: Bench, m: TestMessage, plan: Plan, missed: string[]): Promise<ProfileRun[]> {
  const runs: { id: string; name: string; roles: ('start' | 'smtp')[]; spamd: boolean; body: (bb: Bench, p: Phase) => Promise<Cell> }[] = [];
  const want = (...ids: string[]) => ids.some((id) => missed.includes(id));
  if (want('accept', 'accept-p99')) {
    runs.push({ id: 'accept', name: 'accept, 2 KB × 50 sessions (mailmoat smtp)', roles: ['smtp'], spamd: true, body: (bb, p) => acceptCell(bb, p, m, 50, plan.counts.accept['2 KB'], 0, plan.capMs.accept) });
  }
  if (want('full', 'rss')) {
    runs.push({ id: 'full', name: 'full path without spamd, 2 KB × 50 sessions (mailmoat start)', roles: ['start'], spamd: false, body: (bb, p) => fullCell(bb, p, 'full', m, 50, plan.counts.full['2 KB'], 0, plan.capMs.full) });
  }
  if (want('full-spamd')) {
    runs.push({ id: 'full-spamd', name: 'full path with spamd, 2 KB × 50 sessions (mailmoat start)', roles: ['start'], spamd: true, body: (bb, p) => fullCell(bb, p, 'full-spamd', m, 50, plan.counts.spamd['2 KB'], 0, plan.capMs.spamd) });
  }
  const out: ProfileRun[] = [];
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  for (const r of runs) {
    const dir = join(REPO_ROOT, 'var/bench/profiles', `${r.id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const bb: Bench = { ...b, cpuProfDir: dir };
    const p = await startPhase(bb, `profile-${r.id}`, { roles: r.roles, spamd: r.spamd });
    let cell: Cell;
    let window: { fromUs: number; toUs: number };
    try {
      await warmUp(p, m, plan.warmUp, r.roles.includes('start'));
      const fromUs = nowUs();
      cell = await r.body(bb, p);
      window = { fromUs, toUs: nowUs() };
    } finally {
      await p.stop();
    }
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
    const summaries: ProfileSummary[] = files.map((f) => summarizeProfile(join(dir, f), window));
    const main = cell.usage.groups.mailmoat?.mainThreads[0];
    out.push({ id: r.id, name: r.name, dir, rate: cell.rate, elapsedMs: cell.elapsedMs, mainThread: main ? { onCpuMs: main.onCpuMs, waitingForCpuMs: main.waitingForCpuMs } : null, summaries });
    b.log(`profiled ${r.name}: ${cell.rate} msg/s under the profiler; ${files.length} profile(s) in ${dir}`);
  }
  return out;
}

/** Run dirs left by a bench that died: stop their daemons, then delete them. */
async function sweepAbandonedRunDirs(logger: ReturnType<typeof createLogger>): Promise<void> {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(RUN_DIR_PREFIX))) {
    const dir = join(tmpdir(), name);
    let owner = 0;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim());
      if (statSync(`/proc/${owner}`)) continue; // still running
    } catch {
      // no owner file or owner gone
    }
    for (const sub of ['redis', 'clamd', 'spamd']) await reapStaleServices(join(dir, 'engines', sub), logger).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('bench: failed:', err);
    process.exit(1);
  },
);
