// Hosted domains and policy managed live (console pages and the REST API), API tokens scoped like
// the roles, the OpenAPI document. Over the console harness on SQLite and PostgreSQL.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLedger } from '../../gateway/ledger/ledger.ts';
import { silentLogger } from '../../gateway/log.ts';
import { Client, startHarness, type Harness } from './harness.ts';
import { DIALECTS } from '../support/databases.ts';

const DOWNSTREAM = { downstream: [{ host: '127.0.0.1', port: 2525 }] };

describe.each(DIALECTS)('hosted domains and the API (%s)', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ database: dialect, config: { database: { domainsPollMs: 60_000 } } });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admin-a', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('admin-b', 'domainadmin', { domains: ['b.test'] });
  });
  afterEach(() => h.close());

  async function tokenOf(username: string, form: Record<string, string> = {}): Promise<string> {
    const c = new Client(h.app);
    await c.login(username);
    const res = await c.post('/tokens', { name: `${username} script`, ...form }, { csrfFrom: '/tokens' });
    expect(res.statusCode).toBe(200);
    const m = /data-token>(mmt_[^<]+)</.exec(res.body);
    expect(m, res.body).toBeTruthy();
    return m![1]!;
  }
  const api = (token: string | undefined, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
    h.app.inject({
      method,
      url: `/api/v1${url}`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(payload === undefined ? {} : { payload: payload as object }),
    });

  it('a superadmin adds a domain in the console: it is live at once on this node, listed, audited; a domain admin cannot add one', async () => {
    const root = new Client(h.app);
    await root.login('root');
    const res = await root.post(
      '/domains/new',
      { name: 'New.Test', settings: 'downstream:\n  - host: 127.0.0.1\n    port: 2525\n', adminMay: 'spam.threshold' },
      { csrfFrom: '/domains/new' },
    );
    expect(res.statusCode, res.body).toBe(303);
    expect(Object.keys(h.deps.config.domains)).toContain('new.test');
    expect((await root.get('/domains')).body).toContain('new.test');
    expect((await h.audit.list({ action: 'domain-add', limit: 5 })).rows[0]).toMatchObject({ actor: 'root', target: 'new.test', outcome: 'ok' });

    const a = new Client(h.app);
    await a.login('admin-a');
    expect((await a.get('/domains/new')).statusCode).toBe(404);
    const forged = await a.post('/domains/new', { name: 'evil.test', settings: 'downstream:\n  - host: 127.0.0.1\n' }, { csrfFrom: '/domains' });
    expect(forged.statusCode).toBe(404);
    expect(h.deps.config.domains['evil.test']).toBeUndefined();
    expect((await h.audit.list({ action: 'domain-add', limit: 1 })).rows[0]).toMatchObject({ actor: 'admin-a', outcome: 'denied' });
  });

  it('a file domain opened for editing and saved unchanged is valid as shown; the database copy then wins and can be removed again', async () => {
    const root = new Client(h.app);
    await root.login('root');
    const form = await root.get('/domains/b.test/edit');
    const yaml = /<textarea name="settings"[^>]*>([\s\S]*?)<\/textarea>/
      .exec(form.body)![1]!
      .replace(/&#(\d+);|&quot;|&amp;|&lt;|&gt;|&#39;/g, (m, n) =>
        n ? String.fromCharCode(Number(n)) : ({ '&quot;': '"', '&amp;': '&', '&lt;': '<', '&gt;': '>', '&#39;': "'" } as Record<string, string>)[m]!,
      );
    const saved = await root.post('/domains/b.test/edit', { settings: yaml.replace('port: 1', 'port: 2') }, { csrfFrom: '/domains/b.test/edit' });
    expect(saved.statusCode, saved.body).toBe(303);
    expect(h.deps.config.domains['b.test']!.downstream[0]!.port).toBe(2);
    expect((await root.get('/domains')).body).toContain('database, over the file');
    expect((await root.post('/domains/b.test/remove', {}, { csrfFrom: '/domains' })).statusCode).toBe(303);
    expect(h.deps.config.domains['b.test']!.downstream[0]!.port).toBe(1);
  });

  it('an invalid domain is refused naming the key, in the console and the API; nothing changes', async () => {
    const root = new Client(h.app);
    await root.login('root');
    const res = await root.post(
      '/domains/new',
      { name: 'bad.test', settings: 'downstream:\n  - host: 127.0.0.1\n    port: 99999\n' },
      { csrfFrom: '/domains/new' },
    );
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('domains[&quot;bad.test&quot;].downstream[0].port');
    const token = await tokenOf('root', { role: 'superadmin' });
    const r = await api(token, 'PUT', '/domains/bad.test', { settings: { downstream: [{ host: 'x.test' }], recipents: { check: 'any' } } });
    expect(r.statusCode).toBe(400);
    expect(r.json().details).toEqual(['domains["bad.test"].recipents: unknown key']);
    expect(h.deps.config.domains['bad.test']).toBeUndefined();
  });

  it('a domain admin changes only the policy keys the superadmin allowed, for their own domain only', async () => {
    const root = await tokenOf('root', { role: 'superadmin' });
    expect((await api(root, 'PUT', '/domains/a.test', { settings: DOWNSTREAM, adminMay: ['spam.threshold'] })).statusCode).toBe(200);
    const tokenA = await tokenOf('admin-a');
    const ok = await api(tokenA, 'PUT', '/domains/a.test/policy', { policy: { spam: { threshold: 3 } } });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(h.deps.config.domains['a.test']!.policy?.spam?.threshold).toBe(3);
    const refused = await api(tokenA, 'PUT', '/domains/a.test/policy', { policy: { spam: { threshold: 3 }, checks: { virus: false } } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().details[0]).toMatch(/^policy\.checks\.virus: domain admins may change only policy\.spam\.threshold/);
    expect(h.deps.config.domains['a.test']!.policy?.checks).toBeUndefined();

    const a = new Client(h.app);
    await a.login('admin-a');
    const page = await a.post('/domains/a.test/policy', { policy: 'spam:\n  highThreshold: 50\n' }, { csrfFrom: '/domains/a.test/policy' });
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('policy.spam.highThreshold');
    expect((await a.get('/domains/b.test/policy')).statusCode).toBe(404);
    expect((await h.audit.list({ action: 'policy-edit', limit: 1 })).rows[0]).toMatchObject({ actor: 'admin-a', target: 'b.test', outcome: 'denied' });
  });

  it('the API’s message history shows another tenant’s recipients in no field (event fields included)', async () => {
    const id = await h.addMessage({ rcpt: ['alice@a.test', 'hidden@b.test'], status: 'delivered' });
    await openLedger({ store: h.store, logger: silentLogger() }).note(id, {
      kind: 'delivered',
      results: [
        { recipient: 'alice@a.test', reply: '250 ok' },
        { recipient: 'hidden@b.test', reply: '250 Stored as SECRET-B-42' },
      ],
    });
    const res = await api(await tokenOf('admin-a'), 'GET', `/quarantine/${id}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('alice@a.test: 250 ok');
    expect(res.body).not.toContain('hidden@b.test');
    expect(res.body).not.toContain('SECRET-B-42');
  });

  it('tokens are scoped like the roles: a.test’s token gets 404 on b.test’s message, domain and list entry, audited; no cookie works', async () => {
    const inA = await h.addMessage({ rcpt: ['alice@a.test'] });
    const inB = await h.addMessage({ rcpt: ['bob@b.test'] });
    const tokenA = await tokenOf('admin-a');
    const list = await api(tokenA, 'GET', '/quarantine');
    expect(list.statusCode).toBe(200);
    expect(list.json().messages.map((m: { id: string }) => m.id)).toEqual([inA]);
    expect((await api(tokenA, 'GET', `/quarantine/${inA}`)).json()).toMatchObject({ id: inA, to: ['alice@a.test'] });
    expect((await api(tokenA, 'GET', '/log')).json().rows.map((r: { id: string }) => r.id)).toEqual([inA]);
    const stats = (await api(tokenA, 'GET', '/stats')).json();
    expect(stats).toEqual({ all: { quarantined: 1 }, domains: { 'a.test': { quarantined: 1 } } });
    expect((await api(tokenA, 'GET', '/domains')).json().domains.map((d: { name: string }) => d.name)).toEqual(['a.test']);
    for (const [method, url] of [
      ['GET', `/quarantine/${inB}`],
      ['POST', `/quarantine/${inB}/release`],
      ['DELETE', `/quarantine/${inB}`],
      ['GET', '/domains/b.test'],
      ['PUT', '/domains/b.test/policy'],
    ] as const) {
      const r = await api(tokenA, method, url, method === 'PUT' ? { policy: {} } : undefined);
      expect(r.statusCode, `${method} ${url}`).toBe(404);
    }
    expect((await h.store.get(inB))!.status).toBe('quarantined');
    const denied = (await h.audit.list({ actor: 'admin-a/token:admin-a script', limit: 20 })).rows.filter((r) => r.outcome === 'denied');
    expect(denied.map((r) => r.messageId ?? r.target)).toEqual(expect.arrayContaining([inB, 'b.test']));

    const entry = await api(await tokenOf('admin-b'), 'POST', '/lists', { kind: 'block', owner: 'b.test', entry: 'spammer@evil.test' });
    expect(entry.statusCode).toBe(201);
    expect((await api(tokenA, 'DELETE', `/lists/${entry.json().id}`)).statusCode).toBe(404);
    expect((await api(tokenA, 'POST', '/lists', { kind: 'allow', owner: 'b.test', entry: 'x@y.test' })).statusCode).toBe(403);

    // Acting on its own message works through the pages' own path.
    const learned = await api(tokenA, 'POST', `/quarantine/${inA}/learn`, { as: 'spam' });
    expect(learned.statusCode, learned.body).toBe(200);
    expect(h.told.map((t) => t.cls)).toEqual(['spam']);
    expect((await api(tokenA, 'POST', `/quarantine/${inA}/learn`, { as: 'maybe' })).statusCode).toBe(400);
    const released = await api(tokenA, 'POST', `/quarantine/${inA}/release`);
    expect(released.statusCode, released.body).toBe(200);
    expect(h.released).toEqual([inA]);

    // A console session is not an API credential; a made-up or revoked token neither.
    const a = new Client(h.app);
    await a.login('admin-a');
    const byCookie = await h.app.inject({
      method: 'GET',
      url: '/api/v1/quarantine',
      headers: { cookie: [...a.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    expect(byCookie.statusCode).toBe(401);
    expect((await api('mmt_' + 'x'.repeat(43), 'GET', '/quarantine')).statusCode).toBe(401);
    const [row] = (await h.deps.tokens.list()).filter((t) => t.createdByName === 'admin-a');
    await a.post(`/tokens/${row!.id}/revoke`, {}, { csrfFrom: '/tokens' });
    expect((await api(tokenA, 'GET', '/quarantine')).statusCode).toBe(401);
  });

  it('a domain admin cannot make a token for another domain or a superadmin token; a token dies with its maker’s rights', async () => {
    const a = new Client(h.app);
    await a.login('admin-a');
    const res = await a.post('/tokens', { name: 'sneaky', domains: 'b.test', role: 'superadmin' }, { csrfFrom: '/tokens' });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('Not your domain: b.test');
    const tokenA = await tokenOf('admin-a', { role: 'superadmin' });
    expect((await api(tokenA, 'PUT', '/domains/c.test', { settings: DOWNSTREAM })).statusCode).toBe(404);
    const account = await h.accounts.byName('admin-a');
    await h.accounts.update(account!.id, { disabled: true });
    expect((await api(tokenA, 'GET', '/quarantine')).statusCode).toBe(401);
  });

  it('the OpenAPI document lists the routes; /api/docs serves it', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/api/docs/json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/v1/domains',
      '/api/v1/domains/{name}',
      '/api/v1/domains/{name}/policy',
      '/api/v1/lists',
      '/api/v1/lists/{id}',
      '/api/v1/log',
      '/api/v1/quarantine',
      '/api/v1/quarantine/{id}',
      '/api/v1/quarantine/{id}/learn',
      '/api/v1/quarantine/{id}/release',
      '/api/v1/queue',
      '/api/v1/queue/flush',
      '/api/v1/queue/{id}/retry',
      '/api/v1/stats',
      '/api/v1/stats/history',
    ]);
    expect(doc.paths['/api/v1/quarantine/{id}/learn'].post.requestBody.content['application/json'].schema.properties.as.enum).toEqual(['spam', 'ham']);
    // The reader: its scripts are files of the console's origin (the console's CSP allows no inline script).
    const page = await h.app.inject({ method: 'GET', url: '/api/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('swagger-initializer.js');
    expect(page.body).not.toMatch(/<script>(?!\s*<\/script>)/);
    expect((await h.app.inject({ method: 'GET', url: '/api/docs/static/swagger-initializer.js' })).statusCode).toBe(200);
  });
});
