// `npm run bench`: throughput, latency and memory of the real gateway against the SMTP ceiling of
// this machine, measured in the same run (issue 10). Figures on shared machines are noisy, so
// every throughput is reported as a ratio to a ceiling measured in the same round, with medians
// and min–max over rounds. Never part of `npm test`.
//
//   node bench/run.ts [--quick] [--rounds N] [--scale X] [--profile | --no-profile] [--keep] [--no-detect]
//                     [--clamav-db DIR] [--log-level LEVEL] [--out DIR] [--gateway DIR]
//
// --gateway DIR measures another checkout's gateway/cli.ts (e.g. a `git worktree` of an older
// commit, with a node_modules symlink), against the same engines and load tools.
// A full run ends with the learned filter's detection figures (bench/detect.ts, about 12 minutes
// on 2 cores); --no-detect leaves them out, --quick never runs them.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../gateway/log.ts';
import { reapStaleServices } from '../gateway/services/managed.ts';
import { startEngines } from './lib/engines.ts';
import { setGatewayRoot } from './lib/gateway.ts';
import { asSourceFile, makeMessage, wireBytes } from './lib/messages.ts';
import { postfixToolsPresent } from './lib/postfix.ts';
import { buildResults, renderMarkdown, type Plan, type ProfileRun } from './lib/report.ts';
import { emptyCollected, profileMissed, readMemoryReports, runRound, stopPhases, type RoundContext } from './lib/rounds.ts';
import type { TestMessage } from './lib/scenarios.ts';

const REPO_ROOT = resolve(import.meta.dirname, '..');
const RUN_DIR_PREFIX = 'mailmoat-bench-';

// Counts are sized so each run takes a few seconds on a 2-core machine; more rounds beat longer
// runs on a noisy machine. budgetS bounds the whole bench: no round starts that would not fit.
const FULL: Plan = {
  mode: 'full',
  rounds: 3,
  sessions: [10, 50],
  // spamd takes about a second of CPU for a 50 KB message: that size once, at 50 sessions.
  spamdRuns: [
    ['2 KB', 10],
    ['2 KB', 50],
    ['50 KB', 50],
  ],
  split: true,
  counts: {
    ceiling: { '2 KB': 1000, '50 KB': 500 },
    accept: { '2 KB': 300, '50 KB': 200 },
    full: { '2 KB': 150, '50 KB': 100 },
    spamd: { '2 KB': 25, '50 KB': 5 },
  },
  capMs: { ceiling: 30_000, accept: 40_000, full: 60_000, spamd: 40_000, big: 90_000 },
  // A steady state: CPU per message of a fresh `start` falls from ~18 to ~14 ms over its first
  // ~600 messages as V8 compiles the hot code (bench/full-path.ts, runs 1–3).
  warmUp: 500,
  latencyMs: 5000,
  bigMessageBytes: 30_000_000,
  budgetS: 540,
};

