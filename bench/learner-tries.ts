// `node bench/learner-tries.ts [--seeds 19,20,21,22,23] [--only a,b] [--replay]` (issue 19): the
// methods tried for the report loop's TPR at FPR ≤ 0.5 %, on the TUNE split only (spam-1 +
// easy-ham-1 + hard-ham-1), each against the current learner, with the learner's pure parts (no
// SQLite, no spamd): 400 spam + 400 ham learned at a user report's weight into a domain model and,
// with the guards' share, the global one (as bench/learner-features.ts), then the held-out 100
// spam + 250 ham. Means over the seeds; features CPU per message; with --replay also the
// TREC-style replay's (1-ROCA)% on the first seed; with --spamd FILE (bench/spamd-scores.ts) the
// fusion with spamd at several points per log-odds and bounds (bench/results/learner-tries.md).
import { parseArgs } from 'node:util';
import { featuresOf, gramsOf, learnerText, osbOf, distinctSlots } from '../scanners/learner/features.ts';
import { emptyModel, marginOf, type Model } from '../scanners/learner/model.ts';
import { DEFAULT_REHEARSAL, learnAndRehearse, type Example, type RehearsalOptions } from '../scanners/learner/replay.ts';
import { DEFAULT_LEARNER_GUARDS } from '../rules/learner.ts';
import { loadCorpus, rocArea, shuffled } from './lib/corpus.ts';
import { readFileSync } from 'node:fs';
import { learnerPoints, DEFAULT_LEARNER_FUSION } from '../rules/learner.ts';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '19,20,21,22,23' },
    only: { type: 'string', default: '' },
    replay: { type: 'boolean', default: false },
    weight: { type: 'string', default: String(DEFAULT_LEARNER_GUARDS.userWeight) },
    spamd: { type: 'string', default: '' },
  },
});
const SEEDS = values.seeds.split(',').map(Number);
const REPORTS = 400;
const WEIGHT = Number(values.weight);

/** Header-name namespaces: each header line's 4-grams hashed with a seed of its name (continuations keep it); the body its own. */
function headerNamespaced(raw: Buffer, drop: (name: string) => boolean = () => false): Uint32Array {
  const text = learnerText(raw);
  const segs: { bytes: Uint8Array; seed: number }[] = [];
  let i = 0;
  let seed = 0;
  while (i < text.length) {
    let e = text.indexOf(10, i);
    if (e === -1) e = text.length;
    if (e === i) {
      segs.push({ bytes: text.subarray(i), seed: 0x626f6479 });
      break;
    }
    const first = text[i];
    let line = text.subarray(i, e + 1);
    if (first !== 32 && first !== 9) {
      const colon = line.indexOf(58);
      const name = Buffer.from(line.subarray(0, colon === -1 ? 0 : colon))
        .toString('latin1')
        .toLowerCase();
      seed = 0;
      for (let k = 0; k < name.length; k++) seed = Math.imul(seed ^ name.charCodeAt(k), 0x01000193);
      seed = seed | 1;
      if (drop(name)) line = line.subarray(0, colon + 1);
      (segs as { bytes: Uint8Array; seed: number; drop?: boolean }[]).push({ bytes: line, seed, drop: drop(name) });
    } else {
      const last = segs[segs.length - 1] as { drop?: boolean } | undefined;
      if (!last?.drop) segs.push({ bytes: line, seed });
    }
    i = e + 1;
  }
  return gramsOf(segs);
}

/** The raw 4-grams but the values of the named headers left out. */
const dropping = (names: (n: string) => boolean) => (raw: Buffer) => {
  const text = learnerText(raw);
  const parts: Uint8Array[] = [];
  let i = 0;
  let dropNow = false;
  while (i < text.length) {
    let e = text.indexOf(10, i);
    if (e === -1) e = text.length;
    if (e === i) {
      parts.push(text.subarray(i));
      break;
    }
    const line = text.subarray(i, e + 1);
    if (line[0] !== 32 && line[0] !== 9) {
      const colon = line.indexOf(58);
      dropNow = names(
        Buffer.from(line.subarray(0, Math.max(0, colon)))
          .toString('latin1')
          .toLowerCase(),
      );
      parts.push(dropNow ? line.subarray(0, colon + 1) : line);
    } else if (!dropNow) parts.push(line);
    i = e + 1;
  }
  return gramsOf([{ bytes: Buffer.concat(parts), seed: 0 }]);
};

