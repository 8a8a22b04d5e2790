// Turns the raw runs into the results: medians with min–max per scenario, ratios to the ceiling of
// the same round, the issue's targets with pass/fail, and the Markdown table.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { resolve } from 'node:path';
import type { Engines } from './engines.ts';
import { getGatewayRoot } from './gateway.ts';
import type { FsyncProbe } from './disk.ts';
import type { ProfileSummary } from './profile.ts';
import type { BigMessageRun, Cell, LatencyRun, Row, Scenario } from './scenarios.ts';
import { round, summarize, type Summary } from './stats.ts';
import { cpuPerMessageLine, issueTargets, renderIssueTargets } from './issue-targets.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface Plan {
  mode: 'full' | 'quick';
  rounds: number;
  sessions: number[];
  /** [size, sessions] of the runs through spamd (full path with spamd, and spamd alone). */
  spamdRuns: [string, number][];
  /** Also run the full path with SMTP and workers as two processes (2 KB × 50 sessions). */
  split: boolean;
  counts: Record<'ceiling' | 'accept' | 'full' | 'spamd', Record<string, number>>;
  capMs: Record<'ceiling' | 'accept' | 'full' | 'spamd' | 'big', number>;
  warmUp: number;
  latencyMs: number;
  bigMessageBytes: number;
  /** Seconds: no round is started that would end past this; profiling gets a minute more. */
  budgetS: number;
}

export interface ProfileRun {
  id: string;
  name: string;
  dir: string;
  rate: number;
  elapsedMs: number;
  /** The profiled process's main thread over the measured run (schedstat). */
  mainThread: { onCpuMs: number; waitingForCpuMs: number } | null;
  summaries: ProfileSummary[];
}

/** What memory-report.ts wrote for one gateway process (its sample with the highest RSS). */
export interface MemoryReport {
  phase: string;
  role: string;
  pid: number;
  peak: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; rssAnon: number; rssFile: number };
  modules: number;
  packages: { name: string; files: number }[];
}

export interface Target {
  id: string;
  text: string;
  measured: string;
  pass: boolean | null;
}

const WHAT: Record<Scenario, string> = {
  ceiling: 'ceiling: smtp-source → smtp-sink',
  accept: 'accept: → mailmoat smtp (no workers)',
  full: 'full path, spamd off → smtp-sink',
  'accept-pg': 'accept, PostgreSQL: → mailmoat smtp (no workers), database.url',
  'full-split': 'full path, spamd off, smtp + worker processes',
  'full-split-pg': 'full path, spamd off, smtp + worker processes, PostgreSQL',
  'full-spamd': 'full path with spamd → smtp-sink',
  'spamd-alone': 'spamd alone (SPAMC loop)',
  'postfix-accept': 'peer: accept, → Postfix (queued, on hold)',
  postfix: 'peer: Postfix relay → smtp-sink',
  haraka: 'peer: Haraka (smtp_forward) → smtp-sink',
};

/** The cluster-storage rows (informational, no target) and the one-machine row each is shown next to. */
const COUNTERPART: Partial<Record<Scenario, Scenario>> = { 'accept-pg': 'accept', 'full-split-pg': 'full-split' };

/** Each cluster row right after its SQLite counterpart (same size and sessions), else after the last row of that scenario. */
function besideCounterparts(rs: Row[]): Row[] {
  const out = rs.filter((r) => !COUNTERPART[r.scenario]);
  for (const r of rs.filter((x) => COUNTERPART[x.scenario])) {
    const base = COUNTERPART[r.scenario]!;
    let at = out.findIndex((x) => x.scenario === base && x.size === r.size && x.sessions === r.sessions);
    if (at < 0) at = out.map((x) => x.scenario).lastIndexOf(base);
    // Cluster rows of the same base in the order they came (after rows of theirs already placed).
    if (at < 0) at = out.map((x) => x.scenario).lastIndexOf(r.scenario);
    while (at >= 0 && at + 1 < out.length && out[at + 1].scenario === r.scenario) at++;
    out.splice(at < 0 ? out.length : at + 1, 0, r);
  }
  return out;
}

