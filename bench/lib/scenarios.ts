// One function per kind of measured run. Each returns plain data (rates, latencies, usage); the
// caller decides how many times to run them and how to report. Every wait is bounded.
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from '../../gateway/services/managed.ts';
import type { Engines } from './engines.ts';
import { migrateGateway, startGateway, writeGatewayConfig, type GatewayProcess } from './gateway.ts';
import { runSource, startSink, type Sink } from './postfix.ts';
import { UsageSampler, rssOf, type Usage } from './proc.ts';
import { openLoop, type OpenLoopResult } from './smtp-client.ts';
import { spamdLoop } from './spamd-loop.ts';
import type { PeerServer, PostfixInstance } from './peers.ts';
import { percentile, round, type Summary } from './stats.ts';

/** `-pg`: the same as without, on the cluster storage (database.url: a PostgreSQL database of the phase's own). */
export type Scenario = 'ceiling' | 'accept' | 'accept-pg' | 'full' | 'full-split' | 'full-split-pg' | 'full-spamd' | 'spamd-alone' | PeerScenario;
/** The peers (peers.ts): Postfix accepting (on hold), Postfix relaying, Haraka relaying (smtp_forward). */
export type PeerScenario = 'postfix-accept' | 'postfix' | 'haraka';

export interface TestMessage {
  label: string;
  bytes: number;
  /** smtp-source -F file */
  file: string;
  /** What the gateway spools and hands to spamd (CRLF). */
  wire: Buffer;
}

export interface Cell {
  scenario: Scenario;
  size: string;
  sessions: number;
  round: number;
  count: number;
  /** Messages that made it (accepted, delivered at the sink, or scored by spamd). */
  done: number;
  elapsedMs: number;
  /** done per second over elapsedMs. */
  rate: number;
  ok: boolean;
  error?: string;
  /** Full path: how fast the SMTP side took the same messages in. */
  acceptRate?: number;
  /** spamd alone: the score spamd gave the message (a quarantined test message would never reach the sink). */
  spamScore?: number;
  /**
   * CPU time per finished message, ms, per process group: the figure least moved by other load
   * on the machine, and the one that says how far a core would carry each part.
   */
  cpuMsPerMessage: Record<string, number>;
  usage: Usage;
}

export interface Bench {
  engines: Engines;
  runDir: string;
  logLevel: string;
  cpuProfDir?: string;
  log: (line: string) => void;
}

/**
 * Process groups the sampler follows during a run. PostgreSQL (all its processes: postmaster,
 * the gateways' backends, WAL writer, checkpointer) only where the phase's gateway uses it.
 */
function groups(b: Bench, extra: Record<string, number[]>, p?: Phase): () => Record<string, number[]> {
  return () => {
    const e = b.engines.pids();
    return { redis: e.redis, clamd: e.clamd, spamd: e.spamd, ...(p?.database ? { postgres: e.postgres } : {}), ...extra };
  };
}

// ---------------------------------------------------------------- ceiling: smtp-source → smtp-sink

export async function ceilingCell(b: Bench, m: TestMessage, sessions: number, count: number, round: number, capMs: number): Promise<Cell> {
  const sink = await startSink(await freePort());
  const load: number[] = [sink.pid];
  const sampler = new UsageSampler(() => ({ load }));
  sampler.start();
  const r = await runSource({ port: sink.port, sessions, count, file: m.file, timeoutMs: capMs, onSpawn: (pid) => load.push(pid) });
  await sink.waitFor(count, 2000);
  const usage = sampler.stop();
  const done = sink.messages();
  await sink.stop();
  return cell('ceiling', m, sessions, round, count, done, r.elapsedMs, r.ok && done === count, r.error, usage);
}

