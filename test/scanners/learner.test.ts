// The learner core (issue 19) on a small slice of the SpamAssassin corpus: hashed 4-gram and word-pair features,
// online logistic regression, its stored form.
import { describe, expect, it } from 'vitest';
import { loadCorpus, rocArea, shuffled } from '../../bench/lib/corpus.ts';
import { MODEL_DIM, TEXT_BYTES, distinctSlots, featuresOf, gramsOf, learnerText, osbOf, strongestStretches } from '../../scanners/learner/features.ts';
import { deserializeModel, emptyModel, learnStep, marginOf, serializeModel } from '../../scanners/learner/model.ts';

const slice = shuffled(loadCorpus(['spam-1', 'easy-ham-1'], 150), 1);
const train = slice.slice(0, 200);
const test = slice.slice(200);

describe('learner core', () => {
  it('learning from 200 corpus messages separates 100 others it never saw', () => {
    const m = emptyModel();
    const auc = () =>
      rocArea(
        test.map((x) => marginOf([m], featuresOf(x.raw))),
        test.map((x) => x.spam),
      );
    expect(auc()).toBe(0.5); // an empty model says nothing
    for (const x of train) learnStep([m], [{ model: m, share: 1 }], featuresOf(x.raw), x.spam ? 1 : 0, 1);
    expect(auc()).toBeGreaterThan(0.97);
    expect(m.trained).toBe(200);
  });

  it('reads a bounded head of the message: the same features whatever follows, CRLF or LF', () => {
    const head = Buffer.from('Subject: hello\r\n\r\n' + 'x'.repeat(TEXT_BYTES));
    const longer = Buffer.concat([head, Buffer.alloc(1_000_000, 'y')]);
    expect([...featuresOf(longer)].sort()).toEqual([...featuresOf(head)].sort());
    expect([...featuresOf(Buffer.from('Subject: a b c\r\n\r\nbody\r\n'))].sort()).toEqual([...featuresOf(Buffer.from('Subject: a b c\n\nbody\n'))].sort());
    expect(featuresOf(Buffer.from('ab')).length).toBe(0);
    for (const f of featuresOf(train[0].raw)) expect(f).toBeLessThan(MODEL_DIM);
  });

  it('a message yields its byte 4-grams and its word pairs at distances 1 to 4 (OSB), whatever blanks separate the words', () => {
    const text = Buffer.from('one two three four five six');
    // 6 words: pairs at distance 1..4 from each = 4 + 4 + 3 + 2 + 1.
    expect(osbOf(text).length).toBe(14);
    // A sixth word pairs with the four before it, not with the first (distance 5).
    expect(osbOf(Buffer.from('a b c d e')).length).toBe(10);
    expect(osbOf(Buffer.from('a b c d e f')).length).toBe(14);
    expect(osbOf(Buffer.from('a f')).length).toBe(1);
    const pairs = new Set(osbOf(Buffer.from('a b c d e f')));
    expect(pairs.has(osbOf(Buffer.from('a f'))[0])).toBe(false);
    // Blanks are separators only; word order matters.
    expect(new Set(osbOf(Buffer.from('one\ttwo  three\nfour five six')))).toEqual(new Set(osbOf(text)));
    expect(new Set(osbOf(Buffer.from('two one three four five six')))).not.toEqual(new Set(osbOf(text)));
    // The message's features: both kinds over the same head, each slot once.
    const raw = Buffer.from('Subject: cheap meds\r\n\r\nbuy cheap meds online now\r\n');
    const both = new Set([...gramsOf([{ bytes: learnerText(raw), seed: 0 }]), ...osbOf(learnerText(raw))]);
    const f = featuresOf(raw);
    expect(new Set(f)).toEqual(both);
    expect(f.length).toBe(both.size);
  });

  // featuresOf builds its slots in scratch arrays (it runs on every scanned message): the same
  // slots in the same order as the plain composition of the two feature kinds.
  it('gives, in the same order, the slots of its 4-grams then its word pairs, over corpus messages and odd ones', () => {
    const odd = ['', 'ab', 'abcd', ' '.repeat(5000), 'a '.repeat(4000), 'x'.repeat(9000), '\r\n\r\n a\tb\x7fc\x00d e'].map((t) => Buffer.from(t, 'latin1'));
    for (const raw of [...slice.map((x) => x.raw), ...odd]) {
      const text = learnerText(raw);
      expect(featuresOf(raw)).toEqual(distinctSlots([gramsOf([{ bytes: text, seed: 0 }]), osbOf(text)]));
    }
  });

  it('stores a model and reads it back exactly; refuses what is not a model', () => {
    const m = emptyModel();
    for (const x of train.slice(0, 20)) learnStep([m], [{ model: m, share: 1 }], featuresOf(x.raw), x.spam ? 1 : 0, 1);
    const back = deserializeModel(serializeModel(m));
    expect(back.trained).toBe(20);
    expect(Buffer.from(back.weights.buffer).equals(Buffer.from(m.weights.buffer))).toBe(true);
    expect(() => deserializeModel(Buffer.from('hello world, not a model'))).toThrow(/not a mailmoat learner model/);
  });

  it('names the stretches of text that drove the score', () => {
    const m = emptyModel();
    const spam = Buffer.from('Subject: FREE VIAGRA now\n\nBuy cheap pills online\n');
    for (let i = 0; i < 20; i++) learnStep([m], [{ model: m, share: 1 }], featuresOf(spam), 1, 1);
    const signs = strongestStretches(Buffer.from('Subject: lunch\n\nFREE VIAGRA for you\n'), (s) => m.weights[s], 1);
    expect(signs[0].text).toContain('FREE VIAGRA');
  });
});
