// One round of the bench (every scenario once, between two ceiling measurements) and the profiled
// re-runs of scenarios whose target was missed. A phase that fails (the gateway does not start,
// a warm-up never arrives) is recorded and the round goes on: a half-built gateway still gets the
// rest of its figures, and the failure is in the results instead of a stack trace.
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { summarizeProfile } from './profile.ts';
import { runSource } from './postfix.ts';
import { fsyncProbe, postgresCommitProbe, sqliteCommitProbe } from './disk.ts';
import { gatewayHasDatabaseUrl } from './gateway.ts';
import { harakaBin, postfixPresent, startHaraka, startPostfix, type PeerServer, type PostfixInstance } from './peers.ts';
import type { Collected, MemoryReport, Plan, ProfileRun } from './report.ts';
import {
  acceptCell,
  bigMessageRun,
  ceilingCell,
  drain,
  fullCell,
  peerRelayCell,
  postfixAcceptCell,
  latencyRun,
  spamdCell,
  startPhase,
  warmUp,
  type Bench,
  type Cell,
  type Phase,
  type TestMessage,
} from './scenarios.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface RoundContext {
  bench: Bench;
  plan: Plan;
  messages: { sized: TestMessage[]; big: TestMessage };
  data: Collected;
  /** Gateways kept running across rounds, by phase name (stopped at the end or on SIGINT). */
  phases: Map<string, Phase>;
  /** The peers (Postfix, Haraka), started in the first round and kept like the phases. */
  peers?: { postfixAccept?: PostfixInstance; postfixRelay?: PostfixInstance; haraka?: PeerServer };
}

export function emptyCollected(): Collected {
  return { cells: [], latency: [], big: [], disk: [], sqlite: [], postgres: [], rssAtStart: [], phaseErrors: [], notMeasured: [], startupMs: 0 };
}

const mb = (b: number) => (b / 1048576).toFixed(0);

function note(ctx: RoundContext, c: Cell): void {
  ctx.data.cells.push(c);
  ctx.bench.log(
    `${c.scenario.padEnd(13)} ${c.size.padStart(5)} ×${String(c.sessions).padStart(2)}: ${String(c.rate).padStart(7)} msg/s (${c.done}/${c.count} in ${(c.elapsedMs / 1000).toFixed(1)} s)${c.ok ? '' : `  FAILED: ${c.error}`}`,
  );
}

/**
 * Runs `body` against the phase's gateway: started (and warmed up) on first use and kept for the
 * next rounds; started again if it died. A failure is recorded, not thrown, and the phase's
 * gateway is stopped so the next round starts it fresh.
 */
async function phase(ctx: RoundContext, name: string, round: number, o: PhaseOptions, body: (p: Phase) => Promise<void>): Promise<void> {
  let p = ctx.phases.get(name);
  try {
    if (p && !p.alive()) {
      ctx.data.phaseErrors.push(`round ${round}, ${name}: the gateway had exited; started again`);
      ctx.phases.delete(name);
      await p.stop();
      p = undefined;
    }
    if (!p) {
      const t0 = Date.now();
      p = await startPhase(ctx.bench, name, o);
      ctx.phases.set(name, p);
      ctx.data.rssAtStart.push(...p.rssAtStart.map((r) => ({ phase: name, ...r })));
      await warmUp(p, ctx.messages.sized[0], o.warmUp, !o.roles.every((r) => r === 'smtp'));
      ctx.data.startupMs += Date.now() - t0;
    }
    await body(p);
  } catch (err) {
    const message = `round ${round}, ${name}: ${err instanceof Error ? err.message : String(err)}`;
    ctx.data.phaseErrors.push(message);
    ctx.bench.log(`PHASE FAILED: ${message}`);
    if (p) {
      ctx.phases.delete(name);
      await p.stop();
    }
  }
}

interface PhaseOptions {
  roles: ('start' | 'smtp' | 'worker')[];
  spamd: boolean;
  /** Cluster storage: database.url, a PostgreSQL database of the phase's own. */
  postgres?: boolean;
  warmUp: number;
}

export async function stopPhases(ctx: RoundContext): Promise<void> {
  const all = [...ctx.phases.values(), ...Object.values(ctx.peers ?? {})];
  ctx.phases.clear();
  ctx.peers = undefined;
  await Promise.all(all.map((p) => p.stop().catch(() => {})));
}

/**
 * The peers' rows (issue 16), 2 KB at each session count: Postfix accepting (hold), Postfix and
 * Haraka end to end. Started once; one that cannot start is recorded and its rows left out.
 */
