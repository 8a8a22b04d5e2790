// The console features of issue 20 together (digest links, identity-provider logins, TOTP, the
// numbers): what a hostile user or a careless mix of accounts could do across them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../support/databases.ts';
import { MemoryQueue } from '../support/fake-queue.ts';
import { flushDeferred, retryNow } from '../../gateway/delivery/queue-ops.ts';
import { jobIdFor } from '../../gateway/ledger/ledger.ts';
import { SERVICE_DN, SERVICE_PASSWORD, SUFFIX, startSlapd, type PrivateSlapd } from '../support/slapd.ts';
import { q } from '../../gateway/store/sql.ts';
import { silentLogger } from '../../gateway/log.ts';
import { issueToken, sendDigests } from '../../quarantine-ui/lib/digest.ts';
import { pathIn, readDigest } from './digest-mail.ts';
import { sendDailySummaries } from '../../quarantine-ui/lib/daily-summary.ts';
import { Client, startHarness, type Harness } from './harness.ts';
import { clock, code, enrol } from './totp-helpers.ts';

describe('digest links, TOTP and identity-provider accounts together', () => {
  let h: Harness;
  let time: ReturnType<typeof clock>;
  const link = async (recipient: string, action: 'login' | 'release' | 'allow' = 'login', messageId = '') =>
    `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, messageId, recipient, action)}`;

  beforeAll(async () => {
    h = await startHarness({ config: { console: { requireTotpFor: ['user'] } } });
    time = clock(h);
  });
  afterAll(async () => h?.close());

  it('a magic link to an end user who turned TOTP on asks for the code before there is any session', async () => {
    await h.addMessage({ rcpt: ['tess@a.test'], subject: 'held for tess' });
    const first = new Client(h.app);
    const l1 = await link('tess@a.test');
    expect((await first.post(l1, {}, { csrfFrom: l1 })).headers.location).toBe('/quarantine');
    // requireTotpFor includes user: the link's session can only set TOTP up.
    expect((await first.get('/quarantine')).headers.location).toBe('/account/totp');
    const { secret } = await enrol(first, time.now);
    time.next();

    const thief = new Client(h.app); // someone who got hold of a later digest
    const l2 = await link('tess@a.test');
    const res = await thief.post(l2, {}, { csrfFrom: l2 });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login/totp');
    const q = await thief.get('/quarantine');
    expect(q.statusCode).toBe(303);
    expect(q.headers.location).toMatch(/^\/login/);
    // With the code the owner gets in.
    const ok = await thief.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' });
    expect(ok.headers.location).toBe('/quarantine');
    expect((await thief.get('/quarantine')).body).toContain('held for tess');
  });

  it('a digest link still works in a browser whose session must set TOTP up first (the link, not the session, is its authority)', async () => {
    const id = await h.addMessage({ rcpt: ['uma@a.test'], subject: 'held for uma' });
    const c = new Client(h.app);
    const l1 = await link('uma@a.test');
    expect((await c.post(l1, {}, { csrfFrom: l1 })).statusCode).toBe(303);
    expect((await c.get('/quarantine')).headers.location).toBe('/account/totp');
    const release = await link('uma@a.test', 'release', id);
    const page = await c.get(release);
    expect(page.statusCode).toBe(200);
    expect((await c.post(release, {}, { csrfFrom: release })).statusCode).toBe(200);
    expect(h.released).toContain(id);
    // and the session itself is still held at the enrolment page
    expect((await c.get('/quarantine')).headers.location).toBe('/account/totp');
  });

  it('a magic link never opens an LDAP or OIDC account, nor a hand-made account that sees other addresses', async () => {
    await h.accounts.createExternal({ username: 'olly@a.test', role: 'user', addresses: ['olly@a.test'] }, { source: 'oidc', id: 'sub-olly' });
    await h.accounts.createExternal({ username: 'lara@a.test', role: 'user', addresses: ['lara@a.test'] }, { source: 'ldap', id: 'uid=lara,dc=a,dc=test' });
    await h.addAccount('shared@a.test', 'user', { addresses: ['shared@a.test', 'ceo@a.test'] });
    await h.addMessage({ rcpt: ['ceo@a.test'], subject: 'for the ceo only' });
    for (const address of ['olly@a.test', 'lara@a.test', 'shared@a.test']) {
      const c = new Client(h.app);
      const l = await link(address);
      const res = await c.post(l, {}, { csrfFrom: l });
      expect(res.statusCode, address).toBe(403);
      const q = await c.get('/quarantine');
      expect(q.statusCode, address).toBe(303);
      expect(q.headers.location, address).toMatch(/^\/login/);
    }
    const denied = (await h.audit.list({ action: 'login', limit: 50 })).rows.filter((r) => r.outcome === 'denied' && r.actor.startsWith('digest:'));
    expect(denied.map((r) => r.target).sort()).toEqual(['lara@a.test', 'olly@a.test', 'shared@a.test']);
  });

  it('the links of a recipient whose account an administrator disabled do nothing', async () => {
    await h.addAccount('gone@a.test', 'user', { addresses: ['gone@a.test'] });
    const account = (await h.accounts.byName('gone@a.test'))!;
    const id = await h.addMessage({ rcpt: ['gone@a.test'], subject: 'held for gone', from: 'friend@sender.test' });
    await h.accounts.update(account.id, { disabled: true });
    const release = await link('gone@a.test', 'release', id);
    const allow = await link('gone@a.test', 'allow', id);
    for (const l of [release, allow]) {
      const c = new Client(h.app);
      expect((await c.get(l)).statusCode, l).toBe(403);
      const res = await c.post(l, {}, { csrfFrom: '/login' });
      expect(res.statusCode, l).toBe(403);
      expect(res.body).toContain('disabled');
    }
    expect(h.released).not.toContain(id);
    expect((await h.lists.list({ addresses: ['gone@a.test'], all: true })).filter((e) => e.owner === 'gone@a.test')).toEqual([]);
  });
});