interface Variant {
  features: (raw: Buffer) => Uint32Array;
  rehearsal?: RehearsalOptions;
}
/** Before the tries: 4-grams only, a user's report repeated at most twice (MAX_REPLAYS 8). */
const R8: RehearsalOptions = { ...DEFAULT_REHEARSAL, maxReplays: 8 };
const ALL = { examples: 1000, passes: 20 };
const grams4 = (raw: Buffer) => gramsOf([{ bytes: learnerText(raw), seed: 0 }]);
const osb = (raw: Buffer) => osbOf(learnerText(raw));
const osb4g = (raw: Buffer) => distinctSlots([grams4(raw), osb(raw)]);
const hdrNsOsb = (raw: Buffer) => distinctSlots([headerNamespaced(raw), osb(raw)]);
const listOrReceived = (n: string) => n === 'received' || n.startsWith('list-');
// AdaGrad-style per-slot rates (a second Float32Array per model) were measured with the step of
// commit 6032bd0 (`git show 6032bd0:bench/learner-tries.ts`); not kept, see bench/results/learner-tries.md.
const VARIANTS: Record<string, Variant> = {
  base: { features: grams4, rehearsal: R8 },
  'osb+4g': { features: osb4g, rehearsal: R8 },
  osb: { features: osb, rehearsal: R8 },
  'rehearse-all': { features: grams4, rehearsal: { ...R8, examples: 1000 } },
  'rehearse-all-20p': { features: grams4, rehearsal: { ...R8, ...ALL } },
  'rehearse-all-x2': { features: grams4, rehearsal: { ...R8, ...ALL, maxReplays: 16 } },
  'replays-x2': { features: grams4, rehearsal: { ...R8, maxReplays: 16 } },
  'replays-x3': { features: grams4, rehearsal: { ...R8, ...ALL, maxReplays: 24 } },
  'hdr-ns': { features: headerNamespaced, rehearsal: R8 },
  'drop-rcvd-list': { features: dropping(listOrReceived), rehearsal: R8 },
  'hdr-ns+osb': { features: hdrNsOsb, rehearsal: R8 },
  'osb+rehearse-all-x2': { features: osb, rehearsal: { ...R8, ...ALL, maxReplays: 16 } },
  'osb+4g+rehearse-all-x2': { features: osb4g, rehearsal: { ...R8, ...ALL, maxReplays: 16 } },
  'hdr-ns+osb+rehearse-all-x2': { features: hdrNsOsb, rehearsal: { ...R8, ...ALL, maxReplays: 16 } },
  'hdr-ns+osb+replays-x2': { features: hdrNsOsb, rehearsal: { ...R8, maxReplays: 16 } },
  'osb+4g+replays-x2': { features: osb4g, rehearsal: { ...R8, maxReplays: 16 } },
  current: { features: featuresOf, rehearsal: DEFAULT_REHEARSAL },
};

/** spamd's scores of the tune split's held-out messages (bench/spamd-scores.ts), for the fusion rows. */
const SPAMD: Record<string, number> | null = values.spamd ? JSON.parse(readFileSync(values.spamd, 'utf8')) : null;
const pool0 = loadCorpus(['spam-1', 'easy-ham-1', 'hard-ham-1']);
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const newModel = (): Model => emptyModel();

