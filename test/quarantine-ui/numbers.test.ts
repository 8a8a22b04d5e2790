// Numbers over time and the queue page on real stores (SQLite, and the counters' UPSERT-add on
// PostgreSQL too): 1/7/30-day windows over seeded counter rows, the roll-up to days keeping every
// count, two counters (two nodes) adding to the same rows, and tenant isolation: a domain admin of
// a.test sees only a.test, and b.test's numbers and queue actions are a 404 with an audit entry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startHarness, type Harness } from './harness.ts';
import { DAY_MS, HOUR_MS, openStatsStore, type StatRow } from '../../gateway/store/stats.ts';
import { openStatsCounter } from '../../gateway/stats.ts';
import { openSql } from '../../gateway/store/sql.ts';
import { migrate } from '../../gateway/store/migrations.ts';
import { createTestDatabase } from '../support/databases.ts';

/** The big number of one kind on the Numbers page. */
const shown = (html: string, kind: string) => Number(new RegExp(`data-kind="${kind}">(\\d+)<`).exec(html)?.[1]);

describe.each(['sqlite', 'postgres'] as const)('numbers page on %s', (dialect) => {
  let h: Harness;
  const now = Date.now();
  const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
  const row = (domain: string, ago: number, kind: StatRow['kind'], n: number): StatRow => ({ domain, hour: hour - ago, kind, n });

  beforeAll(async () => {
    h = await startHarness({ database: dialect });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admin-a', 'domainadmin', { domains: ['a.test'] });
    await openStatsStore(h.sql).add([
      row('a.test', 0, 'received', 3),
      row('a.test', 2 * HOUR_MS, 'refused', 2),
      row('a.test', 3 * DAY_MS, 'received', 10),
      row('a.test', 20 * DAY_MS, 'spam', 7),
      row('a.test', 40 * DAY_MS, 'received', 100), // outside every window
      row('b.test', 0, 'received', 5),
      row('b.test', 5 * DAY_MS, 'virus', 1),
      row('', 0, 'refused', 4), // before RCPT: no hosted domain
    ]);
  });
  afterAll(() => h.close());

  it('sums 1, 7 and 30 days for every domain, per domain, and by domain', async () => {
    const root = new Client(h.app);
    await root.login('root');
    const day = (await root.get('/stats?range=1d')).body;
    expect([shown(day, 'received'), shown(day, 'refused'), shown(day, 'spam')]).toEqual([8, 6, 0]);
    const week = (await root.get('/stats?range=7d')).body;
    expect([shown(week, 'received'), shown(week, 'virus'), shown(week, 'spam')]).toEqual([18, 1, 0]);
    const month = await root.get('/stats?range=30d');
    expect([shown(month.body, 'received'), shown(month.body, 'spam'), shown(month.body, 'virus')]).toEqual([18, 7, 1]);
    expect(month.body).toMatch(/<tr data-domain="a.test">.*?>13<\/td>/s);
    expect(month.body).toContain('(no hosted recipient)');
    const aOnly = (await root.get('/stats?range=7d&domain=a.test')).body;
    expect([shown(aOnly, 'received'), shown(aOnly, 'refused')]).toEqual([13, 2]);
  });

  it('shows a domain admin only their domains; b.test is a 404, audited', async () => {
    const admin = new Client(h.app);
    await admin.login('admin-a');
    const page = await admin.get('/stats?range=30d');
    expect(page.statusCode).toBe(200);
    expect([shown(page.body, 'received'), shown(page.body, 'refused'), shown(page.body, 'virus')]).toEqual([13, 2, 0]);
    expect(page.body).not.toContain('b.test');
    const other = await admin.get('/stats?range=30d&domain=b.test');
    expect(other.statusCode).toBe(404);
    expect((await h.audit.list({ action: 'stats-view', limit: 1 })).rows[0]).toMatchObject({ actor: 'admin-a', target: 'b.test', outcome: 'denied' });
    expect((await admin.get('/stats?domain=')).statusCode).toBe(404);
  });

  it('lets an admin turn the daily summary mail off and on again (CSRF, audited)', async () => {
    const admin = new Client(h.app);
    await admin.login('admin-a');
    const id = (await h.accounts.byName('admin-a'))!.id;
    expect((await admin.get('/stats')).body).toContain('data-summary="on"');
    expect((await admin.post('/stats/daily-summary', { on: '0' }, { csrf: false })).statusCode).toBe(403);
    expect((await h.deps.stats!.summaryOptOuts()).has(id)).toBe(false);
    expect((await admin.post('/stats/daily-summary', { on: '0' }, { csrfFrom: '/stats' })).statusCode).toBe(303);
    expect((await h.deps.stats!.summaryOptOuts()).has(id)).toBe(true);
    expect((await admin.get('/stats')).body).toContain('data-summary="off"');
    await admin.post('/stats/daily-summary', { on: '1' }, { csrfFrom: '/stats' });
    expect((await h.deps.stats!.summaryOptOuts()).has(id)).toBe(false);
    expect((await h.audit.list({ action: 'daily-summary', limit: 2 })).rows.map((r) => r.detail)).toEqual(['on', 'off']);
  });

  it('keeps a domain admin out of another domain’s queue actions (404, audited)', async () => {
    const id = await h.addMessage({ rcpt: ['bob@b.test'], status: 'delivered' });
    await h.store.transition(id, ['delivered'], 'deferred');
    const admin = new Client(h.app);
    await admin.login('admin-a');
    const queue = await admin.get('/queue');
    expect(queue.statusCode).toBe(200);
    expect(queue.body).not.toContain(id);
    expect((await admin.post(`/queue/${id}/retry`, {}, { csrf: false })).statusCode).toBe(403);
    const retry = await admin.post(`/queue/${id}/retry`, {}, { csrfFrom: '/queue' });
    expect(retry.statusCode).toBe(404);
    expect((await h.audit.list({ action: 'queue-retry', limit: 1 })).rows[0]).toMatchObject({ actor: 'admin-a', messageId: id, outcome: 'denied' });
    const flush = await admin.post('/queue/flush', { domain: 'b.test' }, { csrfFrom: '/queue' });
    expect(flush.statusCode).toBe(404);
    const flushAll = await admin.post('/queue/flush', {}, { csrfFrom: '/queue' });
    expect(flushAll.statusCode).toBe(404);
    expect((await h.audit.list({ action: 'queue-flush', limit: 2 })).rows.map((r) => [r.target, r.outcome])).toEqual([
      ['*', 'denied'],
      ['b.test', 'denied'],
    ]);
    const root = new Client(h.app);
    await root.login('root');
    expect((await root.get('/queue')).body).toContain(id);
  });
});

