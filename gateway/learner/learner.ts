// The learned filter as the gateway runs it (issue 19): models from the metadata database
// (gateway/store/learner-store.ts), scored on the scan path and taught on every learn event
// (reportspam@/notspam@, the console's buttons, a release, `mailmoat learn`), with the guards of
// rules/learner.ts. Models are cached per node and reloaded when their version changes, so every
// node scores with what any node learned. Memory: at most `cacheModels` models of 1 MiB each; a
// learn event also reads and writes its model's rehearsal buffer (scanners/learner/replay.ts: the
// last 256 reports as hashed slots, ~0.8–1.5 MiB stored), never read on the scan path.
import { createHash } from 'node:crypto';
import { featuresOf, strongestStretches } from '../../scanners/learner/features.ts';
import { deserializeModel, emptyModel, learnStep, marginOf, serializeModel, sigmoid, type Model } from '../../scanners/learner/model.ts';
import { deserializeReplay, learnAndRehearse, serializeReplay, type Example } from '../../scanners/learner/replay.ts';
import { DEFAULT_LEARNER_GUARDS, learnWeight, type LearnerGuards } from '../../rules/learner.ts';
import type { LearnerScan } from '../../scanners/types.ts';
import type { LearnerStore, SnapshotInfo } from '../store/learner-store.ts';
import { OWN_HEADER_PREFIXES } from '../pipeline/stamp.ts';

export const GLOBAL_MODEL = '*';
/** Where a model's rehearsal buffer (scanners/learner/replay.ts) is stored: a row of its own, read only when learning. */
export const replayRow = (model: string): string => `${model}#replay`;

/**
 * The message without our own verdict headers (X-Mailmoat-*, X-Spam-*): a user reporting a missed
 * spam forwards our delivered copy, stamped "X-Spam-Flag: NO"; learned as it is, the filter would
 * learn our own verdict instead of the message (SpamAssassin's Bayes ignores its headers likewise).
 */
export function withoutOwnHeaders(raw: Buffer): Buffer {
  const head = raw.subarray(0, 64 * 1024).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const block = end === -1 ? head : head.slice(0, end);
  if (!OWN_HEADER_RE.test(block)) return raw;
  const kept: string[] = [];
  let dropping = false;
  for (const line of block.split(/(?<=\n)/)) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = OWN_HEADER_PREFIXES.some((p) => line.toLowerCase().startsWith(p));
    if (!dropping) kept.push(line);
  }
  return Buffer.concat([Buffer.from(kept.join(''), 'latin1'), raw.subarray(Buffer.byteLength(block, 'latin1'))]);
}
/**
 * The bytes of a message the learner may read: the scan path (pipeline/analyse.ts) passes this
 * much of the message and every learn event cuts the whole message to it, so the two see the same
 * bytes. It covers withoutOwnHeaders's reach: with less, a message whose upstream X-Spam-* headers
 * come first would lose those lines' length from its scan-time head but not from its learn-time
 * copy, and be scored on features other than the ones it was learned by.
 */
export const LEARNER_HEAD_BYTES = 64 * 1024;

/** The learner's features of a message, the same on the scan path (given its first LEARNER_HEAD_BYTES) and on every learn event (given all of it). */
export const learnerInput = (raw: Buffer): Buffer => withoutOwnHeaders(raw.subarray(0, LEARNER_HEAD_BYTES));
export const learnerFeatures = (raw: Buffer): Uint32Array => featuresOf(learnerInput(raw));

const OWN_HEADER_RE = new RegExp(`^(${OWN_HEADER_PREFIXES.join('|')})`, 'im');
const THICK_MARGIN = 2;

export interface LearnerOptions {
  guards?: LearnerGuards;
  /** Models kept in memory on this node (1 MiB each); the least recently used is dropped. */
  cacheModels?: number;
  now?: () => number;
}

export interface TeachRequest {
  as: 'spam' | 'ham';
  /** Who taught it: an address, an account name, "cli". */
  reporter: string;
  /** The hosted domain the report is about; null: the global model only (an administrator, the CLI). */
  domain: string | null;
  /** An administrator (or the CLI): full weight at once. */
  trusted: boolean;
}

export interface TeachResult {
  weight: number;
  /** One sentence for the learn log and the acknowledgement. */
  detail: string;
}

