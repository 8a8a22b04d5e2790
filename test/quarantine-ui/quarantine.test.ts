// The quarantine list, the message view and preview, the actions, and tenant isolation on every
// route that takes an id — through app.inject on real stores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, rawMessage, startHarness, type Harness } from './harness.ts';
import { DIALECTS } from '../support/databases.ts';
import { ACTIONS } from '../../quarantine-ui/routes/quarantine.ts';
import { POISON_ACTIONS } from '../../quarantine-ui/routes/poison.ts';
import { mailDate } from '../support/mime.ts';

const HOSTILE_HTML = `<p>Dear admin</p><script>window.top.pwned = 1</script><img src=x onerror="window.top.pwned=2">
<a href="javascript:window.top.pwned=3">click</a><img src="https://tracker.test/pixel.gif"><a href="https://evil.test/login">https://bank.test/</a>
<iframe src="https://evil.test/"></iframe><form action="https://evil.test/"><input name=p></form>`;

function hostileRaw(): string {
  return [
    'From: "<img src=x onerror=alert(1)>" <evil@sender.test>',
    'To: alice@a.test',
    'Subject: =?utf-8?B?' + Buffer.from('<script>alert("subject")</script> invoice\u202Egnp.exe').toString('base64') + '?=',
    `Date: ${mailDate()}`,
    'Authentication-Results: mx.gateway.test; spf=fail smtp.mailfrom=sender.test',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/html; charset=utf-8',
    '',
    HOSTILE_HTML,
    '--b',
    'Content-Type: application/octet-stream; name="<svg onload=alert(1)>.exe"',
    'Content-Disposition: attachment; filename="<svg onload=alert(1)>\u202Efdp.exe"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('MZ not really').toString('base64'),
    '--b--',
    '',
  ].join('\r\n');
}