const MB = 1048576;
const toMB = (b: number) => round(b / MB, 0);

/** Ratio of each run to the mean rate of the base runs (same size, sessions and round). */
function ratios(of: Cell[], base: Cell[]): Summary | null {
  const xs = of.flatMap((c) => {
    const b = base.filter((x) => x.size === c.size && x.sessions === c.sessions && x.round === c.round && x.ok);
    const mean = b.reduce((n, x) => n + x.rate, 0) / (b.length || 1);
    return b.length && mean > 0 && c.ok ? [c.rate / mean] : [];
  });
  return roundSummary(summarize(xs), 3);
}

function roundSummary(s: Summary | null, digits: number): Summary | null {
  return s && { median: round(s.median, digits), min: round(s.min, digits), max: round(s.max, digits), n: s.n };
}

/** Rounded: the median of an even count is a mean of two, which prints as 80.44999999999999. */
function median(xs: number[]): number | null {
  const m = summarize(xs)?.median;
  return m === undefined ? null : round(m, 2);
}

function rows(cells: Cell[]): Row[] {
  const out: Row[] = [];
  const ceiling = cells.filter((c) => c.scenario === 'ceiling');
  const spamd = cells.filter((c) => c.scenario === 'spamd-alone');
  const keys = [...new Set(cells.map((c) => `${c.scenario}|${c.size}|${c.sessions}`))];
  for (const key of keys) {
    const group = cells.filter((c) => `${c.scenario}|${c.size}|${c.sessions}` === key);
    const ok = group.filter((c) => c.ok);
    const { scenario, size, sessions } = group[0];
    const g = (name: string) => group.map((c) => c.usage.groups[name]).filter(Boolean);
    const peak = (name: string) => {
      const xs = g(name).map((u) => Math.max(u.kernelPeakRssBytes, u.sampledPeakRssBytes));
      return xs.length ? toMB(Math.max(...xs)) : null;
    };
    const cpu: Record<string, number> = {};
    for (const name of ['mailmoat', 'postfix', 'haraka', 'redis', 'clamd', 'spamd', 'postgres', 'load']) {
      const m = median(g(name).map((u) => u.cpuPercentOfOneCore));
      if (m !== null && (m > 0 || name === 'mailmoat')) cpu[name] = round(m, 0);
    }
    const perMsg: Record<string, number> = {};
    for (const name of ['mailmoat', 'postfix', 'haraka', 'redis', 'clamd', 'spamd', 'postgres']) {
      const m = median(ok.map((c) => c.cpuMsPerMessage[name]).filter((x) => x !== undefined && Number.isFinite(x)));
      if (m !== null && (m > 0.05 || name === 'mailmoat' || name === 'postfix' || name === 'haraka')) perMsg[name] = round(m, 1);
    }
    out.push({
      scenario,
      what: WHAT[scenario],
      size,
      sessions,
      runs: group.length,
      failedRuns: group.length - ok.length,
      rate: roundSummary(summarize(ok.map((c) => c.rate)), 1),
      ratioToCeiling: scenario === 'ceiling' ? null : ratios(group, ceiling),
      ...(scenario === 'full-spamd' ? { ratioToSpamdAlone: ratios(group, spamd) } : {}),
      mailmoatPeakRssMB: peak('mailmoat'),
      redisPeakRssMB: peak('redis'),
      cpu,
      machineBusyPercent: median(group.map((c) => c.usage.machine.busyPercent)),
      othersCpuPercent: round(median(group.map((c) => c.usage.machine.othersPercentOfOneCore)) ?? NaN, 0),
      cpuMsPerMessage: perMsg,
      loadavg1mMax: round(Math.max(...group.map((c) => c.usage.machine.loadavg1mMax)), 2),
      errors: [...new Set(group.flatMap((c) => (c.error ? [c.error] : [])))].slice(0, 3),
    });
  }
  return besideCounterparts(out);
}