export interface Learner {
  /** The verdict of the learner for each recipient domain (global model + that domain's). */
  score(raw: Buffer, domains: readonly string[]): Promise<Map<string, LearnerScan>>;
  teach(raw: Buffer, req: TeachRequest): Promise<TeachResult>;
  /** Many messages at once into one model (the CLI): one load and one save, full weight. */
  teachMany(items: AsyncIterable<{ raw: Buffer; as: 'spam' | 'ham' }>, domain: string | null, progress?: (n: number) => void): Promise<number>;
  snapshot(name: string, by: string, note: string): Promise<number>;
  snapshots(limit: number): Promise<SnapshotInfo[]>;
  /** Puts a snapshot's weights back as the model's current version (a snapshot of the current one is taken first). */
  rollback(id: number, by: string): Promise<string>;
}

export function createLearner(store: LearnerStore, o: LearnerOptions = {}): Learner {
  const guards = o.guards ?? DEFAULT_LEARNER_GUARDS;
  const now = o.now ?? Date.now;
  const cacheMax = Math.max(2, o.cacheModels ?? 32);
  const cache = new Map<string, { version: number; model: Model }>();

  /** The current models of these names (absent from the store: not in the map). */
  async function current(names: readonly string[]): Promise<Map<string, { version: number; model: Model }>> {
    const versions = await store.versions(names);
    const out = new Map<string, { version: number; model: Model }>();
    for (const [name, version] of versions) {
      let hit = cache.get(name);
      if (!hit || hit.version !== version) {
        const row = await store.load(name);
        if (!row) continue;
        hit = { version: row.version, model: deserializeModel(row.data) };
      }
      cache.delete(name);
      cache.set(name, hit);
      out.set(name, hit);
    }
    while (cache.size > cacheMax) cache.delete(cache.keys().next().value!);
    return out;
  }

  /**
   * Applies `change` to fresh copies of the named models and saves them; a model another node
   * wrote meanwhile is reloaded and changed again (one saved before the conflict keeps its step).
   */
  // This node's own updates run one at a time (they would only conflict with each other);
  // another node's write in between is caught by the version check and retried.
  // `replayOf` names the model whose rehearsal buffer the change reads and returns (saved with
  // the models, under the same version check).
  type Change = (models: Map<string, Model>, replay: Example[]) => Example[] | void;
  let queue: Promise<unknown> = Promise.resolve();
  function update(names: readonly string[], change: Change, replayOf?: string): Promise<void> {
    const run = queue.then(() => updateNow(names, change, replayOf));
    queue = run.catch(() => {});
    return run;
  }

  async function updateNow(names: readonly string[], change: Change, replayOf?: string): Promise<void> {
    const saved = new Set<string>();
    for (let attempt = 0; attempt < 20; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      const rows = new Map<string, { version: number | null; model: Model }>();
      for (const name of names) {
        const row = await store.load(name);
        rows.set(name, row ? { version: row.version, model: deserializeModel(row.data) } : { version: null, model: emptyModel() });
      }
      const replayRowName = replayOf === undefined ? undefined : replayRow(replayOf);
      const stored = replayRowName === undefined ? undefined : await store.load(replayRowName);
      const replay = change(new Map([...rows].map(([n, r]) => [n, r.model])), stored ? deserializeReplay(stored.data) : []);
      let clean = true;
      for (const [name, r] of rows) {
        if (saved.has(name)) continue;
        if (!(await store.save(name, r.version, serializeModel(r.model)))) {
          clean = false;
          continue;
        }
        saved.add(name);
        cache.set(name, { version: (r.version ?? 0) + 1, model: r.model });
      }
      if (replayRowName !== undefined && replay && !saved.has(replayRowName)) {
        if (await store.save(replayRowName, stored?.version ?? null, serializeReplay(replay))) saved.add(replayRowName);
        else clean = false;
      }
      if (clean) return;
    }
    throw new Error('the learner models kept changing under this update (20 attempts)');
  }

  return {
    async score(message, domains) {
      const raw = learnerInput(message);
      const features = featuresOf(raw);
      const models = await current([GLOBAL_MODEL, ...domains]);
      const out = new Map<string, LearnerScan>();
      for (const domain of domains) {
        const used = [GLOBAL_MODEL, domain].filter((n) => models.has(n));
        const ms = used.map((n) => models.get(n)!.model);
        const logOdds = marginOf(ms, features);
        const ws = ms.map((m) => m.weights);
        const weightOf = ws.length === 2 ? (slot: number) => ws[0][slot] + ws[1][slot] : (slot: number) => ws.reduce((s, w) => s + w[slot], 0);
        const signs = (side: 1 | -1) => (ms.length === 0 ? [] : strongestStretches(raw, weightOf, side).map((s) => s.text));
        out.set(domain, {
          status: 'scored',
          logOdds: Math.round(logOdds * 1000) / 1000,
          probability: sigmoid(logOdds),
          trained: ms.reduce((s, m) => s + m.trained, 0),
          models: used,
          spamSigns: logOdds > 0 ? signs(1) : [],
          hamSigns: logOdds < 0 ? signs(-1) : [],
        });
      }
      return out;
    },

    async teach(message, req) {
      const raw = withoutOwnHeaders(message);
      const sha256 = createHash('sha256').update(raw).digest('hex');
      const domain = req.domain ?? GLOBAL_MODEL;
      const [recent, earlier] = await Promise.all([store.eventsSince(req.reporter, now() - 3_600_000), store.reportsOf(sha256, req.as)]);
      const w = learnWeight({ reporter: req.reporter, trusted: req.trusted, recentByReporter: recent, earlier }, guards);
      await store.recordEvent({ reporter: req.reporter, domain, sha256, class: req.as, weight: w.weight });
      if (w.weight <= 0) return { weight: 0, detail: `learned filter: ${w.why}` };
      const features = learnerFeatures(message);
      const label = req.as === 'spam' ? 1 : 0;
      const names = domain === GLOBAL_MODEL ? [GLOBAL_MODEL] : [GLOBAL_MODEL, domain];
      await update(
        names,
        (models, replay) => {
          const judgedBy = [...models.values()];
          const steps =
            domain === GLOBAL_MODEL
              ? [{ model: models.get(GLOBAL_MODEL)!, share: 1 }]
              : [
                  { model: models.get(domain)!, share: 1 },
                  { model: models.get(GLOBAL_MODEL)!, share: guards.globalShare },
                ];
          // One step, then the model's recent reports, this one included, until each is learned (TONE).
          return learnAndRehearse(replay, judgedBy, steps, { key: sha256.slice(0, 16), label, weight: w.weight, features });
        },
        domain,
      );
      return { weight: w.weight, detail: `learned filter: learned as ${req.as}${domain === GLOBAL_MODEL ? '' : ` for ${domain}`}, ${w.why}` };
    },

    async teachMany(items, domain, progress) {
      const name = domain ?? GLOBAL_MODEL;
      const model = (await current([name])).get(name)?.model ?? emptyModel();
      const working: Model = { weights: model.weights.slice(), trained: model.trained };
      let n = 0;
      for await (const it of items) {
        // A folder of one class at a time: a message already judged right with a margin is not
        // learned again ("thick threshold"), or the grams every message shares (headers of one
        // server) would be driven to that class alone.
        const f = learnerFeatures(it.raw);
        const m = marginOf([working], f);
        if (it.as === 'spam' ? m < THICK_MARGIN : m > -THICK_MARGIN) learnStep([working], [{ model: working, share: 1 }], f, it.as === 'spam' ? 1 : 0, 1);
        n++;
        progress?.(n);
      }
      await update([name], (models) => {
        const m = models.get(name)!;
        m.weights.set(working.weights);
        m.trained = working.trained;
      });
      return n;
    },

    async snapshot(name, by, note) {
      const row = await store.load(name);
      return store.snapshot(name, by, note, row ? row.data : serializeModel(emptyModel()));
    },
    snapshots: (limit) => store.snapshots(limit),

    async rollback(id, by) {
      const snap = await store.snapshotData(id);
      if (!snap) throw new Error(`no learner snapshot ${id}`);
      const restored = deserializeModel(snap.data);
      const before = await this.snapshot(snap.name, by, `before rollback to snapshot ${id}`);
      // The rehearsal buffer is emptied: rehearsing it would learn again what was just undone.
      await update(
        [snap.name],
        (models) => {
          const m = models.get(snap.name)!;
          m.weights.set(restored.weights);
          m.trained = restored.trained;
          return [];
        },
        snap.name,
      );
      return `model ${snap.name === GLOBAL_MODEL ? 'global' : snap.name} rolled back to snapshot ${id} (${new Date(snap.at).toISOString()}); the state before is snapshot ${before}`;
    },
  };
}
