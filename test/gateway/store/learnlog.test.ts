// The LearnLog contract on both adapters (node:sqlite and PostgreSQL): records read back newest
// first, per actor, and `learnedBefore` answers only for a message actually learned as that class.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLearnLog, type LearnLog, type LearnRecord } from '../../../gateway/store/learnlog.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const SHA = (c: string) => c.repeat(64);

describe.each(DIALECTS)('LearnLog on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let log: LearnLog;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    log = openLearnLog(db.sql, () => clock++);
  });
  afterAll(() => db.close());

  const rec = (o: Partial<Omit<LearnRecord, 'at'>> = {}): Omit<LearnRecord, 'at'> => ({
    actor: 'alice',
    source: 'console',
    messageId: null,
    name: null,
    sha256: SHA('0'),
    size: 1234,
    class: 'spam',
    outcome: 'learned',
    detail: '',
    ...o,
  });

  it('records and reads back newest first, whole', async () => {
    clock = T0;
    await log.record(rec({ actor: 'whole', messageId: 'm-1', sha256: SHA('a'), size: 5_000_000_000, detail: 'Learned tokens from 1 message(s)' }));
    await log.record(rec({ actor: 'whole', source: 'upload', name: 'spam.eml', sha256: SHA('b'), class: 'ham', outcome: 'refused', detail: 'not a message' }));
    expect(await log.recent({ actor: 'whole', limit: 10 })).toEqual([
      {
        at: T0 + 1,
        actor: 'whole',
        source: 'upload',
        messageId: null,
        name: 'spam.eml',
        sha256: SHA('b'),
        size: 1234,
        class: 'ham',
        outcome: 'refused',
        detail: 'not a message',
      },
      {
        at: T0,
        actor: 'whole',
        source: 'console',
        messageId: 'm-1',
        name: null,
        sha256: SHA('a'),
        size: 5_000_000_000,
        class: 'spam',
        outcome: 'learned',
        detail: 'Learned tokens from 1 message(s)',
      },
    ]);
  });

  it('clips the file name and the detail', async () => {
    await log.record(rec({ actor: 'clip', name: 'n'.repeat(300), detail: 'd'.repeat(1500) }));
    const [r] = await log.recent({ actor: 'clip', limit: 1 });
    expect(r!.name).toBe('n'.repeat(255));
    expect(r!.detail).toBe('d'.repeat(1000));
  });

  it('learnedBefore: only a message learned as that class', async () => {
    await log.record(rec({ actor: 'lb', sha256: SHA('c'), class: 'spam', outcome: 'learned' }));
    await log.record(rec({ actor: 'lb', sha256: SHA('d'), class: 'spam', outcome: 'already-learned' }));
    await log.record(rec({ actor: 'lb', sha256: SHA('d'), class: 'ham', outcome: 'failed' }));
    await log.record(rec({ actor: 'lb', sha256: SHA('e'), class: 'ham', outcome: 'refused' }));
    expect(await log.learnedBefore(SHA('c'), 'spam')).toBe(true);
    expect(await log.learnedBefore(SHA('c'), 'ham')).toBe(false);
    expect(await log.learnedBefore(SHA('d'), 'spam')).toBe(false);
    expect(await log.learnedBefore(SHA('d'), 'ham')).toBe(false);
    expect(await log.learnedBefore(SHA('e'), 'ham')).toBe(false);
    expect(await log.learnedBefore(SHA('f'), 'spam')).toBe(false);
    await log.record(rec({ actor: 'lb2', sha256: SHA('c'), class: 'spam', outcome: 'learned' }));
    expect(await log.learnedBefore(SHA('c'), 'spam')).toBe(true);
    await log.record(rec({ actor: 'lb2', sha256: SHA('e'), class: 'ham', outcome: 'learned' }));
    expect(await log.learnedBefore(SHA('e'), 'ham')).toBe(true);
  });

  it('recent: per actor or everyone, newest first, limited', async () => {
    for (let i = 0; i < 5; i++) await log.record(rec({ actor: 'many', detail: `n${i}` }));
    await log.record(rec({ actor: 'last', detail: 'last' }));
    expect((await log.recent({ actor: 'many', limit: 3 })).map((r) => r.detail)).toEqual(['n4', 'n3', 'n2']);
    expect((await log.recent({ actor: 'many', limit: 100 })).map((r) => r.detail)).toEqual(['n4', 'n3', 'n2', 'n1', 'n0']);
    expect(await log.recent({ actor: 'nobody', limit: 10 })).toEqual([]);
    const all = await log.recent({ limit: 2 });
    expect(all.map((r) => `${r.actor}:${r.detail}`)).toEqual(['last:last', 'many:n4']);
    const everything = await log.recent({ limit: 1000 });
    expect(everything).toHaveLength(15); // every record of this file
    expect(everything.map((r) => r.at)).toEqual([...everything.map((r) => r.at)].sort((a, b) => b - a));
  });
});