function latencySummary(runs: LatencyRun[]) {
  return [...new Set(runs.map((r) => r.target))].map((target) => {
    const rs = runs.filter((r) => r.target === target);
    const s = (f: (r: LatencyRun) => number, d = 2) => roundSummary(summarize(rs.map(f)), d);
    const mm = rs.map((r) => r.usage.groups.mailmoat).filter(Boolean);
    return {
      target,
      runs: rs.length,
      offeredRate: s((r) => r.offeredRate, 1),
      achievedRate: s((r) => r.achievedRate, 1),
      p50Ms: s((r) => r.p50Ms),
      p90Ms: s((r) => r.p90Ms),
      p99Ms: s((r) => r.p99Ms),
      maxMs: s((r) => r.maxMs),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      lateStarts: rs.reduce((n, r) => n + r.lateStarts, 0),
      mailmoatPeakRssMB: mm.length ? toMB(Math.max(...mm.map((u) => Math.max(u.kernelPeakRssBytes, u.sampledPeakRssBytes)))) : null,
      mailmoatCpuPercent: median(mm.map((u) => u.cpuPercentOfOneCore)),
      errors: [...new Set(rs.flatMap((r) => (r.firstError ? [r.firstError] : [])))],
    };
  });
}

function bigSummary(runs: BigMessageRun[]) {
  const ok = runs.filter((r) => r.ok);
  return {
    runs: runs.length,
    failedRuns: runs.length - ok.length,
    bytes: runs[0]?.bytes ?? 0,
    seconds: roundSummary(summarize(ok.map((r) => r.elapsedMs / 1000)), 1),
    baselineRssMB: roundSummary(summarize(ok.map((r) => r.baselineRssBytes / MB)), 0),
    peakRssMB: roundSummary(summarize(ok.map((r) => r.peakRssBytes / MB)), 0),
    growthMB: roundSummary(summarize(ok.map((r) => r.growthBytes / MB)), 0),
    errors: runs.flatMap((r) => (r.error ? [r.error] : [])),
  };
}

function fmt(s: Summary | null | undefined, unit = ''): string {
  if (!s) return 'n/a';
  return s.n > 1 && s.min !== s.max ? `${s.median}${unit} (${s.min}–${s.max})` : `${s.median}${unit}`;
}