describe('digests to addresses that cannot be a console username', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('a digest to o\'brien@… or a 65-character address offers no login link, and a link for one says why instead of "try again"', async () => {
    const long = `${'x'.repeat(58)}@a.test`;
    const sent: { to: string; raw: Buffer }[] = [];
    for (const address of ["o'brien@a.test", long]) await h.addMessage({ rcpt: [address], subject: `held for ${address}` });
    await sendDigests({
      config: h.deps.config,
      store: h.store,
      accounts: h.accounts,
      digests: h.digests,
      secret: h.deps.secret,
      publicUrl: 'https://console.example.test/',
      logger: silentLogger(),
      now: Date.now,
      submit: async (env, raw) => (sent.push({ to: env.to[0]!, raw }), 'X'),
    });
    for (const address of ["o'brien@a.test", long]) {
      const mail = sent.find((s) => s.to === address);
      expect(mail, address).toBeDefined();
      const d = await readDigest(mail!.raw);
      expect(pathIn(d.text, 'Release it'), address).toBeDefined();
      expect(pathIn(d.text, 'Open your quarantine (no password needed)'), address).toBeUndefined();
      const c = new Client(h.app);
      const l = `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, '', address, 'login')}`;
      const res = await c.post(l, {}, { csrfFrom: l });
      expect(res.statusCode, address).toBe(403);
      expect(res.body).not.toContain('try again');
      expect(res.body).toContain('cannot have a console account');
      expect(await h.accounts.byName(address)).toBeUndefined();
    }
  });

  it('a recipient whose account an administrator disabled gets no digest (its links would do nothing)', async () => {
    await h.addAccount('off@a.test', 'user', { addresses: ['off@a.test'] });
    await h.accounts.update((await h.accounts.byName('off@a.test'))!.id, { disabled: true });
    await h.addMessage({ rcpt: ['off@a.test'], subject: 'held for off' });
    await h.addMessage({ rcpt: ['on@a.test'], subject: 'held for on' });
    const sent: string[] = [];
    const run = await sendDigests({
      config: h.deps.config,
      store: h.store,
      accounts: h.accounts,
      digests: h.digests,
      secret: h.deps.secret,
      publicUrl: 'https://console.example.test/',
      logger: silentLogger(),
      now: Date.now,
      submit: async (env) => (sent.push(env.to[0]!), 'X'),
    });
    expect(sent).toContain('on@a.test');
    expect(sent).not.toContain('off@a.test');
    expect(run.recipients).not.toContain('off@a.test');
  });
});