console.log(`# learner tries — tune split, seeds ${SEEDS.join(',')}, reports at weight ${WEIGHT}`);
console.log(
  '| variant | loop TPR at FPR ≤ 0.5 % (mean; per seed) | loop TPR / FPR at p ≥ 0.5 (mean) | features ms/msg | learn ms/report |' +
    (values.replay ? ' replay (1-ROCA)% |' : ''),
);
console.log('|---|---|---|---|---|' + (values.replay ? '---|' : ''));
for (const [name, v] of Object.entries(VARIANTS)) {
  if (values.only && !values.only.split(',').includes(name)) continue;
  const opts: RehearsalOptions = v.rehearsal ?? DEFAULT_REHEARSAL;
  const tprs: number[] = [];
  const fusion = new Map<string, number[]>();
  const t0s: number[] = [];
  const f0s: number[] = [];
  let fcpu = 0;
  let fn = 0;
  let lcpu = 0;
  for (const seed of SEEDS) {
    const pool = shuffled(pool0, seed);
    const spamPool = pool.filter((m) => m.spam);
    const hamPool = pool.filter((m) => !m.spam);
    const heldSpam = spamPool.slice(-(spamPool.length - REPORTS));
    const heldHam = hamPool.slice(-250);
    const reports = shuffled([...spamPool.slice(0, REPORTS), ...hamPool.slice(0, REPORTS)], 5);
    const global = newModel();
    const domain = newModel();
    let rb: Example[] = [];
    const steps = [
      { model: domain, share: 1 },
      { model: global, share: DEFAULT_LEARNER_GUARDS.globalShare },
    ];
    for (const [i, x] of reports.entries()) {
      const f = v.features(x.raw);
      const c0 = process.cpuUsage();
      rb = learnAndRehearse(rb, [global, domain], steps, { key: String(i), label: x.spam ? 1 : 0, weight: WEIGHT, features: f }, opts);
      const c = process.cpuUsage(c0);
      lcpu += c.user + c.system;
    }
    const score = (x: { raw: Buffer }) => {
      const c0 = process.cpuUsage();
      const f = v.features(x.raw);
      const c = process.cpuUsage(c0);
      fcpu += c.user + c.system;
      fn++;
      return marginOf([global, domain], f);
    };
    const spamOdds = heldSpam.map(score);
    if (SPAMD) {
      const hamRaw = heldHam.map(score);
      const sd = (x: { group: string; name: string }) => SPAMD[`${x.group}/${x.name}`];
      const ways: Record<string, (spamd: number, logOdds: number) => number> = {
        'spamd alone': (s) => s,
        'learner alone': (_, l) => l,
      };
      for (const k of [2, 3, 4, 6])
        for (const max of [8, 12, 16, 24])
          ways[`spamd + ${k}·log-odds, ±${max}`] = (s, l) => s + learnerPoints(l, 1600, { ...DEFAULT_LEARNER_FUSION, pointsPerLogOdds: k, maxPoints: max });
      for (const [way, f] of Object.entries(ways)) {
        const sp = heldSpam.map((x, i) => f(sd(x), spamOdds[i]));
        const hm = heldHam.map((x, i) => f(sd(x), hamRaw[i])).sort((a, b) => b - a);
        const cut = hm[Math.floor(hm.length * 0.005)];
        fusion.set(way, [...(fusion.get(way) ?? []), sp.filter((x) => x > cut).length / sp.length]);
      }
    }
    const hamOdds = heldHam.map(score).sort((a, b) => b - a);
    const at = hamOdds[Math.floor(hamOdds.length * 0.005)] ?? -Infinity;
    tprs.push(spamOdds.filter((s) => s > at).length / spamOdds.length);
    t0s.push(spamOdds.filter((s) => s >= 0).length / spamOdds.length);
    f0s.push(hamOdds.filter((s) => s >= 0).length / hamOdds.length);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const [way, t] of fusion) console.log(`|   ${name}: ${way} | ${pct(mean(t))} (${t.map((x) => (100 * x).toFixed(0)).join(', ')}) | | | |`);
  let replayCol = '';
  if (values.replay) {
    const pool = shuffled(pool0, SEEDS[0]);
    const m = newModel();
    let buffer: Example[] = [];
    const scores: number[] = [];
    for (const [i, x] of pool.entries()) {
      const f = v.features(x.raw);
      scores.push(marginOf([m], f));
      buffer = learnAndRehearse(buffer, [m], [{ model: m, share: 1 }], { key: String(i), label: x.spam ? 1 : 0, weight: 1, features: f }, opts);
    }
    replayCol = ` ${(
      100 *
      (1 -
        rocArea(
          scores,
          pool.map((x) => x.spam),
        ))
    ).toFixed(3)} |`;
  }
  console.log(
    `| ${name} | ${pct(mean(tprs))} (${tprs.map((t) => (100 * t).toFixed(0)).join(', ')}) | ${pct(mean(t0s))} / ${pct(mean(f0s))} | ${(fcpu / 1000 / fn).toFixed(3)} | ${(lcpu / 1000 / (REPORTS * 2 * SEEDS.length)).toFixed(1)} |${replayCol}`,
  );
}