function targets(rs: Row[], lat: ReturnType<typeof latencySummary>, big: ReturnType<typeof bigSummary>, allPeaks: number[]): Target[] {
  const row = (sc: Scenario) => rs.find((r) => r.scenario === sc && r.size === '2 KB' && r.sessions === 50);
  const acc = row('accept')?.ratioToCeiling;
  const full = row('full')?.ratioToCeiling;
  const spam = row('full-spamd')?.ratioToSpamdAlone;
  const p99 = lat.find((l) => l.target.startsWith('accept'))?.p99Ms;
  const peak = allPeaks.length ? Math.max(...allPeaks) : null;
  const check = (s: Summary | null | undefined, ok: (x: number) => boolean) => (s ? ok(s.median) : null);
  return [
    { id: 'accept', text: 'accept ≥ 0.12 × ceiling (2 KB, 50 sessions)', measured: fmt(acc, ' ×'), pass: check(acc, (x) => x >= 0.12) },
    { id: 'full', text: 'full path without spamd ≥ 0.06 × ceiling (2 KB, 50 sessions)', measured: fmt(full, ' ×'), pass: check(full, (x) => x >= 0.06) },
    { id: 'full-spamd', text: 'full path with spamd ≥ 0.9 × spamd alone (2 KB, 50 sessions)', measured: fmt(spam, ' ×'), pass: check(spam, (x) => x >= 0.9) },
    { id: 'rss', text: 'peak RSS of mailmoat ≤ 250 MB (all runs)', measured: peak === null ? 'n/a' : `${peak} MB`, pass: peak === null ? null : peak <= 250 },
    big.bytes >= 30_000_000
      ? { id: 'growth', text: 'RSS growth for one 30 MB message ≤ 64 MB', measured: fmt(big.growthMB, ' MB'), pass: check(big.growthMB, (x) => x <= 64) }
      : {
          id: 'growth',
          text: 'RSS growth for one 30 MB message ≤ 64 MB',
          measured: `${fmt(big.growthMB, ' MB')} for ${round(big.bytes / 1e6, 0)} MB (quick mode)`,
          pass: null,
        },
    { id: 'accept-p99', text: 'accept p99 (end of DATA → reply) ≤ 25 ms at half the max rate', measured: fmt(p99, ' ms'), pass: check(p99, (x) => x <= 25) },
  ];
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: getGatewayRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** The data dir (spool, SQLite) lives under the temp dir: its filesystem decides what an fsync costs. */
function fsType(dir: string): string {
  try {
    return execFileSync('df', ['--output=fstype', dir], { encoding: 'utf8' }).trim().split('\n').pop() ?? '';
  } catch {
    return '';
  }
}

/** Everything measured so far; the report is built from this. */
export interface Collected {
  cells: Cell[];
  latency: LatencyRun[];
  big: BigMessageRun[];
  disk: FsyncProbe[];
  sqlite: FsyncProbe[];
  /** One PostgreSQL commit (2 KB row) in the bench's private cluster, per round. */
  postgres: FsyncProbe[];
  rssAtStart: { phase: string; role: string; bytes: number }[];
  phaseErrors: string[];
  /** What this gateway cannot run (e.g. an older checkout without cluster storage). */
  notMeasured: string[];
  /** Time spent starting and warming up gateways, ms. */
  startupMs: number;
}

export function buildResults(
  o: Collected & {
    plan: Plan;
    memory: MemoryReport[];
    skipped: string[];
    loadTimeline: [number, number][];
    profiles: ProfileRun[];
    engines: Engines;
    clamavDb: string;
    startedAt: number;
  },
) {
  const rs = rows(o.cells);
  const lat = latencySummary(o.latency);
  const bigS = bigSummary(o.big);
  // The cluster rows are informational: the RSS target stays on the runs it was set for.
  const peaks = [
    ...rs.flatMap((r) => (r.mailmoatPeakRssMB === null || COUNTERPART[r.scenario] ? [] : [r.mailmoatPeakRssMB])),
    ...lat.flatMap((l) => (l.mailmoatPeakRssMB === null ? [] : [l.mailmoatPeakRssMB])),
    ...(bigS.peakRssMB ? [bigS.peakRssMB.max] : []),
  ];
  const loads = o.loadTimeline.map(([, l]) => l);
  return {
    generatedAt: new Date().toISOString(),
    mode: o.plan.mode,
    roundsDone: Math.max(0, ...o.cells.map((c) => c.round)),
    durationSeconds: Math.round((Date.now() - o.startedAt) / 1000),
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? '',
      memoryMB: toMB(os.totalmem()),
      kernel: os.release(),
      node: process.version,
      loadavg1m: { median: median(loads), max: loads.length ? Math.max(...loads) : null, timeline: o.loadTimeline },
      fsync2KB: { p50Ms: roundSummary(summarize(o.disk.map((d) => d.p50Ms)), 2), p99Ms: roundSummary(summarize(o.disk.map((d) => d.p99Ms)), 2) },
      sqliteCommit: { p50Ms: roundSummary(summarize(o.sqlite.map((d) => d.p50Ms)), 2), p99Ms: roundSummary(summarize(o.sqlite.map((d) => d.p99Ms)), 2) },
      postgresCommit: { p50Ms: roundSummary(summarize(o.postgres.map((d) => d.p50Ms)), 2), p99Ms: roundSummary(summarize(o.postgres.map((d) => d.p99Ms)), 2) },
    },
    gateway: {
      checkout: getGatewayRoot(),
      rssAtStartMB: o.rssAtStart.map((r) => ({ phase: r.phase, role: r.role, mb: toMB(r.bytes) })),
      commit: git(['rev-parse', '--short', 'HEAD']),
      uncommittedFiles: git(['status', '--porcelain']).split('\n').filter(Boolean).length,
      roles:
        'accept: `mailmoat smtp` alone; full path: `mailmoat start` (one process: SMTP + workers), engines external; PostgreSQL rows: `database.url` set (a database per gateway, `mailmoat migrate` before the roles start)',
      config: 'shipped defaults (queue.scanConcurrency 4, deliverConcurrency 16)',
      dataDirFilesystem: fsType(os.tmpdir()),
      dnsQueriesAnswered: o.engines.dnsQueries(),
    },
    engines: {
      clamavDatabase: o.clamavDb,
      spamd: 'managed spamd (-L, 2 children), as `mailmoat start` runs it',
      postgres: `private PostgreSQL ${o.engines.postgres.version} (services/postgres.ts: default settings, fsync and synchronous_commit on, max_connections 200), on the data dir's disk`,
    },
    plan: o.plan,
    rows: rs,
    latency: lat,
    bigMessage: bigS,
    memory: o.memory.map((m) => ({
      phase: m.phase,
      role: m.role,
      rssMB: toMB(m.peak.rss),
      rssAnonMB: toMB(m.peak.rssAnon ?? 0),
      rssFileMB: toMB(m.peak.rssFile ?? 0),
      heapUsedMB: toMB(m.peak.heapUsed),
      heapTotalMB: toMB(m.peak.heapTotal),
      externalMB: toMB(m.peak.external),
      arrayBuffersMB: toMB(m.peak.arrayBuffers),
      modules: m.modules,
      packages: m.packages.slice(0, 12),
    })),
    targets: targets(rs, lat, bigS, peaks),
    issueTargets: issueTargets(rs, o.cells, lat.find((l) => l.target.startsWith('accept'))?.p99Ms),
    cpuPerMessage: cpuPerMessageLine(rs),
    profiles: o.profiles,
    skipped: o.skipped,
    notMeasured: o.notMeasured,
    phaseErrors: o.phaseErrors,
    raw: { cells: o.cells, latency: o.latency, big: o.big },
  };
}

