// Digests for every recipient, on the console's real stores (SQLite and PostgreSQL): a recipient
// without an account gets an HTML + text digest whose subject and sender are escaped; each link
// (release, allow, block, not spam, open my quarantine) shows a confirmation page on GET, acts once
// on POST and refuses a second use or an expired link; the magic link creates the end-user account
// once; notice mode sends soon after the hold, batching; two schedulers send once; a domain admin
// sets the mode within the bounds the superadmin gave.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../gateway/log.ts';
import { openDigestStore } from '../../gateway/store/digests.ts';
import { DIALECTS } from '../support/databases.ts';
import { waitFor } from '../support/gateway.ts';
import { issueToken, sendDigests, sendNotices, startDigestScheduler, type DigestDeps } from '../../quarantine-ui/lib/digest.ts';
import { Client, startHarness, type Harness } from './harness.ts';
import { block, pathIn, readDigest, type ReadDigest } from './digest-mail.ts';

const HOSTILE = `<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"`;
const BASE = 'https://console.example.test/';

describe.each(DIALECTS)('digests for every recipient on %s', (dialect) => {
  let h: Harness;
  const sent: { to: string[]; from: string; raw: Buffer; at: number }[] = [];
  let deps: DigestDeps;

  beforeAll(async () => {
    const downstream = [{ host: '127.0.0.1', port: 1 }];
    h = await startHarness({
      database: dialect,
      config: {
        domains: {
          'a.test': { downstream },
          'off.test': { downstream, policy: { digest: 'off' } },
          'n.test': { downstream, policy: { digest: 'notice' } },
        },
        console: { digest: { noticeBatchMs: 300, noticeCheckMs: 100 } },
      },
    });
    deps = {
      config: h.deps.config,
      store: h.store,
      accounts: h.accounts,
      digests: h.digests,
      secret: h.deps.secret,
      publicUrl: BASE,
      logger: silentLogger(),
      now: Date.now,
      submit: async (env, raw) => {
        sent.push({ to: env.to, from: env.from, raw, at: Date.now() });
        return 'X';
      },
    };
  });
  afterAll(async () => h?.close());

  const digestFor = async (address: string): Promise<ReadDigest> => {
    const s = sent.filter((x) => x.to[0] === address).at(-1);
    if (!s) throw new Error(`no digest for ${address}`);
    return readDigest(s.raw);
  };

  it('a recipient without an account gets an HTML digest with a text alternative, hostile text escaped; a domain with digests off gets none', async () => {
    await h.addMessage({ rcpt: ['zed@a.test'], subject: HOSTILE, from: 'spam@sender.test' });
    await h.addMessage({ rcpt: ['quiet@off.test'], subject: 'not for a digest' });
    expect(await h.accounts.byName('zed@a.test')).toBeUndefined();
    const run = await sendDigests(deps);
    expect(run.recipients).toContain('zed@a.test');
    expect(run.recipients).not.toContain('quiet@off.test');
    const raw = sent.find((s) => s.to[0] === 'zed@a.test')!;
    expect(raw.from).toBe(''); // the null sender: a digest never bounces back into a loop
    expect(raw.raw.toString()).toMatch(/^Auto-Submitted: auto-generated\r$/m);
    const d = await readDigest(raw.raw);
    expect(d.contentType).toBe('multipart/alternative');
    expect(d.subject).toBe('Quarantine digest: 1 message(s) held for zed@a.test');
    expect(d.text).toContain(`Subject: ${HOSTILE}`);
    expect(d.text).toContain('Held because: spam score 12.5 >= 10');
    expect(d.html).not.toContain('<script>');
    expect(d.html).not.toContain('<img');
    expect(d.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;');
    for (const label of ['Release it', 'Always allow this sender', 'Block this sender', 'Not spam (learn and release)'])
      expect(pathIn(block(d, HOSTILE), label), label).toMatch(/^\/d\/[\w-]{22}\.[\w-]{43}$/);
    expect(d.html).toContain(`href="${BASE}d/`);
  });

  it('a release link: GET confirms and changes nothing, POST releases once, the second use is refused', async () => {
    const id = await h.addMessage({ rcpt: ['rel@a.test'], subject: 'release me' });
    await sendDigests(deps);
    const link = pathIn(block(await digestFor('rel@a.test'), 'release me'), 'Release it')!;
    const anon = new Client(h.app);
    const page = await anon.get(link);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Release this message');
    expect((await h.store.get(id))!.status).toBe('quarantined');
    expect((await anon.post(link, {}, { csrfFrom: link })).body).toContain('has been released');
    expect(h.released.filter((x) => x === id)).toHaveLength(1);
    const again = await anon.get(link);
    expect(again.statusCode).toBe(410);
    expect(again.body).toContain('This link has been used already.');
    const csrf = await anon.csrf('/login');
    const repost = await anon.post(link, {}, { csrf });
    expect(repost.statusCode).toBe(410);
    expect(h.released.filter((x) => x === id)).toHaveLength(1);
  });

  it('allow and block links put the sender on that recipient’s own list, once', async () => {
    await h.addMessage({ rcpt: ['lists@a.test'], subject: 'friend', from: 'friend@sender.test' });
    await h.addMessage({ rcpt: ['lists@a.test'], subject: 'foe', from: 'foe@sender.test' });
    await sendDigests(deps);
    const d = await digestFor('lists@a.test');
    const anon = new Client(h.app);
    for (const [subject, label, kind, sender] of [
      ['friend', 'Always allow this sender', 'allow', 'friend@sender.test'],
      ['foe', 'Block this sender', 'block', 'foe@sender.test'],
    ] as const) {
      const link = pathIn(block(d, subject), label)!;
      expect((await anon.get(link)).body).toContain(sender);
      const done = await anon.post(link, {}, { csrfFrom: link });
      expect(done.statusCode).toBe(200);
      expect(done.body).toContain(`is now on your ${kind} list`);
      expect((await anon.get(link)).statusCode).toBe(410);
      const rows = await h.lists.list({ addresses: ['lists@a.test'] });
      expect(rows.filter((r) => r.kind === kind && r.text === sender)).toEqual([
        expect.objectContaining({ scope: 'user', owner: 'lists@a.test', createdBy: 'digest:lists@a.test' }),
      ]);
    }
    expect(await h.lists.list({ addresses: ['zed@a.test'] })).toEqual([]);
  });

  it('a not-spam link teaches the filter the message as ham and releases it', async () => {
    const id = await h.addMessage({ rcpt: ['ham@a.test'], subject: 'wanted newsletter' });
    await sendDigests(deps);
    const link = pathIn(block(await digestFor('ham@a.test'), 'wanted newsletter'), 'Not spam (learn and release)')!;
    const anon = new Client(h.app);
    expect((await anon.get(link)).body).toContain('and release it to your mailbox');
    const told = h.told.length;
    const done = await anon.post(link, {}, { csrfFrom: link });
    expect(done.body).toContain('the filter has learned that this message is not spam');
    expect(h.told.slice(told)).toEqual([expect.objectContaining({ cls: 'ham' })]);
    expect(h.released).toContain(id);
    expect((await anon.post(link, {}, { csrf: await anon.csrf('/login') })).statusCode).toBe(410);
    expect(h.told.length).toBe(told + 1);
  });

  it('one recipient cannot release for another: a shared message has no release link, and a forged one is refused', async () => {
    const id = await h.addMessage({ rcpt: ['one@a.test', 'two@a.test'], subject: 'for two' });
    await sendDigests(deps);
    const b = block(await digestFor('one@a.test'), 'for two');
    expect(pathIn(b, 'Release it')).toBeUndefined();
    expect(pathIn(b, 'Not spam (learn)')).toBeDefined();
    const forged = `/d/${await issueToken(deps, id, 'one@a.test', 'release')}`;
    expect((await new Client(h.app).get(forged)).statusCode).toBe(404);
    expect(h.released).not.toContain(id);
  });

  it('the magic link logs in without a password, creating the end-user account once; the second use is refused', async () => {
    await h.addMessage({ rcpt: ['new@a.test'], subject: 'first hold' });
    await sendDigests(deps);
    const login = pathIn((await digestFor('new@a.test')).text, 'Open your quarantine (no password needed)')!;
    const browser = new Client(h.app);
    const confirm = await browser.get(login);
    expect(confirm.body).toContain('Open my quarantine');
    expect(await h.accounts.byName('new@a.test')).toBeUndefined(); // a GET (link scanner) creates nothing
    const done = await browser.post(login, {}, { csrfFrom: login });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/quarantine');
    const q = await browser.get('/quarantine');
    expect(q.statusCode).toBe(200);
    expect(q.body).toContain('first hold');
    expect(q.body).not.toContain('release me'); // only its own address
    expect(await h.accounts.byName('new@a.test')).toMatchObject({ role: 'user', addresses: ['new@a.test'] });
    expect((await new Client(h.app).get(login)).statusCode).toBe(410);
    // a later digest's link logs in to the same account
    await h.addMessage({ rcpt: ['new@a.test'], subject: 'second hold' });
    await sendDigests(deps);
    const later = pathIn((await digestFor('new@a.test')).text, 'Open your quarantine (no password needed)')!;
    const other = new Client(h.app);
    expect((await other.post(later, {}, { csrfFrom: later })).statusCode).toBe(303);
    expect((await h.accounts.list()).filter((a) => a.username === 'new@a.test')).toHaveLength(1);
    expect((await h.audit.list({ actor: 'digest:new@a.test', limit: 10 })).rows.filter((r) => r.action === 'user-create')).toHaveLength(1);
  });

  it('a magic link never opens an administrator account', async () => {
    await h.addAccount('boss@a.test', 'domainadmin', { domains: ['a.test'] });
    const link = `/d/${await issueToken(deps, '', 'boss@a.test', 'login')}`;
    const c = new Client(h.app);
    const r = await c.post(link, {}, { csrfFrom: link });
    expect(r.statusCode).toBe(403);
    expect((await c.get('/quarantine')).statusCode).toBe(303); // still logged out
  });

  it('an expired link is refused with a page that says so', async () => {
    const id = await h.addMessage({ rcpt: ['late@a.test'], subject: 'too late' });
    const old = { ...deps, now: () => Date.now() - (h.deps.config.console.digest.linkTtlHours * 3600_000 + 1000) };
    for (const action of ['release', 'allow', 'login'] as const) {
      const link = `/d/${await issueToken(old, action === 'login' ? '' : id, 'late@a.test', action)}`;
      const c = new Client(h.app);
      const page = await c.get(link);
      expect(page.statusCode).toBe(410);
      expect(page.body).toContain('This link has expired.');
    }
    expect(h.released).not.toContain(id);
    expect(await h.accounts.byName('late@a.test')).toBeUndefined();
  });

  it('notice mode: holds of one recipient within the batch window go out as one notice, soon after; two schedulers send it once', async () => {
    const second = { ...deps, digests: openDigestStore(h.sql) };
    const schedulers = [startDigestScheduler(deps, { dailyEveryMs: 60_000 }), startDigestScheduler(second, { dailyEveryMs: 60_000 })];
    try {
      const t0 = Date.now();
      await h.addMessage({ rcpt: ['fast@n.test'], subject: 'burst one' });
      await h.addMessage({ rcpt: ['fast@n.test'], subject: 'burst two' });
      const notice = await waitFor(async () => sent.find((s) => s.to[0] === 'fast@n.test'), { what: 'the notice', timeoutMs: 10_000 });
      expect(notice.at - t0).toBeLessThan(60_000);
      const d = await readDigest(notice.raw);
      expect(d.subject).toBe('Quarantine notice: 2 message(s) held for fast@n.test');
      expect(d.text).toContain('Subject: burst one');
      expect(d.text).toContain('Subject: burst two');
      await h.addMessage({ rcpt: ['fast@n.test'], subject: 'later one' });
      await waitFor(async () => sent.filter((s) => s.to[0] === 'fast@n.test').length === 2 || undefined, { what: 'the second notice', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 800)); // several more ticks of both schedulers
      const notices = await Promise.all(sent.filter((s) => s.to[0] === 'fast@n.test').map((s) => readDigest(s.raw)));
      expect(notices.map((n) => n.subject)).toEqual([
        'Quarantine notice: 2 message(s) held for fast@n.test',
        'Quarantine notice: 1 message(s) held for fast@n.test',
      ]);
      expect(notices[1]!.text).toContain('Subject: later one');
      expect(await sendDigests(deps)).toMatchObject({ recipients: expect.not.arrayContaining(['fast@n.test']) }); // notice domains get no daily digest
    } finally {
      for (const s of schedulers) s.stop();
    }
  });

  it('two consoles running the daily digest at the same moment send each recipient one digest', async () => {
    await h.addMessage({ rcpt: ['twice@a.test'], subject: 'only once' });
    const second = { ...deps, digests: openDigestStore(h.sql) };
    await Promise.all([sendDigests(deps), sendDigests(second), sendDigests(deps)]);
    expect(sent.filter((s) => s.to[0] === 'twice@a.test')).toHaveLength(1);
  });

  it('a domain admin switches their domain to notices where the superadmin allowed policy.digest, and only then', async () => {
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admin-live', 'domainadmin', { domains: ['live.test'] });
    const root = new Client(h.app);
    await root.login('root');
    const added = await root.post(
      '/domains/new',
      { name: 'live.test', settings: 'downstream:\n  - host: 127.0.0.1\n    port: 2525\n', adminMay: 'spam.threshold' },
      { csrfFrom: '/domains/new' },
    );
    expect(added.statusCode, added.body).toBe(303);
    const admin = new Client(h.app);
    await admin.login('admin-live');
    const refused = await admin.post('/domains/live.test/policy', { policy: 'digest: notice\n' }, { csrfFrom: '/domains/live.test/policy' });
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('policy.digest');
    expect(h.deps.config.domains['live.test']!.policy?.digest).toBeUndefined();
    expect(
      (
        await root.post(
          '/domains/live.test/edit',
          { settings: 'downstream:\n  - host: 127.0.0.1\n    port: 2525\n', adminMay: 'spam.threshold digest' },
          { csrfFrom: '/domains/live.test/edit' },
        )
      ).statusCode,
    ).toBe(303);
    const ok = await admin.post('/domains/live.test/policy', { policy: 'digest: notice\n' }, { csrfFrom: '/domains/live.test/policy' });
    expect(ok.statusCode, ok.body).toBe(303);
    expect(h.deps.config.domains['live.test']!.policy?.digest).toBe('notice');
    const t = Date.now();
    await h.addMessage({ rcpt: ['someone@live.test'], subject: 'live notice' });
    expect((await sendDigests(deps)).recipients).not.toContain('someone@live.test');
    expect((await sendNotices({ ...deps, now: () => t + 60_000 })).recipients).toEqual(['someone@live.test']);
  });
});