describe('TOTP for accounts of an identity provider', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('an OIDC or LDAP account cannot set up a local second factor that its logins would never ask for', async () => {
    for (const source of ['oidc', 'ldap'] as const) {
      const address = `${source}-person@a.test`;
      const c = new Client(h.app);
      const l = `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, '', address, 'login')}`;
      expect((await c.post(l, {}, { csrfFrom: l })).statusCode).toBe(303);
      // The same account as if the provider's first login had made it (its session goes on).
      const account = (await h.accounts.byName(address))!;
      await h.sql.run(q`UPDATE console_accounts SET auth_source = ${source}, external_id = ${`id-${source}`} WHERE id = ${account.id}`);
      const page = await c.get('/account/totp');
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('action="/account/totp/begin"');
      expect(page.body).toContain('set up there');
      const res = await c.post('/account/totp/begin', {}, { csrfFrom: '/account/totp' });
      expect(res.statusCode).toBe(303);
      expect(await h.deps.totp.get(account.id)).toBeUndefined();
      expect((await c.get('/account/totp')).body).toContain('set up two-step login there');
    }
  });
});

describe.each(DIALECTS)('a directory whose login name is the mail address, with digests, on %s', (dialect) => {
  let slapd: PrivateSlapd;
  let h: Harness;
  beforeAll(async () => {
    slapd = await startSlapd(
      [
        { uid: 'pat', password: 'pat directory password', mail: ['pat@a.test'] },
        { uid: 'quin', password: 'quin directory password', mail: ['quin@a.test'] },
        // a login name that looks like someone else's address, with a mailbox of their own
        { uid: 'vic@a.test', password: 'mallory directory password', mail: ['mallory@a.test'] },
      ],
      { 'mail-users': ['pat', 'quin', 'vic@a.test'] },
    );
    const secretFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'mm-secret-')), 'ldap-password');
    writeFileSync(secretFile, `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
    h = await startHarness({
      database: dialect,
      config: {
        console: {
          auth: {
            ldap: {
              url: slapd.url,
              search: { bindDN: SERVICE_DN, password: { file: secretFile } },
              baseDN: `ou=people,${SUFFIX}`,
              userFilter: '(|(mail={username})(uid={username}))',
              groupSearch: { baseDN: `ou=groups,${SUFFIX}` },
              timeoutMs: 2000,
              connectTimeoutMs: 1000,
            },
            roleMapping: [{ group: `cn=mail-users,ou=groups,${SUFFIX}`, role: 'user' }],
          },
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await slapd?.close();
  });

  it('the account a digest link made does not lock the directory person of that name out: their login takes it over', async () => {
    await h.addMessage({ rcpt: ['pat@a.test'], subject: 'held for pat' });
    const viaLink = new Client(h.app);
    const l = `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, '', 'pat@a.test', 'login')}`;
    expect((await viaLink.post(l, {}, { csrfFrom: l })).headers.location).toBe('/quarantine');
    expect(await h.accounts.byName('pat@a.test')).toMatchObject({ authSource: 'local' });

    const pat = new Client(h.app);
    const res = await pat.login('pat@a.test', 'pat directory password');
    expect(res.statusCode, res.body).toBe(303);
    expect((await pat.get('/quarantine')).body).toContain('held for pat');
    expect(await h.accounts.byName('pat@a.test')).toMatchObject({ authSource: 'ldap', role: 'user', addresses: ['pat@a.test'] });
    expect((await h.accounts.list()).filter((a) => a.username === 'pat@a.test')).toHaveLength(1);
    // The link's session has ended, and a later link no longer opens the directory's account.
    expect((await viaLink.get('/quarantine')).headers.location).toMatch(/^\/login/);
    const later = `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, '', 'pat@a.test', 'login')}`;
    expect((await new Client(h.app).post(later, {}, { csrfFrom: later })).statusCode).toBe(403);
    // A wrong password is still wrong.
    expect((await new Client(h.app).login('pat@a.test', 'not the password')).statusCode).toBe(401);
  });

  it('a directory login name alone does not take over a digest-link account: the directory must give that address', async () => {
    const l = `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, '', 'vic@a.test', 'login')}`;
    expect((await new Client(h.app).post(l, {}, { csrfFrom: l })).statusCode).toBe(303);
    const mallory = new Client(h.app);
    expect((await mallory.login('vic@a.test', 'mallory directory password')).statusCode).toBe(401);
    expect((await mallory.get('/quarantine')).headers.location).toMatch(/^\/login/);
    expect(await h.accounts.byName('vic@a.test')).toMatchObject({ authSource: 'local', addresses: ['vic@a.test'] });
  });

  it('a digest-link account an administrator disabled is not taken over by the directory login', async () => {
    const l = `/d/${await issueToken({ config: h.deps.config, digests: h.digests, secret: h.deps.secret, now: Date.now }, '', 'quin@a.test', 'login')}`;
    expect((await new Client(h.app).post(l, {}, { csrfFrom: l })).statusCode).toBe(303);
    await h.accounts.update((await h.accounts.byName('quin@a.test'))!.id, { disabled: true });
    const quin = new Client(h.app);
    const res = await quin.login('quin@a.test', 'quin directory password');
    expect(res.statusCode).toBe(401);
    expect((await quin.get('/quarantine')).headers.location).toMatch(/^\/login/);
    expect(await h.accounts.byName('quin@a.test')).toMatchObject({ authSource: 'local', disabled: true });
  });
});

describe('the queue page between two tenants', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.addAccount('admin-a', 'domainadmin', { domains: ['a.test'] });
  });
  afterAll(async () => h?.close());

  it("a domain admin does not see another domain's remote reply on a message deferred only for that domain", async () => {
    const id = await h.addMessage({ rcpt: ['al@a.test', 'ceo@b.test'], status: 'delivered' });
    const secret = '452 4.2.2 <ceo@b.test>: mailbox full (b.test internal note)';
    await h.store.recordDelivery(id, 'al@a.test', 'delivered', '250 2.0.0 ok');
    await h.store.recordDelivery(id, 'ceo@b.test', 'deferred', secret);
    await h.store.transition(id, ['delivered'], 'deferred', secret);
    const admin = new Client(h.app);
    await admin.login('admin-a');
    const page = await admin.get('/queue');
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('mailbox full');
    expect(page.body).not.toContain('ceo@b.test');
  });

  it("a domain admin's flush of their domain does not hurry a message still pending for another tenant (as retry does not)", async () => {
    const queue = new MemoryQueue();
    h.deps.queueOps = { retry: (id) => retryNow({ store: h.store, queue }, id), flush: (o) => flushDeferred({ store: h.store, queue }, o) };
    const deferred = async (rcpt: string[]) => {
      const id = await h.addMessage({ rcpt, status: 'delivered' });
      for (const r of rcpt) await h.store.recordDelivery(id, r, 'deferred', '451 4.7.1 try later');
      await h.store.transition(id, ['delivered'], 'deferred', '451 4.7.1 try later');
      await queue.enqueue('deliver', id, { jobId: jobIdFor(id, 'deliver', false) });
      return id;
    };
    const own = await deferred(['only@a.test']);
    const shared = await deferred(['al2@a.test', 'cfo@b.test']);
    const admin = new Client(h.app);
    await admin.login('admin-a');
    expect((await admin.post(`/queue/${shared}/retry`, {}, { csrfFrom: '/queue' })).statusCode).toBe(303);
    expect((await h.audit.list({ action: 'queue-retry', limit: 1 })).rows[0]).toMatchObject({ messageId: shared, outcome: 'denied' });
    expect((await admin.post('/queue/flush', { domain: 'a.test' }, { csrfFrom: '/queue' })).statusCode).toBe(303);
    expect((await h.audit.list({ action: 'queue-flush', limit: 1 })).rows[0]).toMatchObject({
      actor: 'admin-a',
      target: 'a.test',
      outcome: 'ok',
      detail: '1 tried again now, 0 skipped',
    });
    // the superadmin's flush of a.test takes both
    await h.addAccount('root', 'superadmin');
    const root = new Client(h.app);
    await root.login('root');
    await root.post('/queue/flush', { domain: 'a.test' }, { csrfFrom: '/queue' });
    expect((await h.audit.list({ action: 'queue-flush', limit: 1 })).rows[0]).toMatchObject({ actor: 'root', detail: '2 tried again now, 0 skipped' });
    expect(own).toBeTruthy();
  });
});

describe('the daily summary mail and the Numbers page agree on who gets it', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.addAccount('ops@localhost', 'domainadmin', { domains: ['a.test'] });
  });
  afterAll(async () => h?.close());

  it('an admin whose username is no deliverable address is told no summary goes to them, and none is sent', async () => {
    const c = new Client(h.app);
    await c.login('ops@localhost');
    const page = await c.get('/stats');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('so none is sent to you');
    const sent: string[] = [];
    await sendDailySummaries({
      config: h.deps.config,
      store: h.store,
      accounts: h.accounts,
      stats: h.deps.stats!,
      publicUrl: 'https://console.example.test/',
      logger: silentLogger(),
      now: Date.now,
      submit: async (env) => (sent.push(env.to[0]!), 'X'),
    });
    expect(sent).toEqual([]);
  });
});