export type Results = ReturnType<typeof buildResults>;

export function renderMarkdown(r: Results): string {
  const L: string[] = [];
  L.push(
    `# mailmoat bench — ${r.generatedAt.slice(0, 16).replace('T', ' ')} UTC (${r.mode}, ${r.roundsDone} of ${r.plan.rounds} round${r.plan.rounds > 1 ? 's' : ''}, ${r.durationSeconds} s)`,
  );
  L.push('');
  L.push(
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryMB} MB, Linux ${r.machine.kernel}, Node ${r.machine.node}. ` +
      `Load (1 min) during the run: median ${r.machine.loadavg1m.median ?? 'n/a'}, max ${r.machine.loadavg1m.max ?? 'n/a'}. ` +
      `On the data dir's disk (${r.gateway.dataDirFilesystem}), a 2 KB write + fsync + directory fsync takes p50 ${fmt(r.machine.fsync2KB.p50Ms, ' ms')}, p99 ${fmt(r.machine.fsync2KB.p99Ms, ' ms')}; ` +
      `one SQLite commit with the store's settings (WAL, synchronous FULL) p50 ${fmt(r.machine.sqliteCommit.p50Ms, ' ms')}, p99 ${fmt(r.machine.sqliteCommit.p99Ms, ' ms')}` +
      (r.machine.postgresCommit.p50Ms
        ? `; one PostgreSQL commit (a 2 KB row, client round trip included) p50 ${fmt(r.machine.postgresCommit.p50Ms, ' ms')}, p99 ${fmt(r.machine.postgresCommit.p99Ms, ' ms')}`
        : '') +
      '. ' +
      `RSS of the gateway once listening, before any mail: ${r.gateway.rssAtStartMB.map((x) => `${x.role}${x.phase.endsWith('-pg') ? ' (PostgreSQL)' : ''} ${x.mb} MB`).join(', ')}. ` +
      `Gateway ${r.gateway.commit ? `at ${r.gateway.commit}${r.gateway.uncommittedFiles ? ` + ${r.gateway.uncommittedFiles} uncommitted files` : ''}` : `from ${r.gateway.checkout} (not a git checkout)`}; ${r.gateway.roles}.`,
  );
  L.push('');
  L.push(
    `Rates are medians over rounds (min–max); each ratio is to the ceiling of the same size and concurrency measured in the same round (mean of its runs at the start and the end of the round). New connection per message throughout. Each gateway process is warmed up with ${r.plan.warmUp} messages before it is measured (steady state: the first few hundred messages of a fresh process also pay for V8 compiling its code, up to ~4 ms of CPU each), each peer with as many.`,
  );
  L.push('');
  L.push(
    '"CPU ms per message" is CPU time (all threads) per finished message: the figure that moves least with other load. "CPU % of a core" is over the run, per process group (load = smtp-source/smtp-sink); "others" is CPU (% of a core) used by processes that are not the bench\'s: other work on a shared machine.',
  );
  L.push('');
  if (r.rows.some((row) => COUNTERPART[row.scenario])) {
    L.push(
      `Rows marked PostgreSQL run the gateway with the cluster storage (\`database.url\`, ${r.engines.postgres}; a database per gateway): every accepted message's body and envelope are committed to PostgreSQL before the 250 (accept counts the envelope rows), metadata and the worker's reads and removals go there too. ` +
        'They are shown next to their one-machine (SQLite + local spool) counterparts and have no target. "postgres" is the whole PostgreSQL cluster (postmaster, the gateways\' backends, WAL writer, checkpointer) over the run.',
    );
    L.push('');
  }
  L.push(
    '| run | size | sessions | msgs/s | × ceiling | CPU ms per message | CPU % of a core | mailmoat peak RSS | Redis peak RSS | others | machine busy | load max |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of r.rows) {
    const ratio = row.scenario === 'full-spamd' ? `${fmt(row.ratioToCeiling)}; × spamd alone ${fmt(row.ratioToSpamdAlone)}` : fmt(row.ratioToCeiling);
    const cpu = Object.entries(row.cpu)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const fails = row.failedRuns ? ` ⚠ ${row.failedRuns}/${row.runs} failed` : '';
    const perMsg =
      row.scenario === 'ceiling'
        ? '–'
        : Object.entries(row.cpuMsPerMessage)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ');
    L.push(
      `| ${row.what} | ${row.size} | ${row.sessions} | ${fmt(row.rate)}${fails} | ${row.scenario === 'ceiling' ? '1' : ratio} | ${perMsg} | ${cpu} | ${row.mailmoatPeakRssMB ?? '–'}${row.mailmoatPeakRssMB === null ? '' : ' MB'} | ${row.redisPeakRssMB ?? '–'}${row.redisPeakRssMB === null ? '' : ' MB'} | ${row.othersCpuPercent ?? '–'} | ${row.machineBusyPercent ?? '–'} % | ${row.loadavg1mMax ?? '–'} |`,
    );
  }
  L.push('');
  L.push('**Latency**, end of DATA (the final ".") → reply, 2 KB, new connection per message, open loop at half the max rate of the same round:');
  L.push('');
  L.push('| target | offered msgs/s | p50 | p90 | p99 | max | failed | mailmoat CPU % |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const l of r.latency) {
    L.push(
      `| ${l.target} | ${fmt(l.offeredRate)} | ${fmt(l.p50Ms, ' ms')} | ${fmt(l.p90Ms, ' ms')} | ${fmt(l.p99Ms, ' ms')} | ${fmt(l.maxMs, ' ms')} | ${l.failed} | ${l.mailmoatCpuPercent ?? '–'} |`,
    );
  }
  L.push('');
  const b = r.bigMessage;
  L.push(
    `**One ${round(b.bytes / 1e6, 0)} MB message** through the full path (mailmoat start, idle): ${fmt(b.seconds, ' s')} end to end; mailmoat RSS ${fmt(b.baselineRssMB, ' MB')} before, peak ${fmt(b.peakRssMB, ' MB')}, growth ${fmt(b.growthMB, ' MB')}${b.failedRuns ? ` (⚠ ${b.failedRuns} failed: ${b.errors[0]})` : ''}.`,
  );
  L.push('');
  if (r.memory.length) {
    L.push('**What the memory is**, per gateway process at its highest RSS (V8\'s view, sampled each second; "modules" = files loaded):');
    L.push('');
    L.push(
      '| phase | role | RSS (own / mapped files) | JS heap used / total | external (array buffers) | own memory outside the JS heap | modules | packages with most files loaded |',
    );
    L.push('|---|---|---|---|---|---|---|---|');
    for (const m of r.memory) {
      L.push(
        `| ${m.phase} | ${m.role} | ${m.rssMB} MB (${m.rssAnonMB} / ${m.rssFileMB}) | ${m.heapUsedMB} / ${m.heapTotalMB} MB | ${m.externalMB} MB (${m.arrayBuffersMB}) | ${Math.max(0, m.rssAnonMB - m.heapTotalMB - m.externalMB)} MB | ${m.modules} | ${m.packages
          .slice(0, 8)
          .map((p) => `${p.name} ${p.files}`)
          .join(', ')} |`,
      );
    }
    L.push('');
  }
  L.push('**Targets** (issue 10):');
  L.push('');
  L.push('| target | measured | |');
  L.push('|---|---|---|');
  for (const t of r.targets) L.push(`| ${t.text} | ${t.measured} | ${t.pass === null ? 'not measured' : t.pass ? 'met' : '**missed**'} |`);
  const errors = [...r.phaseErrors, ...r.rows.flatMap((row) => row.errors.map((e) => `${row.what} ${row.size} ×${row.sessions}: ${e}`))];
  if (errors.length) {
    L.push('');
    L.push('Errors:');
    for (const e of errors) L.push(`- ${e.replace(/\s+/g, ' ')}`);
  }
  for (const p of r.profiles) {
    L.push('');
    L.push(`**Profile: ${p.name}** (${p.rate} msgs/s under the profiler; raw profiles in \`${p.dir.replace(REPO_ROOT + '/', '')}\`)`);
    for (const s of p.summaries) {
      L.push('');
      const mt = p.mainThread;
      L.push(
        `${s.file.split('/').pop()}, measured run only (${s.wallMs} ms): the event loop was busy ${s.busyMs} ms (${round((100 * s.busyMs) / Math.max(1, s.wallMs), 0)} %), GC ${s.gcMs} ms. ` +
          (mt
            ? `The kernel says its thread was on a CPU ${mt.onCpuMs} ms and runnable but waiting for a CPU ${mt.waitingForCpuMs} ms of ${p.elapsedMs} ms; ` +
              `busy beyond that (≈ ${Math.max(0, s.busyMs - mt.onCpuMs - mt.waitingForCpuMs)} ms) is time blocked inside synchronous calls (fsync, SQLite).`
            : ''),
      );
      L.push('');
      L.push(`By origin (self time, % of busy): ${s.byOrigin.map((o) => `${o.name} ${o.busyPercent} %`).join(', ')}.`);
      L.push('');
      L.push('| self ms | % busy | function | where |');
      L.push('|---|---|---|---|');
      for (const f of s.topFunctions.slice(0, 12)) L.push(`| ${f.selfMs} | ${f.busyPercent} | \`${f.name}\` | ${f.where} |`);
    }
  }
  if (r.notMeasured.length) {
    L.push('');
    L.push(`Not measured: ${r.notMeasured.join('; ')}.`);
  }
  if (r.skipped.length) {
    L.push('');
    L.push(`Left out to stay within the time budget: ${r.skipped.join('; ')}.`);
  }
  L.push('');
  L.push(
    `Counts per run: ${Object.entries(r.plan.counts)
      .map(
        ([k, v]) =>
          `${k} ${Object.entries(v)
            .map(([s, n]) => `${n}×${s}`)
            .join('/')}`,
      )
      .join(
        '; ',
      )}. ClamAV database: ${r.engines.clamavDatabase.replace(REPO_ROOT + '/', '')}. spamd: ${r.engines.spamd}. DNS queries answered by the bench's resolver: ${r.gateway.dnsQueriesAnswered}.`,
  );
  L.push('');
  // Last, so that it is what the console shows at the end of the run.
  L.push(...renderIssueTargets(r.issueTargets, r.cpuPerMessage));
  L.push('');
  return L.join('\n');
}
