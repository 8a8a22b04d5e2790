// Online logistic regression over the hashed features of features.ts (Goodman & Yih 2006;
// Cormack's TREC 2007 runs): p(spam) = σ(Σ w[slot]), one gradient step per learned message. A
// message is judged by the SUM of the global model and its recipient domain's model, so a domain's
// model learns only where that domain differs from everyone (a hierarchical, "residual" model).
// Fixed size: one Float32Array of MODEL_DIM weights per model, whatever it learns. Pure.
import { deflateSync, inflateSync } from 'node:zlib';
import { MODEL_DIM, MODEL_BITS } from './features.ts';

export interface Model {
  weights: Float32Array;
  /** How many messages it learned from (weighted events count as one): the confidence ramp uses it. */
  trained: number;
}

export const emptyModel = (): Model => ({ weights: new Float32Array(MODEL_DIM), trained: 0 });

/** Step size per learned message, for binary features (tuned on spam-1, easy-ham-1 and hard-ham-1 only; bench/detect.ts reports on the other groups). */
export const LEARNING_RATE = 0.01;

/**
 * One learn event at full weight moves the message's own log-odds by at most this much (tuned like LEARNING_RATE) (a fraction
 * of it at a lower weight): with thousands of binary features a plain step would move it by ~25,
 * and a single report could then flip everything that shares its headers.
 */
export const MAX_SELF_MOVE = 8;

/** Weights are kept in this range: one message, however often learned, cannot make a 4-gram decisive alone. */
const WEIGHT_BOUND = 2;

/** The margin (log-odds of spam) of the features under the sum of the models. */
export function marginOf(models: readonly Model[], features: Uint32Array): number {
  let m = 0;
  for (const model of models) {
    const w = model.weights;
    for (let i = 0; i < features.length; i++) m += w[features[i]];
  }
  return m;
}

export const sigmoid = (m: number): number => 1 / (1 + Math.exp(-m));

export interface Step {
  /** The model and the share of the step it takes (the global model takes a bounded share of a domain's report). */
  model: Model;
  share: number;
}

/**
 * One online step of logistic regression for `label` (1 spam, 0 ham) with `weight` in [0, 1] (the
 * guards' weight for this event): each model moves by rate·weight·share·(label − p) on the
 * message's features, p taken under the sum of all the models it is judged by. A rehearsal
 * (replay.ts) passes `counts` false: `trained` counts distinct messages, not steps.
 */
export function learnStep(
  judgedBy: readonly Model[],
  steps: readonly Step[],
  features: Uint32Array,
  label: 0 | 1,
  weight: number,
  rate = LEARNING_RATE,
  counts = true,
): { before: number } {
  const before = sigmoid(marginOf(judgedBy, features));
  const totalShare = steps.reduce((a, s) => a + Math.max(0, s.share), 0) * judgedBy.length;
  const raw = rate * weight * (label - before);
  const cap = (MAX_SELF_MOVE * weight) / Math.max(1, features.length * Math.max(1e-9, totalShare));
  const g = Math.max(-cap, Math.min(cap, raw));
  for (const { model, share } of steps) {
    if (share <= 0 || weight <= 0) continue;
    const w = model.weights;
    const d = g * share;
    for (let i = 0; i < features.length; i++) {
      const s = features[i];
      const v = w[s] + d;
      w[s] = v > WEIGHT_BOUND ? WEIGHT_BOUND : v < -WEIGHT_BOUND ? -WEIGHT_BOUND : v;
    }
    if (counts) model.trained += 1;
  }
  return { before };
}

const MAGIC = 0x4d4d4c31; // "MML1"

/** A model as stored: a 12-byte header (magic, bits, trained) and the deflated weights (mostly zeros for a domain's model). */
export function serializeModel(m: Model): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt32BE(MODEL_BITS, 4);
  head.writeUInt32BE(Math.min(m.trained, 0xffffffff), 8);
  return Buffer.concat([head, deflateSync(Buffer.from(m.weights.buffer, m.weights.byteOffset, m.weights.byteLength), { level: 1 })]);
}

/** The stored form back; a model of another size or format is refused (never silently misread). */
export function deserializeModel(b: Uint8Array): Model {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 12 || buf.readUInt32BE(0) !== MAGIC) throw new Error('not a mailmoat learner model');
  const bits = buf.readUInt32BE(4);
  if (bits !== MODEL_BITS) throw new Error(`learner model has 2^${bits} slots, this version uses 2^${MODEL_BITS}`);
  const raw = inflateSync(buf.subarray(12), { maxOutputLength: MODEL_DIM * 4 });
  if (raw.length !== MODEL_DIM * 4) throw new Error('learner model is truncated');
  const weights = new Float32Array(MODEL_DIM);
  new Uint8Array(weights.buffer).set(raw);
  return { weights, trained: buf.readUInt32BE(8) };
}
