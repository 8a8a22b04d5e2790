// The AuditStore contract on both adapters (node:sqlite and PostgreSQL): append-only rows read
// back newest first, with filters, paging, a total, and long fields clipped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditStore, type AuditStore } from '../../../gateway/store/audit.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

describe.each(DIALECTS)('AuditStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: AuditStore;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    store = openAuditStore(db.sql, () => clock);
  });
  afterAll(() => db.close());

  const entry = (o: Partial<Parameters<AuditStore['record']>[0]> = {}) => ({
    actor: 'alice',
    action: 'view',
    messageId: null,
    target: null,
    ip: '192.0.2.1',
    outcome: 'ok' as const,
    detail: '',
    ...o,
  });

  it('records entries and lists them newest first, whole, with a total', async () => {
    clock = T0 + 7;
    await store.record(entry({ actor: 'first', action: 'login', detail: 'password' }));
    await store.record(entry({ actor: 'first', action: 'release', messageId: 'm-1', target: 'bob@b.test', outcome: 'denied', at: T0 - 100 }));
    await store.record(entry({ actor: '-', action: 'login', ip: '2001:db8::1', outcome: 'failed', detail: 'bad password' }));
    const { rows, total } = await store.list({ limit: 10 });
    expect(total).toBe(3);
    expect(rows).toEqual([
      {
        seq: expect.any(Number),
        at: T0 + 7,
        actor: '-',
        action: 'login',
        messageId: null,
        target: null,
        ip: '2001:db8::1',
        outcome: 'failed',
        detail: 'bad password',
      },
      {
        seq: expect.any(Number),
        at: T0 - 100,
        actor: 'first',
        action: 'release',
        messageId: 'm-1',
        target: 'bob@b.test',
        ip: '192.0.2.1',
        outcome: 'denied',
        detail: '',
      },
      {
        seq: expect.any(Number),
        at: T0 + 7,
        actor: 'first',
        action: 'login',
        messageId: null,
        target: null,
        ip: '192.0.2.1',
        outcome: 'ok',
        detail: 'password',
      },
    ]);
    expect(rows[0]!.seq).toBeGreaterThan(rows[1]!.seq);
    expect(rows[1]!.seq).toBeGreaterThan(rows[2]!.seq);
  });

  it('filters by actor, action and message id, together', async () => {
    for (let i = 0; i < 4; i++) await store.record(entry({ actor: 'filt', action: i % 2 ? 'download' : 'preview', messageId: i < 2 ? 'mf-1' : 'mf-2' }));
    await store.record(entry({ actor: 'other', action: 'download', messageId: 'mf-1' }));
    expect((await store.list({ actor: 'filt', limit: 100 })).total).toBe(4);
    expect((await store.list({ actor: 'FILT', limit: 100 })).total).toBe(0); // exact
    expect((await store.list({ action: 'download', limit: 100 })).total).toBe(3);
    const m1 = await store.list({ messageId: 'mf-1', limit: 100 });
    expect(m1.total).toBe(3);
    expect(m1.rows.every((r) => r.messageId === 'mf-1')).toBe(true);
    const both = await store.list({ actor: 'filt', action: 'download', messageId: 'mf-1', limit: 100 });
    expect(both.total).toBe(1);
    expect(both.rows).toEqual([expect.objectContaining({ actor: 'filt', action: 'download', messageId: 'mf-1' })]);
    expect(await store.list({ actor: 'nobody', limit: 10 })).toEqual({ rows: [], total: 0 });
  });

  it('pages with limit and offset; the total is of all matching rows', async () => {
    for (let i = 0; i < 7; i++) await store.record(entry({ actor: 'pager', detail: `n${i}` }));
    const p1 = await store.list({ actor: 'pager', limit: 3 });
    const p2 = await store.list({ actor: 'pager', limit: 3, offset: 3 });
    const p3 = await store.list({ actor: 'pager', limit: 3, offset: 6 });
    expect([p1.total, p2.total, p3.total]).toEqual([7, 7, 7]);
    expect([...p1.rows, ...p2.rows, ...p3.rows].map((r) => r.detail)).toEqual(['n6', 'n5', 'n4', 'n3', 'n2', 'n1', 'n0']);
    expect((await store.list({ actor: 'pager', limit: 3, offset: 10 })).rows).toEqual([]);
    expect((await store.list({ actor: 'pager', limit: 0 })).rows).toEqual([]);
  });

  it('clips long fields', async () => {
    await store.record(entry({ actor: 'c'.repeat(300), messageId: 'm'.repeat(150), target: 't'.repeat(600), detail: 'd'.repeat(3000), action: 'clip' }));
    const [r] = (await store.list({ action: 'clip', limit: 1 })).rows;
    expect(r!.actor).toBe(`${'c'.repeat(200)}…`);
    expect(r!.messageId).toBe(`${'m'.repeat(100)}…`);
    expect(r!.target).toBe(`${'t'.repeat(500)}…`);
    expect(r!.detail).toBe(`${'d'.repeat(2000)}…`);
    // text at the limit is kept whole, and any text is stored as given
    await store.record(entry({ actor: 'c'.repeat(200), detail: "it's \\ 100% _ ünïcode ✓", action: 'clip2' }));
    const [r2] = (await store.list({ action: 'clip2', limit: 1 })).rows;
    expect(r2!.actor).toBe('c'.repeat(200));
    expect(r2!.detail).toBe("it's \\ 100% _ ünïcode ✓");
  });
});
