// Rehearsal of recent reports (issue 19): a single online pass over a few hundred reports, each
// learned once when the model knew little, leaves most of what they teach unlearned. Sculley &
// Wachman's "train until no mistake" (TONE) fixes that: the last REPLAY_EXAMPLES learned messages of
// a model are kept (as hashed feature slots, not text) and, after each learn event, every one of
// them still inside the margin is learned again, a few passes, until none is. The guards hold: each
// repeat takes the example's own guard weight and the same bounded self-move, the margin it is
// learned to is proportional to that weight, and an example is repeated at most MAX_REPLAYS·weight
// times, so one user's report (weight 0.25) moves its message by at most 5 steps of 2 log-odds in
// all, a confirmed one by at most 17 steps of 8. Pure.
import { MODEL_DIM } from './features.ts';
import { learnStep, marginOf, type Model, type Step } from './model.ts';

/** Learned messages kept per model: ~2,500–5,000 slots each (4-grams and word pairs), about 0.8–1.5 MiB stored (varint deltas), ~4 MiB while a learn event runs. */
export const REPLAY_EXAMPLES = 256;
/** Passes over the buffer per learn event (fewer when a pass finds nothing inside the margin). */
export const REPLAY_PASSES = 10;
/**
 * Repeats per example over its whole life in the buffer, times its weight (a user's report: 4; a
 * confirmed one: 16): a bound on one report's influence. 8 left a user's report under-learned (2
 * repeats: the tune split's loop TPR at FPR ≤ 0.5 % 95.6 % against 96.8 % with 16, bench/results/learner-tries.md);
 * the poisoning figure of bench/detect.ts is measured with 16.
 */
export const MAX_REPLAYS = 16;
/** How often an example of this weight may be repeated. */
export const replaysAllowed = (weight: number): number => Math.round(MAX_REPLAYS * weight);
/**
 * An example counts as learned once its log-odds are this far on its own side, times its weight
 * (the "thick threshold" of TONE): a user's report (0.25) is learned to 2, a confirmed one to 8,
 * so one user's report still counts a quarter of a confirmed one, however often it is rehearsed.
 */
export const REPLAY_MARGIN = 8;

export interface Example {
  /** The message's identity (a prefix of its SHA-256): a second report of it changes its weight, not the buffer's length. */
  key: string;
  label: 0 | 1;
  /** The guard weight learned so far for this message and class, in (0, 1]. */
  weight: number;
  replays: number;
  /** Sorted ascending (the stored form is their deltas). */
  features: Uint32Array;
}

/** The buffer with `ex` learned: an earlier entry of the same message and class takes the added weight; the oldest drop out beyond REPLAY_EXAMPLES. */
export function remember(buffer: Example[], ex: Example, limit = REPLAY_EXAMPLES): Example[] {
  if (!isSorted(ex.features)) ex = { ...ex, features: Uint32Array.from(ex.features).sort() };
  const same = buffer.findIndex((e) => e.key === ex.key && e.label === ex.label);
  if (same !== -1) {
    const e = buffer[same];
    return [...buffer.slice(0, same), ...buffer.slice(same + 1), { ...e, weight: Math.min(1, e.weight + ex.weight) }].slice(-limit);
  }
  return [...buffer, ex].slice(-limit);
}

/** Inside the margin: not yet learned well enough (TONE's "mistake", with a thick threshold). */
export const insideMargin = (margin: number, label: 0 | 1, weight: number, thick = REPLAY_MARGIN): boolean =>
  label === 1 ? margin < thick * weight : margin > -thick * weight;

/** The rehearsal's settings (the constants above; bench/learner-tries.ts compares others). */
export interface RehearsalOptions {
  examples: number;
  passes: number;
  maxReplays: number;
  margin: number;
}
export const DEFAULT_REHEARSAL: RehearsalOptions = { examples: REPLAY_EXAMPLES, passes: REPLAY_PASSES, maxReplays: MAX_REPLAYS, margin: REPLAY_MARGIN };

/**
 * TONE passes over the buffer: each example still inside the margin under `judgedBy` is learned
 * again with its own weight (each taking `steps`), until a pass finds none or REPLAY_PASSES are
 * done; an example repeated replaysAllowed times is left as it is. Returns how many steps it took.
 */
