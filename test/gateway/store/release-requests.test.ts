// The ReleaseRequestStore contract on both adapters (node:sqlite and PostgreSQL): one pending
// request per message, whichever connection asks; an answer is a compare-and-set, so of two admins
// (processes, machines) only one approves; admins read their domains' requests, users their own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReleaseRequestStore, type ReleaseRequestStore } from '../../../gateway/store/release-requests.ts';
import { openSql, type Sql } from '../../../gateway/store/sql.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 11, 4, 10, 0, 0);

describe.each(DIALECTS)('ReleaseRequestStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let sql2: Sql;
  let store: ReleaseRequestStore;
  let store2: ReleaseRequestStore;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    sql2 = await openSql(db.target);
    store = openReleaseRequestStore(db.sql, () => clock);
    store2 = openReleaseRequestStore(sql2, () => clock);
  });
  afterAll(async () => {
    await sql2.close();
    await db.close();
  });

  it('keeps one pending request per message, from any connection', async () => {
    const first = await store.create({ messageId: 'm-1', requester: 'alice', recipient: 'Alice@A.Test', note: 'my invoice' });
    expect(first.ok).toBe(true);
    expect(await store2.create({ messageId: 'm-1', requester: 'alice', recipient: 'alice@a.test', note: 'again' })).toEqual({ ok: false, reason: 'exists' });
    const r = await store2.get((first as { id: number }).id);
    expect(r).toMatchObject({
      messageId: 'm-1',
      requester: 'alice',
      recipient: 'alice@a.test',
      domain: 'a.test',
      note: 'my invoice',
      status: 'pending',
      createdAt: T0,
      decidedAt: null,
    });
  });

  it('answers once: of two admins deciding at the same moment, one wins', async () => {
    const c = await store.create({ messageId: 'm-2', requester: 'carol', recipient: 'carol@a.test', note: '' });
    const id = (c as { id: number }).id;
    clock = T0 + 5000;
    const both = await Promise.all([store.decide(id, 'approved', 'admina', ''), store2.decide(id, 'denied', 'admina2', 'no')]);
    expect(both.filter(Boolean)).toHaveLength(1);
    const r = (await store.get(id))!;
    expect(r.status).toBe(both[0] ? 'approved' : 'denied');
    expect(r.decidedAt).toBe(T0 + 5000);
    expect(await store.decide(id, 'denied', 'x', '')).toBe(false);
    // a decided request no longer blocks a new one
    expect((await store.create({ messageId: 'm-2', requester: 'carol', recipient: 'carol@a.test', note: 'please' })).ok).toBe(true);
  });

  it('reopens an approved request whose release failed', async () => {
    const c = await store.create({ messageId: 'm-3', requester: 'dave', recipient: 'dave@b.test', note: '' });
    const id = (c as { id: number }).id;
    expect(await store.decide(id, 'approved', 'adminb', '')).toBe(true);
    await store.reopen(id);
    expect((await store.get(id))!).toMatchObject({ status: 'pending', decidedBy: null });
  });

  it('lists and counts by domain for admins and by address for users', async () => {
    expect(await store.countPending({ domains: ['a.test'], addresses: [] })).toBe(2);
    expect(await store.countPending({ domains: ['b.test'], addresses: [] })).toBe(1);
    expect(await store.countPending({ all: true })).toBe(3);
    expect(await store.countPending({ domains: [], addresses: [] })).toBe(0);
    const mine = await store.list({ domains: [], addresses: ['carol@a.test'] }, { limit: 10 });
    expect(mine.map((r) => r.status)).toEqual(['pending', expect.stringMatching(/approved|denied/)]);
    expect((await store.list({ domains: ['a.test'], addresses: [] }, { status: 'pending', limit: 10 })).map((r) => r.messageId).sort()).toEqual(['m-1', 'm-2']);
    expect((await store.forMessage('m-2')).length).toBe(2);
  });
});