function cell(
  scenario: Scenario,
  m: TestMessage,
  sessions: number,
  roundNo: number,
  count: number,
  done: number,
  elapsedMs: number,
  ok: boolean,
  error: string | undefined,
  usage: Usage,
  extra: Partial<Cell> = {},
): Cell {
  return {
    scenario,
    size: m.label,
    sessions,
    round: roundNo,
    count,
    done,
    elapsedMs: Math.round(elapsedMs),
    rate: round1((done * 1000) / elapsedMs),
    ok,
    ...(error ? { error: error.slice(0, 500) } : {}),
    ...extra,
    cpuMsPerMessage: Object.fromEntries(
      Object.entries(usage.groups).map(([g, u]) => [g, done > 0 ? round(((u.cpuPercentOfOneCore / 100) * usage.machine.durationMs) / done, 2) : NaN]),
    ),
    usage,
  };
}

const round1 = (x: number) => round(x, 1);

// ---------------------------------------------------------------- a gateway for one phase

export interface Phase {
  gateways: GatewayProcess[];
  smtpPort: number;
  sink: Sink;
  dir: string;
  /** Cluster storage: the phase's own PostgreSQL database. */
  database?: { name: string; url: string };
  /** Messages committed and not yet handled: envelopes in the spool dir, or (cluster) envelope rows in spool_files. */
  committed(): Promise<number>;
  /** RSS of each gateway process once it listens, before any mail: what its code and libraries cost. */
  rssAtStart: { role: string; bytes: number }[];
  /** Every gateway process of the phase is still running. */
  alive(): boolean;
  stop(): Promise<void>;
}

let phaseStarts = 0;

/**
 * Fresh data dir, queues of its own in Redis (a key prefix per start), a downstream smtp-sink and
 * the gateway in the given roles ("smtp" alone for accept runs: no worker takes anything off the
 * queue). Phases stay up across rounds, so several can run side by side: idle, they cost little.
 */