export function rehearse(buffer: Example[], judgedBy: readonly Model[], steps: readonly Step[], o: RehearsalOptions = DEFAULT_REHEARSAL): number {
  let taken = 0;
  for (let pass = 0; pass < o.passes; pass++) {
    let found = 0;
    for (const ex of buffer) {
      if (ex.replays >= Math.round(o.maxReplays * ex.weight) || !insideMargin(marginOf(judgedBy, ex.features), ex.label, ex.weight, o.margin)) continue;
      learnStep(judgedBy, steps, ex.features, ex.label, ex.weight, undefined, false);
      ex.replays++;
      found++;
    }
    taken += found;
    if (found === 0) break;
  }
  return taken;
}

/**
 * One learn event as the learner runs it: one step on the message (as model.ts learnStep), then
 * the message joins the buffer and the buffer is rehearsed. Returns the buffer to keep.
 */
export function learnAndRehearse(
  buffer: Example[],
  judgedBy: readonly Model[],
  steps: readonly Step[],
  ex: Omit<Example, 'replays'>,
  o: RehearsalOptions = DEFAULT_REHEARSAL,
): Example[] {
  learnStep(judgedBy, steps, ex.features, ex.label, ex.weight);
  const kept = remember(buffer, { ...ex, replays: 0 }, o.examples);
  rehearse(kept, judgedBy, steps, o);
  return kept;
}

const MAGIC = 0x4d4d5231; // "MMR1"

/** The stored form: per example its key, label, weight, repeats and its slots as varint deltas (not deflated: they would shrink by a few per cent for the cost of a deflate on every learn event). */
export function serializeReplay(buffer: readonly Example[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8);
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt32BE(buffer.length, 4);
  parts.push(head);
  for (const e of buffer) {
    const key = Buffer.from(e.key, 'latin1').subarray(0, 255);
    const fixed = Buffer.alloc(1 + key.length + 1 + 4 + 1 + 4);
    let o = fixed.writeUInt8(key.length, 0);
    o += key.copy(fixed, o);
    o = fixed.writeUInt8(e.label, o);
    o = fixed.writeFloatBE(e.weight, o);
    o = fixed.writeUInt8(Math.min(255, e.replays), o);
    fixed.writeUInt32BE(e.features.length, o);
    parts.push(fixed, varintDeltas(e.features));
  }
  return Buffer.concat(parts);
}

/** The stored form back; anything else is refused (never silently misread). */
export function deserializeReplay(stored: Uint8Array): Example[] {
  const b = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  if (b.length < 8 || b.readUInt32BE(0) !== MAGIC) throw new Error('not a mailmoat learner replay buffer');
  const n = b.readUInt32BE(4);
  const out: Example[] = [];
  let o = 8;
  for (let i = 0; i < n; i++) {
    const keyLen = b.readUInt8(o++);
    const key = b.toString('latin1', o, o + keyLen);
    o += keyLen;
    const label = b.readUInt8(o++);
    const weight = b.readFloatBE(o);
    o += 4;
    const replays = b.readUInt8(o++);
    const count = b.readUInt32BE(o);
    o += 4;
    const features = new Uint32Array(count);
    let slot = 0;
    for (let k = 0; k < count; k++) {
      let delta = 0;
      for (let shift = 0; ; shift += 7) {
        const byte = b[o++];
        if (byte === undefined) throw new Error('learner replay buffer is truncated');
        delta |= (byte & 0x7f) << shift;
        if (byte < 0x80) break;
      }
      slot += delta;
      if (slot >= MODEL_DIM) throw new Error('learner replay buffer names a slot beyond the model');
      features[k] = slot;
    }
    if (label !== 0 && label !== 1) throw new Error('learner replay buffer has a bad label');
    out.push({ key, label, weight, replays, features });
  }
  return out;
}

function isSorted(a: Uint32Array): boolean {
  for (let i = 1; i < a.length; i++) if (a[i] < a[i - 1]) return false;
  return true;
}

function varintDeltas(sorted: Uint32Array): Buffer {
  const out = Buffer.alloc(sorted.length * 3);
  let o = 0;
  let prev = 0;
  for (const s of sorted) {
    let d = s - prev;
    prev = s;
    while (d >= 0x80) {
      out[o++] = (d & 0x7f) | 0x80;
      d >>>= 7;
    }
    out[o++] = d;
  }
  return out.subarray(0, o);
}