describe.each(['sqlite', 'postgres'] as const)('counters on %s', (dialect) => {
  it('two counters (two nodes) add to the same rows, and the roll-up to days keeps every count', async () => {
    const database = await createTestDatabase(dialect);
    const sql = await openSql(database.target);
    try {
      await migrate(sql);
      const store = openStatsStore(sql);
      const hosted = () => ({ 'a.test': {} });
      const nodes = [openStatsCounter({ store, hostedDomains: hosted, flushMs: 60_000 }), openStatsCounter({ store, hostedDomains: hosted, flushMs: 60_000 })];
      for (const node of nodes) {
        for (let i = 0; i < 3; i++) node.count('received', ['x@a.test', 'y@A.test']);
        node.count('refused', ['z@elsewhere.test']);
      }
      await Promise.all(nodes.map((n) => n.close()));
      const now = Date.now();
      const all = await store.series({ all: true }, { since: 0, until: now + HOUR_MS, bucketMs: DAY_MS });
      expect(all.map((r) => [r.domain, r.kind, Number(r.n)]).sort()).toEqual([
        ['', 'refused', 2],
        ['a.test', 'received', 6],
      ]);
      // Old hourly rows are rolled up into their day; older than 400 days they go.
      const tenDaysAgo = Math.floor((now - 10 * DAY_MS) / DAY_MS) * DAY_MS;
      await store.add([0, 1, 5, 23].map((h) => ({ domain: 'a.test', hour: tenDaysAgo + h * HOUR_MS, kind: 'spam' as const, n: h + 1 })));
      await store.add([{ domain: 'a.test', hour: now - 500 * DAY_MS, kind: 'spam', n: 9 }]);
      const before = await store.series({ domains: ['a.test'] }, { since: tenDaysAgo, until: tenDaysAgo + DAY_MS, bucketMs: DAY_MS });
      expect(await store.compact(now)).toEqual({ rolledUp: 4, purged: 1 }); // the 500-day-old row is rolled up, then purged;
      const after = await store.series({ domains: ['a.test'] }, { since: tenDaysAgo, until: tenDaysAgo + DAY_MS, bucketMs: HOUR_MS });
      expect(after).toEqual([{ domain: 'a.test', hour: tenDaysAgo, kind: 'spam', n: 1 + 2 + 6 + 24 }]);
      expect(Number(before[0]!.n)).toBe(33);
      expect(await store.compact(now)).toEqual({ rolledUp: 0, purged: 0 });
      // A write that fails keeps its counts for the next flush: none is lost, none counted twice.
      let failures = 1;
      const flaky = { ...store, add: (rows: StatRow[]) => (failures-- > 0 ? Promise.reject(new Error('database away')) : store.add(rows)) };
      const node = openStatsCounter({ store: flaky, hostedDomains: hosted, flushMs: 60_000 });
      node.count('failed', ['x@a.test']);
      await node.flush();
      node.count('failed', ['x@a.test']);
      await node.close();
      const failed = await store.series({ domains: ['a.test'] }, { since: 0, until: now + HOUR_MS, bucketMs: DAY_MS });
      expect(failed.filter((r) => r.kind === 'failed').map((r) => Number(r.n))).toEqual([2]);
    } finally {
      await sql.close();
      await database.drop();
    }
  });
});
