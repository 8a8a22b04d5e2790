// The learned filter as the gateway runs it (issue 19), on SQLite and PostgreSQL: learn events move
// the score, a domain's reports stay mostly its own, rollback, the poisoning guards, several nodes.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCorpus, shuffled } from '../../../bench/lib/corpus.ts';
import { createLearner, GLOBAL_MODEL, LEARNER_HEAD_BYTES, learnerFeatures, replayRow, withoutOwnHeaders } from '../../../gateway/learner/learner.ts';
import { deserializeReplay, REPLAY_EXAMPLES } from '../../../scanners/learner/replay.ts';
import { openLearnerStore } from '../../../gateway/store/learner-store.ts';
import type { Sql } from '../../../gateway/store/sql.ts';
import type { LearnerScan } from '../../../scanners/types.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const corpus = shuffled(loadCorpus(['spam-1', 'easy-ham-1'], 50), 3);
const train = corpus.slice(0, 40);
const flipped = corpus.slice(40, 70).filter((m) => !m.spam);
const spamOut = corpus.slice(70).filter((m) => m.spam);
const hamOut = corpus.slice(70).filter((m) => !m.spam);
const odds = (s: LearnerScan | undefined) => (s?.status === 'scored' ? s.logOdds : NaN);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.each(DIALECTS)('learner on %s', (dialect) => {
  let db: { sql: Sql; close(): Promise<void> };
  beforeEach(async () => {
    db = await openTestSql(dialect);
  });
  afterEach(() => db.close());

  async function meanOdds(learner: ReturnType<typeof createLearner>, msgs: typeof corpus, domain: string) {
    const out: number[] = [];
    for (const m of msgs) out.push(odds((await learner.score(m.raw, [domain])).get(domain)));
    return mean(out);
  }

  it('an administrator’s learning moves the score of unseen mail; a rollback puts the old model back', async () => {
    const learner = createLearner(openLearnerStore(db.sql));
    expect(await meanOdds(learner, spamOut, 'a.test')).toBe(0);
    const empty = await learner.snapshot(GLOBAL_MODEL, 'admin', 'before training');
    for (const m of train) await learner.teach(m.raw, { as: m.spam ? 'spam' : 'ham', reporter: 'admin', domain: null, trusted: true });
    const spam = await meanOdds(learner, spamOut, 'a.test');
    const ham = await meanOdds(learner, hamOut, 'a.test');
    expect(spam).toBeGreaterThan(1);
    expect(ham).toBeLessThan(-1);
    const [scan] = (await learner.score(spamOut[0].raw, ['a.test'])).values();
    expect(scan).toMatchObject({ status: 'scored', trained: 40, models: ['*'] });

    const msg = await learner.rollback(empty, 'admin');
    expect(msg).toMatch(/model global rolled back to snapshot \d+ .*the state before is snapshot \d+/);
    expect(await meanOdds(learner, spamOut, 'a.test')).toBe(0);
    const list = await learner.snapshots(10);
    expect(list.map((s) => s.note)).toEqual([`before rollback to snapshot ${empty}`, 'before training']);
    // …and the rollback can itself be undone.
    await learner.rollback(list[0].id, 'admin');
    expect(await meanOdds(learner, spamOut, 'a.test')).toBeCloseTo(spam, 3);
  });

  it('a domain’s reports move its own model, and the global one only by a bounded share', async () => {
    const learner = createLearner(openLearnerStore(db.sql));
    for (const [i, m] of train.slice(0, 24).entries()) {
      // Two distinct users report each message: full weight (the quorum).
      for (const who of ['u1', 'u2'])
        await learner.teach(m.raw, { as: m.spam ? 'spam' : 'ham', reporter: `${who}-${i % 3}@a.test`, domain: 'a.test', trusted: false });
    }
    const own = await meanOdds(learner, spamOut, 'a.test');
    const other = await meanOdds(learner, spamOut, 'b.test');
    expect(own).toBeGreaterThan(1);
    expect(other).toBeGreaterThan(0);
    expect(other).toBeLessThan(own * 0.3);
  });

  it('a domain’s reports are rehearsed from a bounded buffer of its own; a rollback empties it, so what was undone is not learned again', async () => {
    const store = openLearnerStore(db.sql);
    const learner = createLearner(store);
    const before = await learner.snapshot('a.test', 'admin', 'empty');
    for (const [i, m] of train.entries())
      await learner.teach(m.raw, { as: m.spam ? 'spam' : 'ham', reporter: `u${i % 10}@a.test`, domain: 'a.test', trusted: false });
    const buffer = deserializeReplay((await store.load(replayRow('a.test')))!.data);
    expect(buffer.length).toBe(Math.min(train.length, REPLAY_EXAMPLES));
    expect(buffer.every((e) => e.weight === 0.25)).toBe(true);
    expect(buffer.some((e) => e.replays > 0)).toBe(true);
    expect(await store.load(replayRow(GLOBAL_MODEL))).toBeUndefined(); // the global model takes its share, no buffer of its own
    const [scan] = (await learner.score(spamOut[0].raw, ['a.test'])).values();
    expect(scan).toMatchObject({ trained: 2 * train.length }); // repeats are not counted as messages

    await learner.rollback(before, 'admin');
    expect(deserializeReplay((await store.load(replayRow('a.test')))!.data)).toEqual([]);
    // One more report after the rollback rehearses only itself.
    await learner.teach(spamOut[1].raw, { as: 'spam', reporter: 'late@a.test', domain: 'a.test', trusted: false });
    expect(deserializeReplay((await store.load(replayRow('a.test')))!.data).map((e) => e.weight)).toEqual([0.25]);
  });

  it('one reporter flipping ham to spam moves other ham less than it could: its weight is a quarter, repeats count once, its rate is capped', async () => {
    const guarded = createLearner(openLearnerStore(db.sql));
    for (const m of train) await guarded.teach(m.raw, { as: m.spam ? 'spam' : 'ham', reporter: 'admin', domain: null, trusted: true });
    const before = await meanOdds(guarded, hamOut, 'a.test');
    let learned = 0;
    for (const m of flipped) {
      if ((await guarded.teach(m.raw, { as: 'spam', reporter: 'mallory@a.test', domain: 'a.test', trusted: false })).weight > 0) learned++;
      expect((await guarded.teach(m.raw, { as: 'spam', reporter: 'mallory@a.test', domain: 'a.test', trusted: false })).weight).toBe(0);
    }
    expect(learned).toBe(Math.min(flipped.length, 15)); // 2 events per message, 30 an hour
    const rise = (await meanOdds(guarded, hamOut, 'a.test')) - before;

    // The same attack on another domain without the guards (full weight, no cap).
    const unguarded = createLearner(openLearnerStore(db.sql), { guards: { perReporterPerHour: 1e9, userWeight: 1, quorum: 1, globalShare: 0.2 } });
    for (const m of flipped) await unguarded.teach(m.raw, { as: 'spam', reporter: 'mallory2@c.test', domain: 'c.test', trusted: false });
    const unguardedRise = (await meanOdds(unguarded, hamOut, 'c.test')) - before;
    expect(rise).toBeGreaterThanOrEqual(0);
    expect(rise).toBeLessThan(unguardedRise * 0.75);
  });

  it('a message an administrator taught as spam scores at scan time (its first LEARNER_HEAD_BYTES, as analyse.ts passes them) as the learn event left it, even with a long upstream X-Spam-Status first', async () => {
    const learner = createLearner(openLearnerStore(db.sql));
    const upstream = `X-Spam-Status: No, score=-2.1 required=5.0 tests=${Array.from({ length: 60 }, (_, i) => `RULE_NUMBER_${i}`).join(',\r\n\t')}\r\n`;
    const raw = Buffer.concat([Buffer.from(upstream), spamOut[0].raw, Buffer.alloc(80_000, 'spam text ')]);
    await learner.teach(raw, { as: 'spam', reporter: 'admin', domain: null, trusted: true });
    const whole = odds((await learner.score(raw, ['a.test'])).get('a.test'));
    const scanned = odds((await learner.score(raw.subarray(0, LEARNER_HEAD_BYTES), ['a.test'])).get('a.test'));
    expect(whole).toBeGreaterThan(4);
    expect(scanned).toBe(whole);
  });

  it('two nodes: what one learns the other scores with, and concurrent learning loses no step', async () => {
    const a = createLearner(openLearnerStore(db.sql));
    const b = createLearner(openLearnerStore(db.sql));
    await b.score(spamOut[0].raw, ['a.test']); // b caches the (empty) state
    await Promise.all(
      train.slice(0, 20).map((m, i) => (i % 2 ? a : b).teach(m.raw, { as: m.spam ? 'spam' : 'ham', reporter: 'admin', domain: null, trusted: true })),
    );
    const [fromA] = (await a.score(spamOut[0].raw, ['a.test'])).values();
    const [fromB] = (await b.score(spamOut[0].raw, ['a.test'])).values();
    expect(fromA).toMatchObject({ trained: 20 });
    expect(fromB).toEqual(fromA);
  });
});

