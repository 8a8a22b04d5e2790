// Lists, message log, report-spam upload, domains, dashboard, monitoring, users and digests,
// through app.inject on real stores.
import { CRITICAL } from '../../gateway/engine-checks.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, rawMessage, startHarness, type Harness } from './harness.ts';
import { checkToken, issueToken, sendDigests } from '../../quarantine-ui/lib/digest.ts';
import { block, linkIn, pathIn, readDigest } from './digest-mail.ts';
import { horizontalBars, stackedBars, VERDICT_COLORS } from '../../quarantine-ui/lib/charts.ts';
import { silentLogger } from '../../gateway/log.ts';

function multipart(parts: { name: string; filename?: string; content: string | Buffer }[]): { body: Buffer; type: string } {
  const boundary = `----mm${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.filename !== undefined ? 'Content-Type: message/rfc822\r\n' : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.content) ? p.content : Buffer.from(p.content));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

describe('console pages', () => {
  let h: Harness;
  let a: Client;
  let b: Client;
  let root: Client;
  let user: Client;

  beforeAll(async () => {
    h = await startHarness({ config: { console: { upload: { maxFileBytes: 2000, maxFiles: 5 } } } });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('adminb', 'domainadmin', { domains: ['b.test'] });
    await h.addAccount('alice', 'user', { addresses: ['alice@a.test'] });
    a = new Client(h.app);
    b = new Client(h.app);
    root = new Client(h.app);
    user = new Client(h.app);
    await a.login('admina');
    await b.login('adminb');
    await root.login('root');
    await user.login('alice');
  });
  afterAll(async () => h?.close());

  describe('allow and block lists', () => {
    it('adds validated entries for the admin’s domain, and refuses invalid ones and foreign owners', async () => {
      let res = await a.post('/lists', { kind: 'allow', owner: 'a.test', entry: '*@Partner.Test', comment: 'our partner' }, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(303);
      expect(await h.lists.forRecipient('x@a.test')).toContainEqual({ kind: 'allow', scope: 'domain', text: '*@partner.test' });
      res = await a.post('/lists', { kind: 'block', owner: 'a.test', entry: 'not_an_entry' }, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('not a valid');
      res = await a.post('/lists', { kind: 'block', owner: 'b.test', entry: 'evil.test' }, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(400);
      expect(await h.lists.forRecipient('x@b.test')).toEqual([]);
      res = await a.post('/lists', { kind: 'block', owner: '*', entry: 'evil.test' }, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(400);
      // a recipient address in the admin's domain
      res = await a.post('/lists', { kind: 'block', owner: 'a.test', ownerAddress: 'carol@a.test', entry: '192.0.2.0/24' }, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(303);
      expect(await h.lists.forRecipient('carol@a.test')).toContainEqual({ kind: 'block', scope: 'user', text: '192.0.2.0/24' });
      res = await a.post('/lists', { kind: 'block', owner: 'a.test', ownerAddress: 'bob@b.test', entry: '192.0.2.1' }, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(400);
      // a duplicate is refused with a clear message
      res = await a.post('/lists', { kind: 'allow', owner: 'a.test', entry: '*@partner.test' }, { csrfFrom: '/lists' });
      expect(res.body).toContain('already on this allow list');
    });

    it('end users manage only their own addresses', async () => {
      expect((await user.post('/lists', { kind: 'allow', owner: 'alice@a.test', entry: 'mum@family.test' }, { csrfFrom: '/lists' })).statusCode).toBe(303);
      expect((await user.post('/lists', { kind: 'allow', owner: 'a.test', entry: 'mum@family.test' }, { csrfFrom: '/lists' })).statusCode).toBe(400);
      expect((await user.post('/lists', { kind: 'allow', owner: 'carol@a.test', entry: 'x@family.test' }, { csrfFrom: '/lists' })).statusCode).toBe(400);
      const page = (await user.get('/lists')).body;
      expect(page).toContain('mum@family.test');
      expect(page).not.toContain('partner.test'); // the domain list is the admin's
    });

    it('an entry of another tenant cannot be removed (404, audited)', async () => {
      await b.post('/lists', { kind: 'block', owner: 'b.test', entry: 'spam.test' }, { csrfFrom: '/lists' });
      const row = (await h.lists.list({ domains: ['b.test'] })).find((r) => r.text === 'spam.test')!;
      expect((await a.get('/lists')).body).not.toContain('spam.test');
      const res = await a.post(`/lists/${row.id}/delete`, {}, { csrfFrom: '/lists' });
      expect(res.statusCode).toBe(404);
      expect(await h.lists.get(row.id)).toBeDefined();
      expect((await h.audit.list({ actor: 'admina', action: 'list-remove', limit: 1 })).rows[0]).toMatchObject({ outcome: 'denied' });
      expect((await b.post(`/lists/${row.id}/delete`, {}, { csrfFrom: '/lists' })).statusCode).toBe(303);
      expect(await h.lists.get(row.id)).toBeUndefined();
    });

    it('a list post without a CSRF token is refused', async () => {
      expect((await a.post('/lists', { kind: 'allow', owner: 'a.test', entry: 'nocsrf.test' }, { csrf: false })).statusCode).toBe(403);
      expect((await h.lists.list({ all: true })).map((r) => r.text)).not.toContain('nocsrf.test');
    });
  });

  describe('message log', () => {
    beforeAll(async () => {
      await h.addMessage({ rcpt: ['log1@a.test'], from: 'logsender@x.test', subject: 'log delivered', status: 'delivered', clientIp: '203.0.113.9' });
      await h.addMessage({ rcpt: ['log2@b.test'], from: 'logsender@x.test', subject: 'log for b', status: 'delivered' });
      await h.store.recordRefusal({
        at: Date.now(),
        clientIp: '198.51.100.7',
        helo: 'spambot',
        mailFrom: 'spam@bad.test',
        recipient: 'nobody@a.test',
        stage: 'rcpt',
        reply: '550 5.1.1 <nobody@a.test>: <script>x</script> unknown',
      });
      await h.store.recordRefusal({
        at: Date.now(),
        clientIp: '198.51.100.8',
        helo: 'relay',
        mailFrom: 'x@bad.test',
        recipient: 'someone@elsewhere.test',
        stage: 'rcpt',
        reply: '554 5.7.1 Relay access denied',
      });
      await h.store.recordRefusal({
        at: Date.now(),
        clientIp: '198.51.100.9',
        helo: 'x',
        mailFrom: null,
        recipient: null,
        stage: 'connect',
        reply: '554 5.7.1 listed',
      });
    });

    it('shows messages and SMTP refusals of the admin’s domains, with the reply, escaped', async () => {
      const page = (await a.get('/log')).body;
      expect(page).toContain('log delivered');
      expect(page).not.toContain('log for b');
      expect(page).toContain('550 5.1.1 &lt;nobody@a.test&gt;: &lt;script&gt;x&lt;/script&gt; unknown');
      expect(page).not.toContain('Relay access denied'); // not addressed to A's domain
      expect(page).not.toContain('198.51.100.9'); // refused before any recipient: superadmin only
      const all = (await root.get('/log')).body;
      expect(all).toContain('Relay access denied');
      expect(all).toContain('198.51.100.9');
    });

    it('searches by sender, recipient, client address, status and id', async () => {
      expect((await a.get('/log?sender=logsender')).body).toContain('log delivered');
      expect((await a.get('/log?rcpt=nobody')).body).toContain('spambot');
      expect((await a.get('/log?rcpt=nobody')).body).not.toContain('log delivered');
      expect((await a.get('/log?ip=203.0.113.9')).body).toContain('log delivered');
      expect((await a.get('/log?ip=203.0.113.')).body).toContain('log delivered');
      expect((await a.get('/log?status=refused')).body).not.toContain('log delivered');
      const id = (await h.store.searchMessages({ scope: { all: true }, q: 'log delivered', limit: 1 })).rows[0]!.id;
      const byId = (await a.get(`/log?id=${id}`)).body;
      expect(byId).toContain('log delivered');
      expect(byId).not.toContain('spambot');
      expect((await b.get(`/log?id=${id}`)).body).not.toContain('log delivered');
    });
  });

  describe('report spam', () => {
    async function upload(c: Client, parts: { name: string; filename?: string; content: string | Buffer }[]) {
      const csrf = await c.csrf('/report');
      const { body, type } = multipart([{ name: '_csrf', content: csrf }, ...parts]);
      const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      return h.app.inject({ method: 'POST', url: '/report', headers: { cookie, 'content-type': type }, payload: body });
    }

    it('learns each uploaded file and the pasted message, and says what happened to each', async () => {
      h.told.length = 0;
      const res = await upload(user, [
        { name: 'files', filename: 'one.eml', content: rawMessage({ subject: 'buy now 1' }) },
        { name: 'files', filename: '<img src=x onerror=alert(1)>.eml', content: rawMessage({ subject: 'buy now 2' }) },
        { name: 'files', filename: 'notmail.eml', content: 'just some text\nwithout headers\n' },
        { name: 'files', filename: 'big.eml', content: rawMessage({ subject: 'big', text: 'x'.repeat(5000) }) },
        { name: 'raw', content: rawMessage({ subject: 'pasted spam' }) },
      ]);
      expect(res.statusCode).toBe(200);
      expect(h.told.map((t) => t.cls)).toEqual(['spam', 'spam', 'spam']);
      const body = res.body;
      expect(body).toMatch(/one\.eml<\/td><td><span class="badge clean">learned/);
      expect(body).toContain('&lt;img src=x onerror=alert(1)&gt;.eml');
      expect(body).not.toContain('<img src=x');
      expect(body).toMatch(/notmail\.eml<\/td><td><span class="badge failed">refused<\/span> not learned: it does not start with mail headers/);
      expect(body).toMatch(/big\.eml<\/td><td><span class="badge failed">refused<\/span> not learned: it is larger than 2000 bytes/);
      expect(body).toMatch(/pasted message<\/td><td><span class="badge clean">learned/);
      expect((await h.learnLog.recent({ actor: 'alice', limit: 10 })).map((r) => `${r.source}:${r.outcome}`).sort()).toEqual(
        ['paste:learned', 'upload:learned', 'upload:learned', 'upload:refused', 'upload:refused'].sort(),
      );
      // the same file again: recognised, not sent to spamd twice
      const again = await upload(user, [
        { name: 'files', filename: 'one.eml', content: rawMessage({ subject: 'buy now 1' }).replace(/Message-ID: <[^>]+>/, 'Message-ID: <x>') },
      ]);
      expect(again.statusCode).toBe(200);
    });

    it('says so when spamd learns nothing', async () => {
      h.spamdDidSet = [];
      const res = await upload(a, [{ name: 'files', filename: 'x.eml', content: rawMessage({ subject: 'unlearnable' }) }]);
      expect(res.body).toMatch(/x\.eml<\/td><td><span class="badge failed">failed<\/span> spamd learned nothing/);
      h.spamdDidSet = ['local'];
    });

    it('refuses an upload without a CSRF token and an anonymous upload', async () => {
      const { body, type } = multipart([{ name: 'files', filename: 'x.eml', content: rawMessage({}) }]);
      const cookie = [...user.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const before = h.told.length;
      expect((await h.app.inject({ method: 'POST', url: '/report', headers: { cookie, 'content-type': type }, payload: body })).statusCode).toBe(403);
      expect((await h.app.inject({ method: 'POST', url: '/report', headers: { 'content-type': type }, payload: body })).statusCode).toBe(401);
      expect(h.told.length).toBe(before);
    });
  });

  describe('domains and the SMTP test', () => {
    it('shows the admin’s domains and runs the test, escaping the transcript', async () => {
      const page = (await a.get('/domains')).body;
      expect(page).toContain('a.test');
      expect(page).not.toContain('<b>b.test</b>');
      const res = await a.post('/domains/test', { domain: 'a.test', host: '0' }, { csrfFrom: '/domains' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('220 fake &lt;script&gt;alert(1)&lt;/script&gt;');
      expect((await a.post('/domains/test', { domain: 'b.test', host: '0' }, { csrfFrom: '/domains' })).statusCode).toBe(404);
      expect((await user.get('/domains')).statusCode).toBe(404);
      expect((await root.get('/domains')).body).toContain('<b>b.test</b>');
    });
  });

  describe('dashboard and charts', () => {
    it('draws SVG charts with hostile labels escaped', async () => {
      await h.addMessage({ rcpt: ['d@a.test'], from: '<script>alert(1)</script>@evil.test', verdict: 'high-spam' });
      const page = (await a.get('/dashboard')).body;
      expect(page).toContain('<svg');
      expect(page).toContain('Messages per hour by verdict');
      expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;@evil.test');
      expect(page).not.toContain('<script>alert(1)');
      expect(page).not.toContain('style=');
      expect(page).not.toContain('<h2>Queue</h2>'); // one queue for everyone: its job counts are for superadmins only
      expect((await root.get('/dashboard')).body).toContain('deliver active');
    });
    it('counts only the admin’s domains', async () => {
      await h.addMessage({ rcpt: ['d@b.test'], from: 'only-for-b@spam.test', verdict: 'high-spam' });
      await h.addMessage({ rcpt: ['d@a.test'], verdict: 'virus', from: 'v@virus.test' });
      const pa = (await a.get('/dashboard')).body;
      const pb = (await b.get('/dashboard')).body;
      expect(pa).not.toContain('only-for-b@spam.test');
      expect(pb).toContain('only-for-b@spam.test');
      expect(pa).toContain('Eicar-Test-Signature');
      expect(pb).not.toContain('Eicar-Test-Signature');
    });
    it('chart helpers escape and scale', () => {
      const svg = stackedBars({ title: 't"<', buckets: [{ label: '<x>', values: { clean: 3, virus: 1 } }], categories: VERDICT_COLORS });
      expect(svg).not.toMatch(/<x>|t"</);
      expect(horizontalBars({ title: 'x', items: [], color: '#000', empty: 'none <here>' })).toContain('none &lt;here&gt;');
    });
  });

  describe('monitoring', () => {
    it('serves /metrics and /healthz to loopback only', async () => {
      const metrics = await h.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/mailmoat_messages\{status="quarantined"\} \d+/);
      expect(metrics.body).toContain('mailmoat_queue_jobs{queue="deliver",state="active"} 2');
      expect(metrics.body).toContain('# TYPE mailmoat_smtp_refusals_total counter'); // the process registry of the other roles
      const health = await h.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.1' });
      expect(health.statusCode).toBe(200);
      expect(health.json()).toMatchObject({ status: 'ok', checks: { database: { ok: true }, redis: { ok: true, detail: 'PONG' } } });
      expect((await h.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.1' })).statusCode).toBe(404);
      expect((await h.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '203.0.113.1' })).statusCode).toBe(404);
    });
    it('answers 503 naming the engine that fails', async () => {
      h.deps.healthChecks.clamd = async () => {
        throw new Error('connect ENOENT /run/clamd.sock');
      };
      const health = await h.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.1' });
      expect(health.statusCode).toBe(503);
      expect(health.json().checks.clamd).toMatchObject({ ok: false, detail: 'connect ENOENT /run/clamd.sock' });
      delete h.deps.healthChecks.clamd;
    });
    it('a console node leaves rotation for its own faults only: clamd down is reported, /healthz stays 200', async () => {
      h.deps.healthChecks.clamd = async () => {
        throw new Error('connect ENOENT /run/clamd.sock');
      };
      h.deps.healthCritical = CRITICAL.console;
      try {
        const health = await h.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.1' });
        expect(health.statusCode).toBe(200);
        expect(health.json().checks.clamd).toMatchObject({ ok: false, critical: false });
        h.deps.healthChecks.database = async () => {
          throw new Error('database is locked');
        };
        expect((await h.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.1' })).statusCode).toBe(503);
      } finally {
        delete h.deps.healthChecks.clamd;
        h.deps.healthChecks.database = async () => 'ok';
        h.deps.healthCritical = undefined;
      }
    });
  });

  describe('users (superadmin)', () => {
    it('creates a domain admin with a random password shown once, who can then log in', async () => {
      const res = await root.post('/users', { username: 'newadmin', role: 'domainadmin', domains: 'b.test' }, { csrfFrom: '/users' });
      expect(res.statusCode).toBe(200);
      const password = /class="secret mono">([^<]+)</.exec(res.body)![1]!;
      expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect((await root.get('/users')).body).not.toContain(password);
      const c = new Client(h.app);
      expect((await c.login('newadmin', password)).statusCode).toBe(303);
      expect((await c.get('/quarantine')).statusCode).toBe(200);
      // disabling ends the session at once
      const id = (await h.accounts.byName('newadmin'))!.id;
      await root.post(`/users/${id}/update`, { role: 'domainadmin', domains: 'b.test', addresses: '', disabled: '1' }, { csrfFrom: '/users' });
      expect((await c.get('/quarantine')).statusCode).toBe(303);
    });
    it('refuses domains that are not hosted and users without a scope', async () => {
      expect((await root.post('/users', { username: 'x1', role: 'domainadmin', domains: 'nothosted.test' }, { csrfFrom: '/users' })).statusCode).toBe(400);
      expect((await root.post('/users', { username: 'x2', role: 'user', addresses: '' }, { csrfFrom: '/users' })).statusCode).toBe(400);
      expect((await root.post('/users', { username: '<b>', role: 'superadmin' }, { csrfFrom: '/users' })).statusCode).toBe(400);
    });
    it('domain admins cannot reach user management', async () => {
      expect((await a.post('/users', { username: 'sneaky', role: 'superadmin' }, { csrfFrom: '/quarantine' })).statusCode).toBe(404);
      expect(await h.accounts.byName('sneaky')).toBeUndefined();
      const rootId = (await h.accounts.byName('root'))!.id;
      expect((await a.post(`/users/${rootId}/reset-password`, {}, { csrfFrom: '/quarantine' })).statusCode).toBe(404);
    });
  });

  describe('digests', () => {
    it('sends one digest per recipient with single-use, expiring, per-recipient release links', async () => {
      const own = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'digest me', from: 'promo@shop.test' });
      const shared = await h.addMessage({ rcpt: ['alice@a.test', 'carol@a.test'], subject: 'digest shared' });
      const sent: { to: string[]; raw: string }[] = [];
      const deps = {
        config: h.deps.config,
        store: h.store,
        accounts: h.accounts,
        digests: h.digests,
        secret: h.deps.secret,
        publicUrl: 'https://console.example.test/',
        logger: silentLogger(),
        now: Date.now,
        submit: async (env: { from: string; to: string[] }, raw: Buffer) => {
          sent.push({ to: env.to, raw: raw.toString() });
          return 'X';
        },
      };
      const r = await sendDigests(deps);
      expect(r.recipients).toEqual(expect.arrayContaining(['alice@a.test', 'carol@a.test']));
      const mail = await readDigest(sent.find((s) => s.to[0] === 'alice@a.test')!.raw);
      expect(mail.text).toContain('Subject: digest me');
      expect(block(mail, 'digest shared')).toMatch(/also addressed to other people/i);
      expect(linkIn(block(mail, 'digest shared'), 'Release it')).toBeUndefined();
      const links = [pathIn(block(mail, 'digest me'), 'Release it')!.slice('/d/'.length)];
      // a second run lists nothing new
      expect((await sendDigests(deps)).sent).toBe(0);

      const token = links[0]!;
      const anon = new Client(h.app);
      const confirm = await anon.get(`/d/${token}`);
      expect(confirm.statusCode).toBe(200);
      expect(confirm.body).toContain('Release this message');
      expect((await h.store.get(own))!.status).toBe('quarantined'); // a GET (link scanner) releases nothing
      expect((await anon.post(`/d/${token}`, {}, { csrf: false })).statusCode).toBe(403);
      const done = await anon.post(`/d/${token}`, {}, { csrfFrom: `/d/${token}` });
      expect(done.body).toContain('has been released');
      expect(h.released).toContain(own);
      expect((await anon.get(`/d/${token}`)).statusCode).toBe(410);
      expect(h.released.filter((x) => x === own)).toHaveLength(1);
      expect((await h.store.get(shared))!.status).toBe('quarantined');
    });

    it('refuses tampered, unknown and expired tokens', async () => {
      const id = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'token test' });
      const deps = { digests: h.digests, secret: h.deps.secret, config: h.deps.config, now: Date.now };
      const token = await issueToken(deps, id, 'alice@a.test');
      expect((await checkToken(deps, token)).ok).toBe(true);
      const [tid, sig] = token.split('.');
      expect(await checkToken(deps, `${tid}.${sig!.slice(0, -1)}${sig!.endsWith('A') ? 'B' : 'A'}`)).toEqual({ ok: false, reason: 'This link is not valid.' });
      expect((await checkToken({ ...deps, secret: Buffer.alloc(32, 9) }, token)).ok).toBe(false);
      expect((await checkToken(deps, 'garbage')).ok).toBe(false);
      expect(await checkToken({ ...deps, now: () => Date.now() + 73 * 3600_000 }, token)).toEqual({ ok: false, reason: 'This link has expired.' });
      expect((await new Client(h.app).get(`/d/${tid}.${'A'.repeat(43)}`)).statusCode).toBe(410);
    });
  });
});
