// Rehearsal of recent reports (issue 19, scanners/learner/replay.ts): TONE passes over a bounded
// buffer, on a small slice of the SpamAssassin corpus.
import { describe, expect, it } from 'vitest';
import { loadCorpus, shuffled } from '../../bench/lib/corpus.ts';
import { featuresOf } from '../../scanners/learner/features.ts';
import { emptyModel, learnStep, marginOf, type Model } from '../../scanners/learner/model.ts';
import {
  MAX_REPLAYS,
  REPLAY_MARGIN,
  replaysAllowed,
  REPLAY_EXAMPLES,
  deserializeReplay,
  learnAndRehearse,
  rehearse,
  remember,
  serializeReplay,
  type Example,
} from '../../scanners/learner/replay.ts';

const slice = shuffled(loadCorpus(['spam-1', 'easy-ham-1'], 60), 7);
const train = slice.slice(0, 80);
const test = slice.slice(80);
const solo = (m: Model) => [{ model: m, share: 1 }];
const ex = (i: number, x = train[i], weight = 1): Omit<Example, 'replays'> => ({ key: `k${i}`, label: x.spam ? 1 : 0, weight, features: featuresOf(x.raw) });
/** Mean log-loss on messages it never saw (lower: surer and right more often). */
const testLoss = (m: Model) => test.reduce((s, x) => s + Math.log1p(Math.exp(-(x.spam ? 1 : -1) * marginOf([m], featuresOf(x.raw)))), 0) / test.length;

describe('rehearsal (TONE over a bounded buffer)', () => {
  it('learns more from the same few reports at a user’s weight than one step each, and every rehearsed report ends outside the margin or at its repeat bound', () => {
    const once = emptyModel();
    const rehearsed = emptyModel();
    let buffer: Example[] = [];
    for (let i = 0; i < 40; i++) {
      learnStep([once], solo(once), ex(i, train[i], 0.25).features, ex(i).label, 0.25);
      buffer = learnAndRehearse(buffer, [rehearsed], solo(rehearsed), ex(i, train[i], 0.25));
    }
    expect(testLoss(rehearsed)).toBeLessThan(testLoss(once) * 0.8);
    expect(rehearsed.trained).toBe(40); // repeats are not counted as messages learned
    for (const e of buffer)
      expect(
        e.replays >= replaysAllowed(e.weight) ||
          (e.label ? marginOf([rehearsed], e.features) >= REPLAY_MARGIN * e.weight : marginOf([rehearsed], e.features) <= -REPLAY_MARGIN * e.weight),
      ).toBe(true);
  });

  it('learns only on error: a buffer already outside the margin takes no step', () => {
    const m = emptyModel();
    let buffer: Example[] = [];
    for (let i = 0; i < 20; i++) buffer = learnAndRehearse(buffer, [m], solo(m), ex(i));
    rehearse(buffer, [m], solo(m)); // settle whatever the last event left
    const weights = m.weights.slice();
    const settled = buffer.filter((e) => e.replays < replaysAllowed(e.weight));
    expect(rehearse(settled, [m], solo(m))).toBe(0);
    expect(m.weights).toEqual(weights);
  });

  it('an example is repeated at most MAX_REPLAYS × its weight times however often the buffer is rehearsed (a bound on one report)', () => {
    const m = emptyModel();
    // The same text as spam and as ham: neither can ever leave the margin.
    const f = featuresOf(train[0].raw);
    const buffer: Example[] = [
      { key: 'a', label: 1, weight: 0.25, replays: 0, features: f },
      { key: 'a', label: 0, weight: 1, replays: 0, features: f },
    ];
    for (let i = 0; i < 10; i++) rehearse(buffer, [m], solo(m));
    expect(buffer.map((e) => e.replays)).toEqual([MAX_REPLAYS / 4, MAX_REPLAYS]);
    expect(rehearse(buffer, [m], solo(m))).toBe(0);
  });

  it('keeps at most REPLAY_EXAMPLES, the newest; a second report of a message adds weight (at most 1) instead of a copy', () => {
    let buffer: Example[] = [];
    const f = Uint32Array.of(5, 1, 3);
    for (let i = 0; i < REPLAY_EXAMPLES + 10; i++) buffer = remember(buffer, { key: `m${i}`, label: 1, weight: 0.25, replays: 0, features: f });
    expect(buffer.length).toBe(REPLAY_EXAMPLES);
    expect(buffer[0].key).toBe('m10');
    expect([...buffer[0].features]).toEqual([1, 3, 5]);
    buffer = remember(buffer, { key: 'm10', label: 1, weight: 0.75, replays: 0, features: f });
    buffer = remember(buffer, { key: 'm10', label: 1, weight: 0.75, replays: 0, features: f });
    expect(buffer.length).toBe(REPLAY_EXAMPLES);
    expect(buffer.at(-1)).toMatchObject({ key: 'm10', weight: 1 });
    // The other class of the same message is an example of its own.
    expect(remember(buffer, { key: 'm10', label: 0, weight: 0.25, replays: 0, features: f }).at(-1)).toMatchObject({ key: 'm10', label: 0 });
  });

  it('stores a buffer and reads it back exactly; refuses what is not one', () => {
    let buffer: Example[] = [];
    for (let i = 0; i < 5; i++) buffer = remember(buffer, { ...ex(i, train[i], 0.25), replays: i });
    const back = deserializeReplay(serializeReplay(buffer));
    expect(back).toEqual(buffer);
    expect(deserializeReplay(serializeReplay([]))).toEqual([]);
    expect(() => deserializeReplay(Buffer.from('hello world, not a buffer'))).toThrow(/not a mailmoat learner replay buffer/);
    expect(() => deserializeReplay(serializeReplay(buffer).subarray(0, 200))).toThrow();
  });
});