const QUICK: Plan = {
  mode: 'quick',
  rounds: 1,
  sessions: [10, 50],
  spamdRuns: [
    ['2 KB', 10],
    ['2 KB', 50],
  ],
  // The two-process row runs here too: it is the counterpart of the PostgreSQL full-path row.
  split: true,
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
  budgetS: 110,
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
      'no-detect': { type: 'boolean', default: false },
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
  log('starting redis, clamd, spamd, postgres and a local DNS server; writing the test messages');
  const enginesStarting = startEngines({ dir: join(runDir, 'engines'), clamavDb, logger });
  enginesStarting.catch(() => {}); // awaited below, after the messages are written
  const messages = await writeMessages(runDir, plan.bigMessageBytes);
  const engines = await enginesStarting;

  const ctx: RoundContext = { bench: { engines, runDir, logLevel: values['log-level']!, log }, plan, messages, data: emptyCollected(), phases: new Map() };
  let succeeded = false;
  let interrupted = false;
  const cleanup = async () => {
    await stopPhases(ctx);
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
  const skipped: string[] = [];
  const loadTimeline: [number, number][] = [];
  const loadTimer = setInterval(() => loadTimeline.push([Math.round((Date.now() - started) / 1000), os.loadavg()[0]]), 5000);
  try {
    let roundSeconds = 0;
    for (let round = 1; round <= plan.rounds && !interrupted; round++) {
      if (round > 1 && (Date.now() - started) / 1000 + roundSeconds > plan.budgetS) {
        skipped.push(`rounds ${round}–${plan.rounds}: a round takes about ${Math.round(roundSeconds)} s and the budget is ${plan.budgetS} s`);
        log(`stopping after ${round - 1} round(s): another would pass the time budget of ${plan.budgetS} s`);
        break;
      }
      const roundStart = Date.now();
      const startupBefore = ctx.data.startupMs;
      log(`round ${round} of ${plan.rounds}`);
      await runRound(ctx, round);
      // Gateways start (and warm up) once, in the first round: the next rounds do not pay for it.
      roundSeconds = Math.max(roundSeconds, (Date.now() - roundStart - (ctx.data.startupMs - startupBefore)) / 1000);
    }
    clearInterval(loadTimer);
    // The memory reports are written as the gateways exit.
    await stopPhases(ctx);
    const memory = readMemoryReports(join(runDir, 'memory'));
    const build = (profiles: ProfileRun[]) =>
      buildResults({ plan, ...ctx.data, memory, skipped, loadTimeline, profiles, engines, clamavDb, startedAt: started });
    let results = build([]);
    const missed = results.targets.filter((t) => t.pass === false).map((t) => t.id);
    const secondsLeft = plan.budgetS + 60 - (Date.now() - started) / 1000;
    if (profile && missed.length > 0 && !interrupted) {
      if (secondsLeft < 45) skipped.push(`profiles: ${Math.round(secondsLeft)} s left of the time budget`);
      else {
        log(`targets missed: ${missed.join(', ')}; profiling`);
        results = build(await profileMissed(ctx, missed));
      }
    }
    await mkdir(values.out!, { recursive: true });
    // A smoke run must not replace the figures of the last full run.
    const base = plan.mode === 'quick' ? 'quick' : 'latest';
    await writeFile(join(values.out!, `${base}.json`), JSON.stringify(results, null, 2) + '\n');
    const md = renderMarkdown(results);
    await writeFile(join(values.out!, `${base}.md`), md);
    console.log('\n' + md);
    log(`results: ${join(values.out!, `${base}.md`)} and ${base}.json`);
    succeeded = ctx.data.phaseErrors.length === 0;
    if (plan.mode !== 'quick' && !values['no-detect'] && !values.gateway) {
      log('detection: the learned filter against spamd on the SpamAssassin corpus (bench/detect.ts)');
      const detect = spawnSync(process.execPath, [join(REPO_ROOT, 'bench/detect.ts')], { stdio: 'inherit' });
      if (detect.status !== 0) log(`detection: bench/detect.ts ended with ${detect.status ?? detect.signal}`);
    }
    return 0;
  } finally {
    clearInterval(loadTimer);
    if (!interrupted) await cleanup();
  }
}

async function writeMessages(dir: string, bigBytes: number): Promise<{ sized: TestMessage[]; big: TestMessage }> {
  const make = async (label: string, kind: 'small' | 'medium' | 'large', bytes: number): Promise<TestMessage> => {
    const lines = makeMessage(kind, bytes);
    const file = join(dir, `message-${kind}.txt`);
    await writeFile(file, asSourceFile(lines));
    return { label, bytes, file, wire: kind === 'large' ? Buffer.alloc(0) : wireBytes(lines) };
  };
  return {
    sized: [await make('2 KB', 'small', 2048), await make('50 KB', 'medium', 51_200)],
    big: await make(`${Math.round(bigBytes / 1e6)} MB`, 'large', bigBytes),
  };
}

/** Run dirs left by a bench that died: stop their daemons, then delete them. */
async function sweepAbandonedRunDirs(logger: ReturnType<typeof createLogger>): Promise<void> {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(RUN_DIR_PREFIX))) {
    const dir = join(tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim());
      if (statSync(`/proc/${owner}`)) continue; // still running
    } catch {
      // no owner file or owner gone
    }
    for (const sub of ['redis', 'clamd', 'spamd', 'postgres']) await reapStaleServices(join(dir, 'engines', sub), logger).catch(() => {});
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
