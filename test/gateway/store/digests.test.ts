// The DigestStore contract on both adapters (node:sqlite and PostgreSQL): a link token works
// once and only before it expires, a day's digest run is claimed once, a message is claimed for
// one recipient's listing once, and all stay compare-and-sets when several callers (processes,
// machines) race for them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDigestStore, type DigestStore } from '../../../gateway/store/digests.ts';
import { openSql, type Sql } from '../../../gateway/store/sql.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const DAY = 24 * 3_600_000;

describe.each(DIALECTS)('DigestStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  /** A second connection to the same database, as another process or machine would have. */
  let sql2: Sql;
  let store: DigestStore;
  let store2: DigestStore;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    sql2 = await openSql(db.target);
    store = openDigestStore(db.sql, () => clock);
    store2 = openDigestStore(sql2, () => clock);
  });
  afterAll(async () => {
    await sql2.close();
    await db.close();
  });

  it('adds a token and reads it back, recipient in lower case', async () => {
    clock = T0 + 3;
    await store.addToken({ id: 'tok-1', messageId: 'm-1', recipient: 'Alice@A.Test', expiresAt: T0 + DAY });
    expect(await store.getToken('tok-1')).toEqual({
      id: 'tok-1',
      action: 'release',
      messageId: 'm-1',
      recipient: 'alice@a.test',
      createdAt: T0 + 3,
      expiresAt: T0 + DAY,
      usedAt: null,
    });
    expect(await store2.getToken('tok-1')).toEqual(await store.getToken('tok-1'));
    expect(await store.getToken('nope')).toBeUndefined();
    await expect(store.addToken({ id: 'tok-1', messageId: 'm-2', recipient: 'x@a.test', expiresAt: T0 + DAY })).rejects.toThrow();
  });

  it('a token is used once', async () => {
    clock = T0;
    await store.addToken({ id: 'once', messageId: 'm-1', recipient: 'alice@a.test', expiresAt: T0 + DAY });
    clock = T0 + 1000;
    expect(await store.useToken('once')).toBe(true);
    expect((await store.getToken('once'))?.usedAt).toBe(T0 + 1000);
    clock = T0 + 2000;
    expect(await store.useToken('once')).toBe(false);
    expect(await store2.useToken('once')).toBe(false);
    expect((await store.getToken('once'))?.usedAt).toBe(T0 + 1000);
    expect(await store.useToken('never-issued')).toBe(false);
  });

  it('an expired token cannot be used', async () => {
    clock = T0;
    await store.addToken({ id: 'exp', messageId: 'm-1', recipient: 'alice@a.test', expiresAt: T0 + 500 });
    clock = T0 + 500;
    expect(await store.useToken('exp')).toBe(false);
    expect((await store.getToken('exp'))?.usedAt).toBeNull();
    clock = T0 + 499;
    expect(await store.useToken('exp')).toBe(true);
  });

  it('of many concurrent uses of one token, from two connections, exactly one wins', async () => {
    clock = T0;
    for (const id of ['race-1', 'race-2', 'race-3']) await store.addToken({ id, messageId: 'm-race', recipient: 'alice@a.test', expiresAt: T0 + DAY });
    // two callers
    const pair = await Promise.all([store.useToken('race-1'), store2.useToken('race-1')]);
    expect(pair.filter(Boolean)).toHaveLength(1);
    // many callers on each connection
    for (const id of ['race-2', 'race-3']) {
      const wins = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? store : store2).useToken(id)));
      expect(wins.filter(Boolean)).toHaveLength(1);
    }
  });

  it('a day is claimed once', async () => {
    clock = T0;
    expect(await store.claimRun('2026-11-24')).toBe(true);
    expect(await store.claimRun('2026-11-24')).toBe(false);
    expect(await store2.claimRun('2026-11-24')).toBe(false);
    expect(await store.claimRun('2026-11-25')).toBe(true);
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? store : store2).claimRun('2026-11-26')));
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('alreadySent: the messages with a token for this recipient', async () => {
    clock = T0;
    await store.addToken({ id: 's-1', messageId: 'sent-1', recipient: 'bob@b.test', expiresAt: T0 + DAY });
    await store.addToken({ id: 's-2', messageId: 'sent-2', recipient: 'BOB@b.test', expiresAt: T0 - 1 }); // expired still counts
    await store.addToken({ id: 's-3', messageId: 'sent-2', recipient: 'bob@b.test', expiresAt: T0 + DAY }); // twice
    await store.addToken({ id: 's-4', messageId: 'sent-3', recipient: 'carol@b.test', expiresAt: T0 + DAY });
    await store.useToken('s-1'); // used still counts
    expect(await store.alreadySent('Bob@B.test', ['sent-1', 'sent-2', 'sent-3', 'unsent', 'sent-1'])).toEqual(new Set(['sent-1', 'sent-2']));
    expect(await store.alreadySent('carol@b.test', ['sent-1', 'sent-3'])).toEqual(new Set(['sent-3']));
    expect(await store.alreadySent('bob@b.test', [])).toEqual(new Set());
    expect(await store.alreadySent('nobody@b.test', ['sent-1'])).toEqual(new Set());
  });

  it('alreadySent takes a long list of ids', async () => {
    clock = T0;
    const ids = Array.from({ length: 1300 }, (_, i) => `long-${i}`);
    for (const i of [0, 499, 500, 999, 1000, 1299]) await store.addToken({ id: `lt-${i}`, messageId: ids[i]!, recipient: 'dan@d.test', expiresAt: T0 + DAY });
    expect(await store.alreadySent('dan@d.test', ids)).toEqual(new Set(['long-0', 'long-499', 'long-500', 'long-999', 'long-1000', 'long-1299']));
  });

  it('a token keeps its action', async () => {
    clock = T0;
    await store.addToken({ id: 'act-1', action: 'block', messageId: 'm-1', recipient: 'alice@a.test', expiresAt: T0 + DAY });
    await store.addToken({ id: 'act-2', action: 'login', messageId: '', recipient: 'alice@a.test', expiresAt: T0 + DAY });
    expect((await store2.getToken('act-1'))?.action).toBe('block');
    expect(await store2.getToken('act-2')).toMatchObject({ action: 'login', messageId: '' });
  });

  it('a message is claimed for one recipient once, even when two connections race; a claim given back can be taken again', async () => {
    clock = T0;
    const ids = ['c-1', 'c-2', 'c-3', 'c-4'];
    const [a, b] = await Promise.all([store.claimListing('Eve@E.test', ids), store2.claimListing('eve@e.test', [...ids].reverse())]);
    expect([...a, ...b].sort()).toEqual(ids);
    expect(await store.claimListing('eve@e.test', ids)).toEqual([]);
    expect(await store.claimListing('frank@e.test', ['c-1'])).toEqual(['c-1']); // another recipient: its own claim
    expect(await store.alreadySent('eve@e.test', ['c-1', 'c-9'])).toEqual(new Set(['c-1']));
    await store.releaseListing('eve@e.test', ['c-2']);
    expect(await store2.claimListing('eve@e.test', ids)).toEqual(['c-2']);
  });

  it('old notice-interval claims are pruned, day claims kept', async () => {
    clock = T0;
    expect(await store.claimRun('notice:1')).toBe(true);
    clock = T0 + DAY;
    expect(await store.claimRun('notice:2')).toBe(true);
    await store.pruneRuns('notice:', T0 + 1);
    expect(await store.claimRun('notice:1')).toBe(true);
    expect(await store.claimRun('notice:2')).toBe(false);
    expect(await store.claimRun('2026-11-24')).toBe(false);
  });
});
