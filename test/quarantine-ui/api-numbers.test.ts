// The API's numbers over time and queue (/api/v1/stats/history, /api/v1/queue…): the same numbers
// as the Numbers and Queue pages, the same tenant isolation (a.test's token gets 404 on b.test's
// message and domain, audited), and "retry" promoting a real delayed BullMQ job on the suite's
// Redis. Over the console harness on SQLite and PostgreSQL.
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { Queue } from 'bullmq';
import { flushDeferred, retryNow } from '../../gateway/delivery/queue-ops.ts';
import { openJobQueue, type JobQueue } from '../../gateway/store/queue.ts';
import { DAY_MS, HOUR_MS, openStatsStore, type StatRow } from '../../gateway/store/stats.ts';
import { Client, startHarness, type Harness } from './harness.ts';
import { DIALECTS } from '../support/databases.ts';

/** The big number of one kind on the Numbers page. */
const shown = (html: string, kind: string) => Number(new RegExp(`data-kind="${kind}">(\\d+)<`).exec(html)?.[1]);

describe.each(DIALECTS)('the API’s numbers and queue (%s)', (dialect) => {
  let h: Harness;
  let queue: JobQueue;
  let bull: Queue;
  const target = { socketPath: inject('services').redisSocket };
  const prefix = `apinum${process.pid}${dialect}`;
  // The console's clock is frozen for each test, so that an hour turning mid-test moves no window.
  let now = 0;
  let hour = 0;
  const row = (domain: string, ago: number, kind: StatRow['kind'], n: number): StatRow => ({ domain, hour: hour - ago, kind, n });

  beforeEach(async () => {
    now = Date.now();
    hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    queue = openJobQueue(target, { prefix, attempts: { scan: 3, deliver: 3 } });
    bull = new Queue('deliver', { connection: { path: target.socketPath }, prefix });
    await bull.obliterate({ force: true });
    h = await startHarness({
      database: dialect,
      deps: {
        now: () => now,
        queueCounts: () => queue.counts(),
        queueOps: { retry: (id) => retryNow({ store: h.store, queue }, id), flush: (o) => flushDeferred({ store: h.store, queue }, o) },
      },
    });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admin-a', 'domainadmin', { domains: ['a.test'] });
  });
  afterEach(async () => {
    await h.close();
    await bull.obliterate({ force: true });
    await bull.close();
    await queue.close();
  });

  async function tokenOf(username: string, form: Record<string, string> = {}): Promise<string> {
    const c = new Client(h.app);
    await c.login(username);
    const res = await c.post('/tokens', { name: `${username} script`, ...form }, { csrfFrom: '/tokens' });
    return /data-token>(mmt_[^<]+)</.exec(res.body)![1]!;
  }
  const api = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
    h.app.inject({ method, url: `/api/v1${url}`, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  const deniedRows = async (action: string) =>
    (await h.audit.list({ action, limit: 10 })).rows.filter((r) => r.outcome === 'denied').map((r) => [r.actor, r.target ?? r.messageId, r.detail]);

  /** A message waiting for a downstream that answered 451, its delivery job delayed an hour. */
  async function deferred(rcpt: string): Promise<string> {
    const id = await h.addMessage({ rcpt: [rcpt], status: 'delivered' });
    await h.store.transition(id, ['delivered'], 'deferred');
    await h.store.recordDelivery(id, rcpt, 'deferred', `451 4.3.0 ${rcpt.split('@')[1]} is busy`);
    await bull.add('deliver', { messageId: id }, { jobId: id, delay: HOUR_MS });
    return id;
  }

  it('stats/history: the page’s numbers, by bucket and per domain; a.test’s token sees only a.test, b.test is a 404, audited', async () => {
    await openStatsStore(h.sql).add([
      row('a.test', 0, 'received', 3),
      row('a.test', 2 * HOUR_MS, 'refused', 2),
      row('a.test', 3 * DAY_MS, 'received', 10),
      row('a.test', 20 * DAY_MS, 'spam', 7),
      row('a.test', 40 * DAY_MS, 'received', 100), // outside every window
      row('b.test', 0, 'received', 5),
      row('b.test', 5 * DAY_MS, 'virus', 1),
      row('', 0, 'refused', 4), // refused before RCPT: no hosted domain
    ]);
    const root = await tokenOf('root', { role: 'superadmin' });
    const page = new Client(h.app);
    await page.login('root');
    for (const range of ['1d', '7d', '30d']) {
      const res = await api(root, 'GET', `/stats/history?range=${range}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      const html = (await page.get(`/stats?range=${range}`)).body;
      for (const kind of ['received', 'refused', 'spam', 'virus', 'delivered']) expect(body.total[kind], `${range} ${kind}`).toBe(shown(html, kind));
      expect(body.buckets).toHaveLength(range === '1d' ? 24 : Number.parseInt(range, 10));
    }
    const month = (await api(root, 'GET', '/stats/history?range=30d')).json();
    expect(month).toMatchObject({ range: '30d', bucket: 'day', domain: null, total: { received: 18, spam: 7, virus: 1, refused: 6, delivered: 0 } });
    expect(month.domains.map((d: { domain: string; total: { received: number } }) => [d.domain, d.total.received])).toEqual([
      ['a.test', 13],
      ['b.test', 5],
      ['', 0],
    ]);
    const aDays = month.domains[0].buckets
      .filter((b: { counts: { received: number } }) => b.counts.received > 0)
      .map((b: { start: number; counts: { received: number } }) => [b.start, b.counts.received]);
    const today = Math.floor(hour / DAY_MS) * DAY_MS;
    expect(aDays).toEqual([
      [Math.floor((hour - 3 * DAY_MS) / DAY_MS) * DAY_MS, 10],
      [today, 3],
    ]);
    const day = (await api(root, 'GET', '/stats/history?range=1d&domain=a.test')).json();
    expect(day).toMatchObject({ bucket: 'hour', domain: 'a.test', total: { received: 3, refused: 2 } });
    expect(day.buckets.at(-1)).toEqual({ start: hour, counts: expect.objectContaining({ received: 3, refused: 0 }) });

    const tokenA = await tokenOf('admin-a');
    const mine = (await api(tokenA, 'GET', '/stats/history?range=30d')).json();
    expect(mine.total).toMatchObject({ received: 13, refused: 2, spam: 7, virus: 0 });
    expect(mine.domains.map((d: { domain: string }) => d.domain)).toEqual(['a.test']);
    const adminPage = new Client(h.app);
    await adminPage.login('admin-a');
    expect(mine.total.received).toBe(shown((await adminPage.get('/stats?range=30d')).body, 'received'));
    for (const domain of ['b.test', '', 'nowhere.test'])
      expect((await api(tokenA, 'GET', `/stats/history?range=30d&domain=${domain}`)).statusCode, domain).toBe(404);
    expect((await api(tokenA, 'GET', '/stats/history?range=2d')).statusCode).toBe(400);
    expect(await deniedRows('stats-view')).toEqual([
      ['admin-a/token:admin-a script', 'nowhere.test', 'domain outside the user’s scope (API)'],
      ['admin-a/token:admin-a script', '', 'domain outside the user’s scope (API)'],
      ['admin-a/token:admin-a script', 'b.test', 'domain outside the user’s scope (API)'],
    ]);
  });

  it('queue: a.test’s token sees and retries only a.test’s mail; b.test’s message and domain are a 404, audited; retry promotes the delayed job', async () => {
    const inA = await deferred('alice@a.test');
    const inB = await deferred('bob@b.test');
    const tokenA = await tokenOf('admin-a');
    const view = await api(tokenA, 'GET', '/queue');
    expect(view.statusCode, view.body).toBe(200);
    const q = view.json();
    expect(q).toMatchObject({
      counts: { deferred: 1, queued: 0 },
      countsExact: false,
      deferredTotal: 1,
      jobs: null,
      canRetry: true,
      oldest: { id: inA, status: 'deferred' },
    });
    expect(q.destinations).toEqual([expect.objectContaining({ domain: 'a.test', messages: 1, recipients: 1, lastError: '451 4.3.0 a.test is busy' })]);
    expect(q.deferred).toEqual([
      expect.objectContaining({ id: inA, pending: [{ recipient: 'alice@a.test', reply: '451 4.3.0 a.test is busy' }], canRetry: true }),
    ]);
    expect(view.body).not.toContain(inB);
    const page = new Client(h.app);
    await page.login('admin-a');
    const html = (await page.get('/queue')).body;
    expect(html).toContain(`data-id="${inA}"`);
    expect(html).toContain('data-state="deferred">1<');

    const root = (await api(await tokenOf('root', { role: 'superadmin' }), 'GET', '/queue')).json();
    expect(root).toMatchObject({ counts: { deferred: 2 }, countsExact: true, deferredTotal: 2 });
    expect(root.jobs.deliver.delayed).toBe(2);

    expect((await api(tokenA, 'POST', `/queue/${inB}/retry`)).statusCode).toBe(404);
    expect((await api(tokenA, 'POST', '/queue/flush', { domain: 'b.test' })).statusCode).toBe(404);
    expect((await api(tokenA, 'POST', '/queue/flush', {})).statusCode).toBe(404);
    expect((await queue.jobInfo('deliver', inB))?.state).toBe('delayed');
    expect(await deniedRows('queue-retry')).toEqual([['admin-a/token:admin-a script', inB, 'message outside the user’s scope (API)']]);
    expect(await deniedRows('queue-flush')).toEqual([
      ['admin-a/token:admin-a script', '*', 'only a superadmin flushes the whole queue (API)'],
      ['admin-a/token:admin-a script', 'b.test', 'domain outside the user’s scope (API)'],
    ]);

    const retried = await api(tokenA, 'POST', `/queue/${inA}/retry`);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toEqual({ ok: true, text: 'deliver job promoted' });
    expect((await queue.jobInfo('deliver', inA))?.state).toBe('waiting');
    const again = await api(tokenA, 'POST', `/queue/${inA}/retry`);
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('nothing to hurry: the deliver job is waiting');
    expect((await h.audit.list({ action: 'queue-retry', limit: 2 })).rows.map((r) => [r.messageId, r.outcome])).toEqual([
      [inA, 'failed'],
      [inA, 'ok'],
    ]);

    // A message also to b.test: a.test's token sees it but may not hurry it (a retry acts on all).
    const shared = await h.addMessage({ rcpt: ['carol@a.test', 'dave@b.test'], status: 'delivered' });
    await h.store.transition(shared, ['delivered'], 'deferred');
    const mixed = await api(tokenA, 'POST', `/queue/${shared}/retry`);
    expect(mixed.statusCode).toBe(403);
    expect((await h.audit.list({ action: 'queue-retry', limit: 1 })).rows[0]).toMatchObject({
      messageId: shared,
      outcome: 'denied',
      detail: 'recipients outside the user’s scope (API)',
    });
    expect((await api(tokenA, 'GET', '/queue')).json().deferred.find((d: { id: string }) => d.id === shared)).toMatchObject({ canRetry: false });

    const flushed = await api(tokenA, 'POST', '/queue/flush', { domain: 'a.test' });
    expect(flushed.json()).toEqual({
      ok: true,
      flushed: [],
      // not the shared message: a flush of a.test does not hurry b.test's recipients either
      skipped: [{ id: inA, reason: 'nothing to hurry: the deliver job is waiting' }],
    });
    const rootFlush = await api(await tokenOf('root', { role: 'superadmin' }), 'POST', '/queue/flush');
    expect(rootFlush.statusCode, rootFlush.body).toBe(200);
    expect(rootFlush.json().flushed).toEqual([inB]);
    expect((await queue.jobInfo('deliver', inB))?.state).toBe('waiting');
  });

  it('the OpenAPI document lists the new paths with their schemas', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/api/docs/json' })).json();
    const history = doc.paths['/api/v1/stats/history'].get;
    expect(history.parameters.find((p: { name: string }) => p.name === 'range').schema.enum).toEqual(['1d', '7d', '30d']);
    const ok = history.responses['200'].content['application/json'].schema;
    expect(Object.keys(ok.properties.total.properties)).toEqual(['received', 'refused', 'spam', 'virus', 'quarantined', 'delivered', 'deferred', 'failed']);
    expect(ok.properties.domains.items.properties.buckets.items.properties).toHaveProperty('start');
    const queueDoc = doc.paths['/api/v1/queue'].get.responses['200'].content['application/json'].schema;
    expect(queueDoc.properties.destinations.items.properties).toHaveProperty('lastError');
    expect(doc.paths['/api/v1/queue/{id}/retry'].post.parameters[0]).toMatchObject({ name: 'id', in: 'path' });
    expect(doc.paths['/api/v1/queue/flush'].post.requestBody.content['application/json'].schema.properties.domain.type).toBe('string');
  });
});