async function peerRows(ctx: RoundContext, round: number): Promise<void> {
  const { bench, plan, data } = ctx;
  const m = ctx.messages.sized[0];
  if (!ctx.peers) {
    ctx.peers = {};
    const start = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await f();
      } catch (err) {
        data.phaseErrors.push(`round ${round}, ${what}: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      }
    };
    if (postfixPresent()) {
      ctx.peers.postfixAccept = await start('postfix (accept)', () => startPostfix(bench.runDir, 'accept'));
      ctx.peers.postfixRelay = await start('postfix (relay)', () => startPostfix(bench.runDir, 'relay'));
    } else data.notMeasured.push('the Postfix rows: /usr/sbin/postfix is missing');
    const bin = harakaBin();
    if (bin) ctx.peers.haraka = await start('haraka', () => startHaraka(bench.runDir, bin));
    else data.notMeasured.push('the Haraka rows: the Haraka devDependency is not installed (npm install)');
    // Warm-up, as for the gateways: processes spawned, connections to the sink cached, JIT.
    for (const peer of [ctx.peers.postfixAccept, ctx.peers.postfixRelay, ctx.peers.haraka]) {
      if (peer) await runSource({ port: peer.port, sessions: 5, count: plan.warmUp, file: m.file, timeoutMs: 30_000 });
    }
    await ctx.peers.postfixAccept?.clear();
  }
  const { postfixAccept, postfixRelay, haraka } = ctx.peers;
  const count = plan.counts.accept['2 KB'];
  for (const sessions of plan.sessions) {
    if (postfixAccept) note(ctx, await postfixAcceptCell(postfixAccept, m, sessions, count, round, plan.capMs.accept));
    if (postfixRelay) note(ctx, await peerRelayCell(postfixRelay, 'postfix', m, sessions, count, round, plan.capMs.full));
    if (haraka) note(ctx, await peerRelayCell(haraka, 'haraka', m, sessions, count, round, plan.capMs.full));
  }
}

function maxRate(cells: Cell[], scenario: string, round: number): number {
  return Math.max(0, ...cells.filter((c) => c.scenario === scenario && c.round === round && c.size === '2 KB' && c.ok).map((c) => c.rate));
}

export async function runRound(ctx: RoundContext, round: number): Promise<void> {
  const { bench, plan, messages, data } = ctx;
  const spamdRuns = plan.spamdRuns.map(([size, sessions]) => ({ m: messages.sized.find((x) => x.label === size)!, sessions }));
  data.disk.push(fsyncProbe(bench.runDir));
  data.sqlite.push(sqliteCommitProbe(bench.runDir));
  // The cluster rows need a gateway with cluster storage; an older checkout (--gateway) has none.
  const cluster = await gatewayHasDatabaseUrl();
  if (!cluster && round === 1) data.notMeasured.push("the PostgreSQL rows: this gateway's config has no database.url");
  if (cluster) {
    try {
      data.postgres.push(await postgresCommitProbe(bench.engines.postgres.url));
    } catch (err) {
      data.phaseErrors.push(`round ${round}, PostgreSQL commit probe: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // The ceiling is measured at the start and at the end of the round; the ratios use the mean of
  // both, so a change in the machine's other load during the round weighs on both sides.
  const ceilings = async () => {
    for (const m of messages.sized) {
      for (const s of plan.sessions) note(ctx, await ceilingCell(bench, m, s, plan.counts.ceiling[m.label], round, plan.capMs.ceiling));
    }
  };
  await ceilings();
  await phase(ctx, 'accept', round, { roles: ['smtp'], spamd: true, warmUp: plan.warmUp }, async (p) => {
    for (const m of messages.sized) {
      for (const s of plan.sessions) note(ctx, await acceptCell(bench, p, m, s, plan.counts.accept[m.label], round, plan.capMs.accept));
    }
    await latencyAtHalf(ctx, p, 'accept', 'accept (smtp role alone)', round, false);
  });
  if (cluster) {
    // The same with the cluster storage: each message's body and envelope committed to PostgreSQL
    // (instead of the local spool) before the 250, then queued. Informational: no target.
    await phase(ctx, 'accept-pg', round, { roles: ['smtp'], spamd: true, postgres: true, warmUp: plan.warmUp }, async (p) => {
      for (const m of messages.sized) {
        for (const s of plan.sessions) note(ctx, await acceptCell(bench, p, m, s, plan.counts.accept[m.label], round, plan.capMs.accept, 'accept-pg'));
      }
    });
  }
  await phase(ctx, 'full', round, { roles: ['start'], spamd: false, warmUp: plan.warmUp }, async (p) => {
    await fullCells(
      ctx,
      p,
      'full',
      messages.sized.flatMap((m) => plan.sessions.map((sessions) => ({ m, sessions }))),
      plan.counts.full,
      plan.capMs.full,
      round,
    );
    await latencyAtHalf(ctx, p, 'full', 'full path, no spamd (start role)', round, true);
    const b = await bigMessageRun(bench, p, messages.big, round, plan.capMs.big);
    data.big.push(b);
    bench.log(
      `${messages.big.label} message: ${(b.elapsedMs / 1000).toFixed(1)} s, RSS ${mb(b.baselineRssBytes)} → ${mb(b.peakRssBytes)} MB (+${mb(b.growthBytes)})${b.ok ? '' : `  FAILED: ${b.error}`}`,
    );
  });
  await peerRows(ctx, round);
  if (plan.split) {
    // The same path with SMTP and the workers in two processes: two event loops for two cores.
    await phase(ctx, 'full-split', round, { roles: ['smtp', 'worker'], spamd: false, warmUp: plan.warmUp }, async (p) => {
      note(ctx, await fullCell(bench, p, 'full-split', messages.sized[0], 50, plan.counts.full['2 KB'], round, plan.capMs.full));
    });
  }
  if (cluster) {
    // Two processes as above on the cluster storage: metadata, the shared spool copy (written at
    // accept, read back by the worker, removed after delivery) in PostgreSQL. Informational.
    await phase(ctx, 'full-split-pg', round, { roles: ['smtp', 'worker'], spamd: false, postgres: true, warmUp: plan.warmUp }, async (p) => {
      note(ctx, await fullCell(bench, p, 'full-split-pg', messages.sized[0], 50, plan.counts.full['2 KB'], round, plan.capMs.full));
    });
  }
  // spamd alone and the full path with spamd take turns going first, so a drift in the machine's
  // load does not always favour the same side of their ratio.
  const spamdAlone = async () => {
    for (const { m, sessions } of spamdRuns) note(ctx, await spamdCell(bench, m, sessions, plan.counts.spamd[m.label], round, plan.capMs.spamd));
  };
  if (round % 2 === 0) await spamdAlone();
  // The same warm-up as every other gateway (spamd makes it ~30 s): with 100 messages, the spamd
  // rows measured a gateway still compiling its hot code (~15-17 ms of CPU per message against
  // ~9 ms warm), and the report's "warmed up with 500" was not true of them.
  await phase(ctx, 'full-spamd', round, { roles: ['start'], spamd: true, warmUp: plan.warmUp }, async (p) => {
    await fullCells(ctx, p, 'full-spamd', spamdRuns, plan.counts.spamd, plan.capMs.spamd, round);
  });
  if (round % 2 === 1) await spamdAlone();
  await ceilings();
}

async function fullCells(
  ctx: RoundContext,
  p: Phase,
  scenario: 'full' | 'full-spamd',
  runs: { m: TestMessage; sessions: number }[],
  counts: Record<string, number>,
  capMs: number,
  round: number,
): Promise<void> {
  for (const { m, sessions } of runs) {
    const c = await fullCell(ctx.bench, p, scenario, m, sessions, counts[m.label], round, capMs);
    note(ctx, c);
    // The next run must count only its own messages at the sink.
    if (!c.ok && !(await drain(p, p.sink.messages() + (c.count - c.done), capMs))) {
      throw new Error(`${scenario}: the queue did not drain after a failed run; rest of the phase skipped`);
    }
  }
}

/** End of DATA → reply latency at half the best 2 KB rate of this round; the queue drains after. */
async function latencyAtHalf(ctx: RoundContext, p: Phase, scenario: string, target: string, round: number, throughWorkers: boolean): Promise<void> {
  const max = maxRate(ctx.data.cells, scenario, round);
  if (max <= 0) return;
  const c0 = p.sink.messages();
  const l = await latencyRun(ctx.bench, p, target, ctx.messages.sized[0], max / 2, ctx.plan.latencyMs, 50, round);
  ctx.data.latency.push(l);
  ctx.bench.log(`latency ${scenario} at ${l.offeredRate}/s: p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms (${l.ok}/${l.sent} ok)`);
  if (throughWorkers) await drain(p, c0 + l.ok, ctx.plan.capMs.full);
}

/** Runs the scenario behind each missed target once more, under --cpu-prof, and summarises the profiles. */
export async function profileMissed(ctx: RoundContext, missed: string[]): Promise<ProfileRun[]> {
  const { plan } = ctx;
  const m = ctx.messages.sized[0];
  const want = (...ids: string[]) => ids.some((id) => missed.includes(id));
  const runs: { id: string; name: string; roles: ('start' | 'smtp')[]; spamd: boolean; body: (b: Bench, p: Phase) => Promise<Cell> }[] = [];
  if (want('accept', 'accept-p99')) {
    runs.push({
      id: 'accept',
      name: 'accept, 2 KB × 50 sessions (mailmoat smtp)',
      roles: ['smtp'],
      spamd: true,
      body: (b, p) => acceptCell(b, p, m, 50, plan.counts.accept['2 KB'], 0, plan.capMs.accept),
    });
  }
  if (want('full')) {
    runs.push({
      id: 'full',
      name: 'full path without spamd, 2 KB × 50 sessions (mailmoat start)',
      roles: ['start'],
      spamd: false,
      body: (b, p) => fullCell(b, p, 'full', m, 50, plan.counts.full['2 KB'], 0, plan.capMs.full),
    });
  }
  if (want('full-spamd')) {
    runs.push({
      id: 'full-spamd',
      name: 'full path with spamd, 2 KB × 50 sessions (mailmoat start)',
      roles: ['start'],
      spamd: true,
      body: (b, p) => fullCell(b, p, 'full-spamd', m, 50, plan.counts.spamd['2 KB'], 0, plan.capMs.spamd),
    });
  }
  const out: ProfileRun[] = [];
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  pruneOldProfiles(join(REPO_ROOT, 'var/bench/profiles'), 12);
  for (const r of runs) {
    const dir = join(REPO_ROOT, 'var/bench/profiles', `${r.id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const b: Bench = { ...ctx.bench, cpuProfDir: dir };
    let cell: Cell | undefined;
    let window = { fromUs: 0, toUs: 0 };
    let p: Phase | undefined;
    try {
      p = await startPhase(b, `profile-${r.id}`, { roles: r.roles, spamd: r.spamd });
      await warmUp(p, m, plan.warmUp, r.roles.includes('start'));
      const fromUs = nowUs();
      cell = await r.body(b, p);
      window = { fromUs, toUs: nowUs() };
    } catch (err) {
      ctx.data.phaseErrors.push(`profile ${r.id}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await p?.stop(); // the profile is written as the process exits
    }
    if (!cell) continue;
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
    const main = cell.usage.groups.mailmoat?.mainThreads[0];
    out.push({
      id: r.id,
      name: r.name,
      dir,
      rate: cell.rate,
      elapsedMs: cell.elapsedMs,
      mainThread: main ? { onCpuMs: main.onCpuMs, waitingForCpuMs: main.waitingForCpuMs } : null,
      summaries: files.map((f) => summarizeProfile(join(dir, f), window)),
    });
    ctx.bench.log(`profiled ${r.name}: ${cell.rate} msg/s under the profiler; ${files.length} profile(s) in ${dir}`);
  }
  return out;
}

/** The largest (by RSS) memory report of each phase and role, written by memory-report.ts at exit. */
export function readMemoryReports(dir: string): MemoryReport[] {
  const best = new Map<string, MemoryReport>();
  for (const phaseName of existsSync(dir) ? readdirSync(dir) : []) {
    if (phaseName.startsWith('profile-')) continue; // under the profiler: not representative
    for (const f of readdirSync(join(dir, phaseName)).filter((n) => n.endsWith('.json'))) {
      try {
        const r = JSON.parse(readFileSync(join(dir, phaseName, f), 'utf8')) as Omit<MemoryReport, 'phase'>;
        const key = `${phaseName}/${r.role}`;
        if ((best.get(key)?.peak.rss ?? -1) < r.peak.rss) best.set(key, { phase: phaseName, ...r });
      } catch {
        // a process killed before it could write: no report
      }
    }
  }
  return [...best.values()];
}

/** Keeps the newest `keep` profile folders (names start with an id and sort by time after it). */
function pruneOldProfiles(dir: string, keep: number): void {
  if (!existsSync(dir)) return;
  const byAge = readdirSync(dir)
    .map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of byAge.slice(keep)) rmSync(join(dir, old.name), { recursive: true, force: true });
}