describe('withoutOwnHeaders', () => {
  it('drops our verdict headers (folded lines too) from a reported copy, and nothing else', () => {
    const stamped = Buffer.from(
      'Received: from x\r\nX-Mailmoat-Status: clean; virus=clean;\r\n spam score=1.0\r\nX-Spam-Flag: NO\r\nSubject: win\r\n\r\nX-Spam-Flag: in the body stays\r\n',
    );
    expect(withoutOwnHeaders(stamped).toString()).toBe('Received: from x\r\nSubject: win\r\n\r\nX-Spam-Flag: in the body stays\r\n');
    const plain = Buffer.from('Subject: hi\n\nbody\n');
    expect(withoutOwnHeaders(plain)).toBe(plain);
  });
});

describe('scan-time and learn-time features', () => {
  it('are identical for the same message: the scan path’s head (LEARNER_HEAD_BYTES, as analyse.ts reads it) and the whole message a report carries', () => {
    // An upstream SpamAssassin's X-Spam-Status can run to a kilobyte; it comes first, and it is dropped before learning.
    const upstream = `X-Spam-Status: No, score=-2.1 required=5.0 tests=${Array.from({ length: 60 }, (_, i) => `RULE_NUMBER_${i}`).join(',\r\n\t')}\r\n`;
    const messages = [
      ...corpus.slice(0, 20).map((m) => m.raw),
      ...corpus.slice(0, 5).map((m) => Buffer.concat([Buffer.from(upstream), m.raw, Buffer.alloc(80_000, 'spam text ')])),
    ];
    for (const raw of messages) {
      const scanned = learnerFeatures(raw.subarray(0, LEARNER_HEAD_BYTES));
      const learned = learnerFeatures(raw);
      expect([...scanned].sort()).toEqual([...learned].sort());
      expect(learned.length).toBeGreaterThan(500);
    }
  });
});
