// `node bench/learner-features.ts [--split tune|report] [--seed S]` (issue 19): which view of a
// message the learner should read, measured with the learner's own pure parts (no SQLite, no
// spamd, so a run takes a few minutes): the current one (featuresOf: hashed 4-grams of the first
// 3000 raw bytes) against decoded views (bench/lib/learner-view.ts). For each view:
//  - the TREC-style online replay of the whole split (gold feedback after each message): (1-ROCA)%;
//  - the report loop as bench/detect.ts drives it, without the store: 400 spam + 400 ham learned
//    at a user report's weight (0.25) into a domain model and, with the guards' bounded share,
//    the global one, with rehearsal; then the held-out split: TPR at p ≥ 0.5 and at the threshold
//    that keeps FPR ≤ 0.5 %;
//  - CPU to compute the features, per message.
// Tune on `--split tune` only; the report split is for the figures.
import { parseArgs } from 'node:util';
import { featuresOf, gramsOf, TEXT_BYTES, learnerText } from '../scanners/learner/features.ts';
import { emptyModel, marginOf } from '../scanners/learner/model.ts';
import { learnAndRehearse, type Example } from '../scanners/learner/replay.ts';
import { DEFAULT_LEARNER_GUARDS } from '../rules/learner.ts';
import { learnerView } from './lib/learner-view.ts';
import { loadCorpus, rocArea, shuffled, type CorpusGroup } from './lib/corpus.ts';

const { values } = parseArgs({
  options: {
    split: { type: 'string', default: 'tune' },
    seed: { type: 'string', default: '19' },
    reports: { type: 'string', default: '400' },
    heldout: { type: 'string', default: '250' },
  },
});
if (values.split !== 'report' && values.split !== 'tune') throw new Error('--split is report or tune');
const GROUPS: CorpusGroup[] = values.split === 'tune' ? ['spam-1', 'easy-ham-1', 'hard-ham-1'] : ['spam-2', 'easy-ham-2'];
const REPORTS = Number(values.reports);
const BODY_SEED = 0x626f6479;
const HEAD_SEED = 0x68656164;

const VIEWS: Record<string, (raw: Buffer) => Uint32Array> = {
  [`current: 4-grams and word pairs (OSB) of the first ${TEXT_BYTES} raw bytes`]: featuresOf,
  [`raw ${TEXT_BYTES} bytes + decoded body text (own namespace)`]: (raw) =>
    gramsOf([
      { bytes: learnerText(raw), seed: 0 },
      { bytes: learnerView(raw, 'selected').body, seed: BODY_SEED },
    ]),
  'selected headers + decoded body text': (raw) => {
    const v = learnerView(raw, 'selected');
    return gramsOf([
      { bytes: v.head, seed: HEAD_SEED },
      { bytes: v.body, seed: BODY_SEED },
    ]);
  },
  'all headers but Received/DKIM/Message-ID/Date + decoded body text': (raw) => {
    const v = learnerView(raw, 'all');
    return gramsOf([
      { bytes: v.head, seed: HEAD_SEED },
      { bytes: v.body, seed: BODY_SEED },
    ]);
  },
  [`raw header block (≤ ${TEXT_BYTES} bytes) + decoded body text`]: (raw) =>
    gramsOf([
      { bytes: rawHeaderBlock(raw), seed: HEAD_SEED },
      { bytes: learnerView(raw, 'selected').body, seed: BODY_SEED },
    ]),
};

/** The header block as received (line ends made LF), at most TEXT_BYTES. */
function rawHeaderBlock(raw: Buffer): Uint8Array {
  const text = learnerText(raw);
  const end = Buffer.from(text.buffer, text.byteOffset, text.byteLength).indexOf('\n\n');
  return end === -1 ? text : text.subarray(0, end + 1);
}

const pool = shuffled(loadCorpus(GROUPS), Number(values.seed));
const spamPool = pool.filter((m) => m.spam);
const hamPool = pool.filter((m) => !m.spam);
const heldSpam = spamPool.slice(-Math.min(Number(values.heldout), spamPool.length - REPORTS));
const heldHam = hamPool.slice(-Math.min(Number(values.heldout), hamPool.length - REPORTS));
const reports = shuffled([...spamPool.slice(0, REPORTS), ...hamPool.slice(0, REPORTS)], 5);
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

console.log(
  `# learner features — SpamAssassin corpus, ${values.split} split (${GROUPS.join(' + ')}): ${spamPool.length} spam, ${hamPool.length} ham, seed ${values.seed}`,
);
console.log(
  `report loop: ${REPORTS} + ${REPORTS} reports at weight ${DEFAULT_LEARNER_GUARDS.userWeight} (domain model + global share ${DEFAULT_LEARNER_GUARDS.globalShare}), held-out ${heldSpam.length} spam + ${heldHam.length} ham\n`,
);
console.log('| features | replay (1-ROCA)% | loop TPR / FPR at p ≥ 0.5 | loop TPR at FPR ≤ 0.5 % | features CPU ms/msg |\n|---|---|---|---|---|');
for (const [name, features] of Object.entries(VIEWS)) {
  // Replay.
  const m = emptyModel();
  let buffer: Example[] = [];
  const scores: number[] = [];
  let cpu = 0;
  for (const [i, x] of pool.entries()) {
    const t0 = process.cpuUsage();
    const f = features(x.raw);
    const t = process.cpuUsage(t0);
    cpu += t.user + t.system;
    scores.push(marginOf([m], f));
    buffer = learnAndRehearse(buffer, [m], [{ model: m, share: 1 }], { key: String(i), label: x.spam ? 1 : 0, weight: 1, features: f });
  }
  const roca = (
    100 *
    (1 -
      rocArea(
        scores,
        pool.map((x) => x.spam),
      ))
  ).toFixed(3);
  // Report loop.
  const global = emptyModel();
  const domain = emptyModel();
  let rb: Example[] = [];
  for (const [i, x] of reports.entries()) {
    rb = learnAndRehearse(
      rb,
      [global, domain],
      [
        { model: domain, share: 1 },
        { model: global, share: DEFAULT_LEARNER_GUARDS.globalShare },
      ],
      { key: String(i), label: x.spam ? 1 : 0, weight: DEFAULT_LEARNER_GUARDS.userWeight, features: features(x.raw) },
    );
  }
  const spamOdds = heldSpam.map((x) => marginOf([global, domain], features(x.raw)));
  const hamOdds = heldHam.map((x) => marginOf([global, domain], features(x.raw))).sort((a, b) => b - a);
  const at = hamOdds[Math.floor(hamOdds.length * 0.005)] ?? -Infinity;
  const tpr = (t: number, strict: boolean) => spamOdds.filter((s) => (strict ? s > t : s >= t)).length / spamOdds.length;
  const fpr0 = hamOdds.filter((s) => s >= 0).length / hamOdds.length;
  console.log(`| ${name} | ${roca} | ${pct(tpr(0, false))} / ${pct(fpr0)} | ${pct(tpr(at, true))} | ${(cpu / 1000 / pool.length).toFixed(3)} |`);
}