export async function startPhase(b: Bench, name: string, o: { roles: ('start' | 'smtp' | 'worker')[]; spamd: boolean; postgres?: boolean }): Promise<Phase> {
  const dir = join(b.runDir, name);
  await rm(dir, { recursive: true, force: true });
  const n = ++phaseStarts;
  // Cluster storage: a database of its own (a phase started again gets a new one), migrated as an
  // operator would before the roles start.
  const database = o.postgres ? await createDatabase(b.engines.postgres.url, `bench_${name.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${n}`) : undefined;
  const sink = await startSink(await freePort());
  const smtpPort = await freePort();
  const configFile = await writeGatewayConfig({
    dir,
    smtpPort,
    downstreamPort: sink.port,
    engines: b.engines,
    spamd: o.spamd,
    logLevel: b.logLevel,
    redisPrefix: `bench-${name}-${n}`,
    ...(database ? { databaseUrl: database.url } : {}),
  });
  const gateways: GatewayProcess[] = [];
  const stop = async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await sink.stop();
    await rm(dir, { recursive: true, force: true });
    if (database) await dropDatabase(b.engines.postgres.url, database.name).catch(() => {});
  };
  try {
    if (database) await migrateGateway(configFile, join(b.runDir, `${name}.migrate.log`));
    for (const role of o.roles) {
      gateways.push(
        await startGateway({
          role,
          configFile,
          smtpPort: role === 'worker' ? undefined : smtpPort,
          logFile: join(b.runDir, `${name}.${role}.log`),
          cpuProfDir: b.cpuProfDir,
          memoryDir: join(b.runDir, 'memory', name),
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  // The worker role has no port to wait for: give it the moment the others took to start.
  await sleep(o.roles.includes('worker') ? 1500 : 300);
  const rssAtStart = gateways.map((g) => ({ role: g.role, bytes: rssOf(g.pid) }));
  const committed = database ? () => committedInDatabase(database.url) : async () => committedInSpool(dir);
  return { gateways, smtpPort, sink, dir, ...(database ? { database } : {}), committed, rssAtStart, alive: () => gateways.every((g) => g.alive()), stop };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function createDatabase(adminUrl: string, name: string): Promise<{ name: string; url: string }> {
  await withClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** The cluster's commit record of a message is its envelope row (gateway/spool/replica.ts). */
async function committedInDatabase(url: string): Promise<number> {
  return withClient(url, async (c) => Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM spool_files WHERE kind = 'envelope'`)).rows[0].n));
}

/** Messages through the whole path before measuring: JIT, connection pools, first-use costs. */
export async function warmUp(p: Phase, m: TestMessage, count: number, throughWorkers: boolean): Promise<void> {
  const c0 = p.sink.messages();
  const r = await runSource({ port: p.smtpPort, sessions: 5, count, file: m.file, timeoutMs: 60_000 });
  if (!r.ok) throw new Error(`warm-up failed: ${r.error}`);
  if (throughWorkers && !(await p.sink.waitFor(c0 + count, 120_000))) {
    throw new Error(`warm-up: ${p.sink.messages() - c0} of ${count} messages reached the downstream sink within 120 s`);
  }
}

function committedInSpool(dir: string): number {
  try {
    return readdirSync(join(dir, 'data', 'spool')).filter((f) => f.endsWith('.json')).length;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- accept: smtp-source → mailmoat smtp

export async function acceptCell(
  b: Bench,
  p: Phase,
  m: TestMessage,
  sessions: number,
  count: number,
  round: number,
  capMs: number,
  scenario: 'accept' | 'accept-pg' = 'accept',
): Promise<Cell> {
  const before = await p.committed();
  const load: number[] = [];
  const sampler = new UsageSampler(groups(b, { mailmoat: p.gateways.map((g) => g.pid), load }, p));
  sampler.start();
  const r = await runSource({ port: p.smtpPort, sessions, count, file: m.file, timeoutMs: capMs, onSpawn: (pid) => load.push(pid) });
  const usage = sampler.stop();
  // Workers are not running: every accepted message is still in the spool (or its shared copy).
  const done = (await p.committed()) - before;
  return cell(scenario, m, sessions, round, count, done, r.elapsedMs, r.ok && done === count, r.error, usage);
}

// ---------------------------------------------------------------- full path: … → mailmoat → smtp-sink

export async function fullCell(
  b: Bench,
  p: Phase,
  scenario: 'full' | 'full-split' | 'full-split-pg' | 'full-spamd',
  m: TestMessage,
  sessions: number,
  count: number,
  round: number,
  capMs: number,
): Promise<Cell> {
  const c0 = p.sink.messages();
  const load: number[] = [p.sink.pid];
  const sampler = new UsageSampler(groups(b, { mailmoat: p.gateways.map((g) => g.pid), load }, p));
  sampler.start();
  const t0 = performance.now();
  const r = await runSource({ port: p.smtpPort, sessions, count, file: m.file, timeoutMs: capMs, onSpawn: (pid) => load.push(pid) });
  const left = Math.max(1000, capMs - (performance.now() - t0));
  const arrived = await p.sink.waitFor(c0 + count, left);
  const elapsedMs = performance.now() - t0;
  const usage = sampler.stop();
  const done = p.sink.messages() - c0;
  const error = r.error ?? (arrived ? undefined : `${done} of ${count} delivered within ${Math.round(capMs / 1000)} s`);
  return cell(scenario, m, sessions, round, count, done, elapsedMs, r.ok && arrived, error, usage, { acceptRate: round1((count * 1000) / r.elapsedMs) });
}

// ---------------------------------------------------------------- the peers: → postfix / haraka → smtp-sink

/** Postfix's process tree (master and its daemons) as "postfix", Haraka's as "haraka". */
const peerGroup = (peer: PeerServer) => (peer.name.startsWith('postfix') ? 'postfix' : 'haraka');

/** End to end through a peer: counted at its sink, like fullCell. */
export async function peerRelayCell(
  peer: PeerServer,
  scenario: 'postfix' | 'haraka',
  m: TestMessage,
  sessions: number,
  count: number,
  round: number,
  capMs: number,
): Promise<Cell> {
  const c0 = peer.sink.messages();
  const load: number[] = [peer.sink.pid];
  const sampler = new UsageSampler(() => ({ [peerGroup(peer)]: peer.pids(), load }));
  sampler.start();
  const t0 = performance.now();
  const r = await runSource({ port: peer.port, sessions, count, file: m.file, timeoutMs: capMs, onSpawn: (pid) => load.push(pid) });
  const arrived = await peer.sink.waitFor(c0 + count, Math.max(1000, capMs - (performance.now() - t0)));
  const elapsedMs = performance.now() - t0;
  const usage = sampler.stop();
  const done = peer.sink.messages() - c0;
  const error = r.error ?? (arrived ? undefined : `${done} of ${count} relayed within ${Math.round(capMs / 1000)} s`);
  return cell(scenario, m, sessions, round, count, done, elapsedMs, r.ok && arrived, error, usage, { acceptRate: round1((count * 1000) / r.elapsedMs) });
}

/** Postfix accepting only: every message is spooled and put on hold; counted in the hold queue, which is emptied after. */
export async function postfixAcceptCell(peer: PostfixInstance, m: TestMessage, sessions: number, count: number, round: number, capMs: number): Promise<Cell> {
  await peer.clear();
  const load: number[] = [];
  const sampler = new UsageSampler(() => ({ postfix: peer.pids(), load }));
  sampler.start();
  const r = await runSource({ port: peer.port, sessions, count, file: m.file, timeoutMs: capMs, onSpawn: (pid) => load.push(pid) });
  const usage = sampler.stop();
  // cleanup has written (and fsync'd) the queue file before smtpd's 250, so the count is final.
  const done = peer.held();
  await peer.clear();
  return cell('postfix-accept', m, sessions, round, count, done, r.elapsedMs, r.ok && done === count, r.error, usage);
}

/** After a cell that did not finish: let the queue drain so the next cell counts only its own. */
export async function drain(p: Phase, expectedTotal: number, ms: number): Promise<boolean> {
  return p.sink.waitFor(expectedTotal, ms);
}

// ---------------------------------------------------------------- spamd alone

export async function spamdCell(b: Bench, m: TestMessage, sessions: number, count: number, round: number, capMs: number): Promise<Cell> {
  // The gateway puts its Received line in front of what it sends to spamd; so do we.
  const received = Buffer.from(
    'Received: from client.sender.test (client.sender.test [127.0.0.1]) by mx.bench.test (mailmoat) with ESMTP id 01KBENCH0000000000000000 for <user@bench.test>; Tue, 3 Nov 2026 10:15:01 +0000\r\n',
  );
  const sampler = new UsageSampler(groups(b, {}));
  sampler.start();
  const r = await spamdLoop({
    spamd: b.engines.spamd,
    message: Buffer.concat([received, m.wire]),
    count,
    concurrency: sessions,
    timeoutMs: 60_000,
    budgetMs: capMs,
  });
  const usage = sampler.stop();
  const ok = r.ok === count;
  const error = r.firstError ?? (ok ? undefined : `${r.ok} of ${count} scored within ${Math.round(capMs / 1000)} s`);
  return cell('spamd-alone', m, sessions, round, count, r.ok, r.elapsedMs, ok, error, usage, r.scores.length ? { spamScore: r.scores[0] } : {});
}

// ---------------------------------------------------------------- latency at a fixed offered rate

export interface LatencyRun {
  target: string;
  round: number;
  offeredRate: number;
  achievedRate: number;
  sent: number;
  ok: number;
  failed: number;
  lateStarts: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  firstError?: string;
  usage: Usage;
}

export async function latencyRun(
  b: Bench,
  p: Phase,
  target: string,
  m: TestMessage,
  rate: number,
  durationMs: number,
  maxInFlight: number,
  roundNo: number,
): Promise<LatencyRun> {
  const count = Math.max(20, Math.round((rate * durationMs) / 1000));
  const sampler = new UsageSampler(groups(b, { mailmoat: p.gateways.map((g) => g.pid) }));
  sampler.start();
  const r: OpenLoopResult = await openLoop({ port: p.smtpPort, rate, count, maxInFlight, body: m.wire, timeoutMs: 30_000 });
  const usage = sampler.stop();
  const l = r.dataReplyMs;
  return {
    target,
    round: roundNo,
    offeredRate: round1(r.offeredRate),
    achievedRate: round1(r.achievedRate),
    sent: r.sent,
    ok: r.ok,
    failed: r.failed,
    lateStarts: r.lateStarts,
    p50Ms: round(percentile(l, 50), 2),
    p90Ms: round(percentile(l, 90), 2),
    p99Ms: round(percentile(l, 99), 2),
    maxMs: round(Math.max(...l), 2),
    ...(r.firstError ? { firstError: r.firstError } : {}),
    usage,
  };
}

// ---------------------------------------------------------------- one 30 MB message

export interface BigMessageRun {
  round: number;
  bytes: number;
  ok: boolean;
  error?: string;
  /** End to end: first byte sent → message at the sink. */
  elapsedMs: number;
  baselineRssBytes: number;
  peakRssBytes: number;
  growthBytes: number;
  usage: Usage;
}

/** RSS of the gateway before (settled), its peak while one big message goes through, the growth. */
export async function bigMessageRun(b: Bench, p: Phase, m: TestMessage, round: number, capMs: number): Promise<BigMessageRun> {
  const pids = p.gateways.map((g) => g.pid);
  await sleep(1000);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(pids.reduce((s, pid) => s + rssOf(pid), 0));
    await sleep(100);
  }
  const baseline = samples.sort((x, y) => x - y)[2];
  const c0 = p.sink.messages();
  const sampler = new UsageSampler(groups(b, { mailmoat: pids }), 50);
  sampler.start();
  const t0 = performance.now();
  const r = await runSource({ port: p.smtpPort, sessions: 1, count: 1, file: m.file, timeoutMs: capMs });
  const arrived = await p.sink.waitFor(c0 + 1, Math.max(1000, capMs - (performance.now() - t0)));
  const elapsedMs = performance.now() - t0;
  const usage = sampler.stop();
  const g = usage.groups.mailmoat;
  const peak = Math.max(g?.kernelPeakRssBytes ?? 0, g?.sampledPeakRssBytes ?? 0);
  const error = r.error ?? (arrived ? undefined : `not at the sink within ${Math.round(capMs / 1000)} s`);
  return {
    round,
    bytes: m.bytes,
    ok: r.ok && arrived,
    ...(error ? { error } : {}),
    elapsedMs: Math.round(elapsedMs),
    baselineRssBytes: baseline,
    peakRssBytes: peak,
    growthBytes: peak - baseline,
    usage,
  };
}

/** One row of the results: a scenario's figures over its runs (report.ts renders it; issue-targets.ts reads it). */
export interface Row {
  scenario: Scenario;
  what: string;
  size: string;
  sessions: number;
  runs: number;
  failedRuns: number;
  rate: Summary | null;
  ratioToCeiling: Summary | null;
  ratioToSpamdAlone?: Summary | null;
  /** Max over runs, MB. */
  mailmoatPeakRssMB: number | null;
  redisPeakRssMB: number | null;
  /** Medians over runs, % of one core. */
  cpu: Record<string, number>;
  machineBusyPercent: number | null;
  /** CPU ms per finished message per process group (median over runs). */
  cpuMsPerMessage: Record<string, number>;
  /** CPU of processes that are not the bench's, % of one core (median over runs). */
  othersCpuPercent: number | null;
  loadavg1mMax: number | null;
  errors: string[];
}