// Issue 9: the same pages (and the same tenant isolation) on SQLite and on PostgreSQL.
describe.each(DIALECTS)('quarantine pages on %s', (database) => {
  let h: Harness;
  let a: Client; // domain admin of a.test
  let b: Client; // domain admin of b.test
  let root: Client;
  let user: Client; // end user alice@a.test
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness({ database });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('adminb', 'domainadmin', { domains: ['b.test'] });
    await h.addAccount('alice', 'user', { addresses: ['alice@a.test'] });
    ids.a1 = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'cheap pills', from: 'spammer@pills.test', score: 15.2 });
    ids.a2 = await h.addMessage({ rcpt: ['carol@a.test'], subject: 'invoice attached', from: 'billing@virus.test', verdict: 'virus', score: 1 });
    ids.b1 = await h.addMessage({ rcpt: ['bob@b.test'], subject: 'for B only', from: 'spammer@pills.test', score: 11 });
    ids.mixed = await h.addMessage({ rcpt: ['alice@a.test', 'bob@b.test'], subject: 'to both', score: 20 });
    ids.hostile = await h.addMessage({ rcpt: ['alice@a.test'], raw: hostileRaw(), subject: '<script>alert("subject")</script>', from: 'evil@sender.test' });
    ids.delivered = await h.addMessage({ rcpt: ['dave@a.test'], status: 'delivered', subject: 'plain delivered' });
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

  it('lists only the messages of the admin’s domains', async () => {
    const pa = (await a.get('/quarantine')).body;
    expect(pa).toContain(ids.a1);
    expect(pa).toContain(ids.a2);
    expect(pa).toContain(ids.mixed);
    expect(pa).not.toContain(ids.b1);
    expect(pa).not.toContain(ids.delivered);
    const pb = (await b.get('/quarantine')).body;
    expect(pb).toContain(ids.b1);
    expect(pb).not.toContain(ids.a1);
    // the mixed message shows B's recipient to B, and only a count of the others
    expect(pb).toContain(ids.mixed);
    expect(pb).not.toContain('alice@a.test');
    const pu = (await user.get('/quarantine')).body;
    expect(pu).toContain(ids.a1);
    expect(pu).not.toContain(ids.a2); // carol's, not alice's
    const pr = (await root.get('/quarantine')).body;
    for (const id of [ids.a1, ids.a2, ids.b1, ids.mixed]) expect(pr).toContain(id);
  });

  it('filters by sender, reason, score, domain and free text — still inside the scope', async () => {
    const rows = (body: string) =>
      [ids.a1, ids.a2, ids.b1, ids.mixed, ids.hostile].filter((id) => body.includes(`value="${id}"`) || body.includes(`/messages/${id}"`));
    expect(rows((await a.get('/quarantine?sender=pills')).body)).toEqual([ids.a1]);
    expect(rows((await root.get('/quarantine?sender=pills')).body).sort()).toEqual([ids.a1, ids.b1].sort());
    expect(rows((await a.get('/quarantine?verdict=virus')).body)).toEqual([ids.a2]);
    expect(rows((await a.get('/quarantine?minscore=15&maxscore=16')).body)).toEqual([ids.a1]);
    expect(rows((await a.get('/quarantine?q=invoice')).body)).toEqual([ids.a2]);
    // Recipient filters match only A's own recipients: B's hidden bob@b.test of the shared message
    // must not answer a search (an oracle for who else got it).
    expect(rows((await a.get('/quarantine?domain=b.test')).body)).toEqual([]);
    expect(rows((await a.get('/quarantine?rcpt=bob')).body)).toEqual([]);
    expect(rows((await a.get(`/quarantine?rcpt=${encodeURIComponent('bob@b.test')}`)).body)).toEqual([]);
    expect(rows((await a.get('/quarantine?q=bob%40b')).body)).toEqual([]);
    expect(rows((await a.get('/log?q=bob%40b')).body)).toEqual([]);
    expect(rows((await a.get('/quarantine?rcpt=alice')).body).sort()).toEqual([ids.a1, ids.mixed, ids.hostile].sort());
    expect(rows((await root.get('/quarantine?rcpt=bob')).body).sort()).toEqual([ids.b1, ids.mixed].sort());
    // SQL metacharacters are just text
    expect((await a.get(`/quarantine?q=${encodeURIComponent("%' OR 1=1 --")}`)).statusCode).toBe(200);
    expect(rows((await a.get(`/quarantine?q=${encodeURIComponent("%' OR 1=1 --")}`)).body)).toEqual([]);
  });

  it('shows a hostile message escaped: subject, names, attachment names, bidi overrides', async () => {
    const res = await a.get(`/messages/${ids.hostile}`);
    expect(res.statusCode).toBe(200);
    const body = res.body;
    expect(body).not.toMatch(/<script>alert|<img src=x onerror|<svg onload/i);
    expect(body).toContain('&lt;script&gt;alert(&quot;subject&quot;)&lt;/script&gt;');
    expect(body).toContain('&lt;svg onload=alert(1)&gt;[U+202E]fdp.exe');
    expect(body).toContain('spf=fail');
    expect(body).toContain('text names another site'); // the phishing link
    expect(body).toMatch(/<iframe class="preview" sandbox="" referrerpolicy="no-referrer"/);
    expect(body).toContain(`src="/messages/${ids.hostile}/preview"`);
  });

  it('serves the preview sanitised, sandboxed by CSP, with remote images blocked until asked for', async () => {
    const res = await a.get(`/messages/${ids.hostile}/preview`);
    expect(res.statusCode).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(/^sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:;/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toContain('Dear admin');
    expect(res.body).not.toMatch(/<script|onerror|javascript:|<iframe|<form|<input|tracker\.test|href=/i);
    const withImages = await a.get(`/messages/${ids.hostile}/preview?images=1`);
    expect(String(withImages.headers['content-security-policy'])).toContain('img-src data: https: http:');
    expect(withImages.body).toContain('https://tracker.test/pixel.gif');
    expect(withImages.body).not.toMatch(/<script|onerror|javascript:/i);
  });

  it('downloads the raw message as an attachment that the browser will not render', async () => {
    const res = await a.get(`/messages/${ids.a1}/raw`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-disposition']).toBe(`attachment; filename="${ids.a1}.eml"`);
    expect(res.body).toContain('Subject: cheap pills');
    expect((await h.audit.list({ messageId: ids.a1, action: 'download', limit: 5 })).rows[0]).toMatchObject({ actor: 'admina', outcome: 'ok' });
  });

  describe('tenant isolation: B guessing A’s message id', () => {
    const gets = ['', '/preview', '/raw'];
    it.each(gets)('GET /messages/:id%s is a 404 with an audit entry', async (suffix) => {
      const before = (await h.audit.list({ actor: 'adminb', limit: 1000 })).total;
      const res = await b.get(`/messages/${ids.a1}${suffix}`);
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain('cheap pills');
      const entries = await h.audit.list({ actor: 'adminb', limit: 1000 });
      expect(entries.total).toBe(before + 1);
      expect(entries.rows[0]).toMatchObject({ messageId: ids.a1, outcome: 'denied', detail: 'message outside the user’s scope' });
    });
    it.each(ACTIONS)('POST /messages/:id/%s is a 404 and changes nothing', async (action) => {
      const res = await b.post(`/messages/${ids.a1}/${action}`, {});
      expect(res.statusCode).toBe(404);
      expect((await h.store.get(ids.a1))!.status).toBe('quarantined');
      expect(h.released).not.toContain(ids.a1);
      expect((await h.lists.list({ all: true })).filter((e) => e.comment.includes(ids.a1))).toEqual([]);
      expect(h.told).toEqual([]);
      expect((await h.audit.list({ actor: 'adminb', limit: 1 })).rows[0]).toMatchObject({ action, messageId: ids.a1, outcome: 'denied' });
    });
    it('POST /messages/:id/request-release is a 404 and asks nothing', async () => {
      const res = await b.post(`/messages/${ids.a1}/request-release`, {});
      expect(res.statusCode).toBe(404);
      expect(await h.requests.forMessage(ids.a1)).toEqual([]);
      expect((await h.audit.list({ actor: 'adminb', limit: 1 })).rows[0]).toMatchObject({ action: 'release-request', messageId: ids.a1, outcome: 'denied' });
    });
    it.each(POISON_ACTIONS)('POST /messages/:id/%s (a message held as poison) is a 404 and changes nothing', async (action) => {
      const res = await b.post(`/messages/${ids.a1}/${action}`, {});
      expect(res.statusCode).toBe(404);
      expect((await h.store.get(ids.a1))!.status).toBe('quarantined');
      expect((await h.audit.list({ actor: 'adminb', limit: 1 })).rows[0]).toMatchObject({ action, messageId: ids.a1, outcome: 'denied' });
    });
    it('bulk actions skip ids outside the scope', async () => {
      const res = await b.post('/quarantine/bulk', { action: 'delete', id: [ids.a1, ids.a2] });
      expect(res.statusCode).toBe(303);
      expect((await h.store.get(ids.a1))!.status).toBe('quarantined');
      expect((await h.store.get(ids.a2))!.status).toBe('quarantined');
    });
    it('an id that does not exist looks the same as another tenant’s', async () => {
      await b.get('/quarantine'); // shows (and clears) flash messages left by earlier tests
      const other = await b.get(`/messages/${ids.a1}`);
      const none = await b.get('/messages/01JNOSUCHMESSAGE0000000000');
      expect(none.statusCode).toBe(404);
      expect(none.body).toBe(other.body.replace(/name="_csrf" value="[^"]+"/, none.body.match(/name="_csrf" value="[^"]+"/)![0]));
    });
    it('an end user cannot open a colleague’s message in the same domain', async () => {
      expect((await user.get(`/messages/${ids.a2}`)).statusCode).toBe(404);
      expect((await user.post(`/messages/${ids.a2}/release`, {})).statusCode).toBe(404);
      expect((await h.store.get(ids.a2))!.status).toBe('quarantined');
    });
    it('every route with a message id in it is covered above', () => {
      const withId = h.app.consoleRoutes.filter((r) => r.includes('/messages/:id'));
      const covered = new Set([
        ...gets.map((g) => `GET /messages/:id${g}`),
        ...[...ACTIONS, ...POISON_ACTIONS].map((x) => `POST /messages/:id/${x}`),
        'POST /messages/:id/request-release',
      ]);
      expect(withId.length).toBe(covered.size);
      for (const r of withId) expect(covered).toContain(r);
    });
  });

  it('a message that also went to another tenant is visible but cannot be acted on', async () => {
    expect((await a.get(`/messages/${ids.mixed}`)).body).toContain('only an administrator of all of them can act on it');
    const res = await a.post(`/messages/${ids.mixed}/delete`, {});
    expect(res.statusCode).toBe(303);
    expect((await h.store.get(ids.mixed))!.status).toBe('quarantined');
    expect((await h.audit.list({ actor: 'admina', messageId: ids.mixed, limit: 1 })).rows[0]).toMatchObject({ action: 'delete', outcome: 'denied' });
    // the superadmin can
    await root.post(`/messages/${ids.mixed}/release`, {});
    expect((await h.store.get(ids.mixed))!.status).toBe('releasing');
  });

  it('refuses every action posted without a CSRF token, changing nothing', async () => {
    for (const action of ACTIONS) {
      const res = await a.post(`/messages/${ids.a1}/${action}`, {}, { csrf: false });
      expect(res.statusCode).toBe(403);
    }
    const forged = await a.post(`/messages/${ids.a1}/release`, {}, { csrf: 'forged-token' });
    expect(forged.statusCode).toBe(403);
    expect((await a.post('/quarantine/bulk', { action: 'delete', id: ids.a1 }, { csrf: false })).statusCode).toBe(403);
    expect((await h.store.get(ids.a1))!.status).toBe('quarantined');
    // a token from another session is no good either
    const other = await b.csrf('/quarantine');
    expect((await a.post(`/messages/${ids.a1}/delete`, {}, { csrf: other })).statusCode).toBe(403);
    expect((await h.store.get(ids.a1))!.status).toBe('quarantined');
    expect((await h.audit.list({ action: 'csrf', limit: 100 })).rows.length).toBeGreaterThanOrEqual(ACTIONS.length + 2);
  });

  it('learns as spam through spamd and says so; an empty DidSet is a failure', async () => {
    h.spamdDidSet = ['local'];
    await a.post(`/messages/${ids.a1}/learn-spam`, {});
    let page = (await a.get(`/messages/${ids.a1}`)).body;
    expect(page).toContain('Learned as spam: learned as spam');
    expect(h.told.at(-1)).toMatchObject({ cls: 'spam' });
    await a.post(`/messages/${ids.a1}/learn-spam`, {});
    page = (await a.get(`/messages/${ids.a1}`)).body;
    expect(page).toContain('already learned as spam');
    h.spamdDidSet = [];
    await a.post(`/messages/${ids.a1}/learn-ham`, {});
    page = (await a.get(`/messages/${ids.a1}`)).body;
    expect(page).toContain('spamd learned nothing');
    h.spamdDidSet = ['local'];
  });

  it('blocks the sender on the recipient domain’s list', async () => {
    await a.post(`/messages/${ids.a2}/block-sender`, {});
    expect(await h.lists.forRecipient('anyone@a.test')).toContainEqual({ kind: 'block', scope: 'domain', text: 'billing@virus.test' });
    expect(await h.lists.forRecipient('bob@b.test')).toEqual([]);
  });

  it('releases once; a second release is refused', async () => {
    const first = await a.post(`/messages/${ids.a1}/release`, {});
    expect(first.statusCode).toBe(303);
    expect(h.released.filter((x) => x === ids.a1)).toHaveLength(1);
    await a.post(`/messages/${ids.a1}/release`, {});
    const page = (await a.get(`/messages/${ids.a1}`)).body;
    expect(page).toContain('Not released: not in quarantine (status: releasing)');
    expect(h.released.filter((x) => x === ids.a1)).toHaveLength(1);
  });

  it('an end user releases and allows the sender on their own list', async () => {
    const id = await h.addMessage({ rcpt: ['alice@a.test'], from: 'friend@pals.test', subject: 'hi alice' });
    await user.post(`/messages/${id}/release-allow`, {});
    expect(h.released).toContain(id);
    expect(await h.lists.forRecipient('alice@a.test')).toContainEqual({ kind: 'allow', scope: 'user', text: 'friend@pals.test' });
    expect(await h.lists.forRecipient('carol@a.test')).not.toContainEqual(expect.objectContaining({ text: 'friend@pals.test' }));
  });

  it('bulk-deletes the selected messages', async () => {
    const x = await h.addMessage({ rcpt: ['zed@a.test'], subject: 'bulk 1' });
    const y = await h.addMessage({ rcpt: ['zed@a.test'], subject: 'bulk 2' });
    const res = await a.post('/quarantine/bulk', { action: 'delete', id: [x, y], back: '?q=bulk' });
    expect(res.headers.location).toBe('/quarantine?q=bulk');
    expect((await h.store.get(x))!.status).toBe('deleted');
    expect((await h.store.get(y))!.status).toBe('deleted');
    expect(await h.blobs.size(x)).toBeUndefined();
    expect((await a.get('/quarantine?q=bulk')).body).toContain('Deleted: 2 message(s).');
  });

  it('pages through a long quarantine', async () => {
    for (let i = 0; i < 55; i++) await h.addMessage({ rcpt: ['pager@b.test'], subject: `page test ${i}` });
    const p1 = (await b.get('/quarantine?q=page+test')).body;
    expect(p1).toContain('Page 1 of 2');
    expect(p1).toContain('href="/quarantine?q=page+test&amp;page=2"');
    const p2 = (await b.get('/quarantine?q=page+test&page=2')).body;
    expect(p2.match(/page test \d+/g)).toHaveLength(5);
  });

  it('renders every page for every role without a server error', async () => {
    for (const c of [a, b, root, user]) {
      for (const page of ['/', '/dashboard', '/quarantine', '/log', '/lists', '/report', '/domains', '/account', `/messages/${ids.hostile}`]) {
        const res = await c.get(page);
        expect([200, 303, 404]).toContain(res.statusCode);
      }
    }
    expect((await user.get('/domains')).statusCode).toBe(404);
    expect((await a.get('/users')).statusCode).toBe(404);
    expect((await a.get('/audit')).statusCode).toBe(404);
    expect((await root.get('/users')).statusCode).toBe(200);
    expect((await root.get('/audit')).statusCode).toBe(200);
  });

  it('uses the raw message helper', () => {
    expect(rawMessage({ html: '<b>x</b>' })).toContain('text/html');
  });
});
