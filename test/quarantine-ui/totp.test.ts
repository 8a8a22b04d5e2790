// The second factor (TOTP) of local console accounts, through app.inject on real stores: enrolment
// confirmed by a code, login in two steps with no session in between, replay and the ±1 step window
// (driven by the console's clock, deps.now), recovery codes used once, the throttle, turning it off,
// a superadmin's reset, CSRF, and the secrets at rest. (Required roles and the command line:
// totp-required.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from 'otpauth';
import { Client, PASSWORD, startHarness, type Harness } from './harness.ts';
import { q } from '../../gateway/store/sql.ts';
import { totpKeys } from '../../quarantine-ui/lib/totp.ts';
import { auditOf, clock, code, enrol } from './totp-helpers.ts';

describe('TOTP for local accounts', () => {
  let h: Harness;
  let time: ReturnType<typeof clock>;
  beforeAll(async () => {
    // A long window: the console's clock (deps.now) runs minutes ahead of the stores' by the end of the file.
    h = await startHarness({ config: { console: { login: { maxPerIp: 200, maxFailuresPerUser: 4, windowMinutes: 60 } } } });
    time = clock(h);
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) await h.addAccount(u, 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('root', 'superadmin');
  });
  afterAll(async () => h?.close());

  it('is switched on only by a current code from the shown key, and shows ten recovery codes once', async () => {
    const c = new Client(h.app);
    await c.login('alice');
    const off = await c.get('/account/totp');
    expect(off.body).toContain('Two-step login is <b>off</b>');
    await c.post('/account/totp/begin', {}, { csrfFrom: '/account/totp' });
    const page = (await c.get('/account/totp')).body;
    expect(page).toMatch(/<img class="qr" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    const secret = /totp-secret">([A-Z2-7 ]+)</.exec(page)![1]!.replace(/ /g, '');
    expect(secret).toHaveLength(32); // 160 bits
    const qr = Buffer.from(/data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)/.exec(page)![1]!, 'base64').toString();
    expect(qr).toMatch(/^<svg /);
    expect(qr).not.toMatch(/style=|<script/i);
    // a wrong code leaves it off
    const wrong = await c.post('/account/totp/confirm', { code: code(secret, time.now, 5) }, { csrfFrom: '/account/totp' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('That code does not match');
    expect((await h.deps.totp.get((await h.accounts.byName('alice'))!.id))!.enabledAt).toBeNull();
    // the right one turns it on; the recovery codes are on that answer and nowhere after
    const ok = await c.post('/account/totp/confirm', { code: code(secret, time.now) }, { csrfFrom: '/account/totp' });
    expect(ok.statusCode).toBe(200);
    const codes = [...ok.body.matchAll(/<li>([0-9a-z-]{19})<\/li>/g)].map((m) => m[1]);
    expect(new Set(codes).size).toBe(10);
    const on = await c.get('/account/totp');
    expect(on.body).toContain('Two-step login is <b>on</b>');
    expect(on.body).toContain('10 unused recovery codes left');
    for (const rc of codes) expect(on.body).not.toContain(rc!);
    expect(await auditOf(h, 'totp-enrol')).toEqual([
      { actor: 'alice', outcome: 'ok', target: 'alice', detail: '' },
      { actor: 'alice', outcome: 'denied', target: 'alice', detail: 'wrong code' },
    ]);
  });

  it('asks for the code after the password; until it is right there is no session: no page, no API, no form', async () => {
    const c = new Client(h.app);
    await c.login('bob');
    time.next();
    const { secret } = await enrol(c, time.now);
    time.next();
    const bobId = (await h.accounts.byName('bob'))!.id;
    const sessions = async () => Number((await h.sql.one<{ n: number }>(q`SELECT count(*) AS n FROM console_sessions WHERE account_id = ${bobId}`))!.n);
    expect(await sessions()).toBe(1); // c's
    const d = new Client(h.app);
    const res = await d.login('bob');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login/totp');
    expect(await sessions()).toBe(1); // none made for d
    // half logged in: anonymous everywhere
    expect((await d.get('/quarantine')).headers.location).toBe('/login?next=%2Fquarantine');
    expect((await d.get('/account')).headers.location).toBe('/login');
    expect((await d.get('/account/totp')).headers.location).toMatch(/^\/login\?next=/);
    const api = await h.app.inject({ method: 'GET', url: '/api/v1/quarantine', headers: { cookie: [...d.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    expect(api.statusCode).toBe(401);
    const csrf = await d.csrf('/login/totp');
    expect((await d.post('/account/totp/begin', {}, { csrf })).statusCode).toBe(401);
    expect((await d.post('/lists', { kind: 'block', owner: 'a.test', entry: 'x@y.test' }, { csrf })).statusCode).toBe(401);
    // a wrong code: refused, counted, audited
    const wrong = await d.post('/login/totp', { code: code(secret, time.now, 4) }, { csrfFrom: '/login/totp' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('That code is not right');
    expect((await d.get('/quarantine')).statusCode).toBe(303);
    // the right code: a new session id, and the pages open
    const before = d.cookies.get('mailmoat');
    const ok = await d.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/');
    expect(d.cookies.get('mailmoat')).not.toBe(before);
    expect(await sessions()).toBe(2);
    expect((await d.get('/quarantine')).statusCode).toBe(200);
    const rows = (await h.audit.list({ actor: 'bob', limit: 20 })).rows.map((r) => `${r.action}:${r.outcome}:${r.detail}`);
    expect(rows).toEqual(expect.arrayContaining(['totp-code:denied:wrong code', 'login:ok:password and code']));
    expect(await h.accounts.loginFailuresSince('bob', 0)).toBe(0); // cleared by the right code only
  });

  it('accepts a code once: the same code again is refused, and so is the code used to switch it on', async () => {
    const c = new Client(h.app);
    await c.login('carol');
    time.next();
    const { secret } = await enrol(c, time.now);
    // same step as the confirmation: its code is spent
    const early = new Client(h.app);
    await early.login('carol');
    expect((await early.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' })).statusCode).toBe(401);
    time.next();
    const first = new Client(h.app);
    await first.login('carol');
    expect((await first.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' })).statusCode).toBe(303);
    const second = new Client(h.app);
    await second.login('carol');
    const again = await second.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' });
    expect(again.statusCode).toBe(401);
    expect((await h.audit.list({ actor: 'carol', action: 'totp-code', limit: 10 })).rows.map((r) => r.detail)).toEqual([
      'code used before (or older than the last one used)',
      'code used before (or older than the last one used)',
    ]);
    await h.accounts.clearLoginFailures('carol');
  });

  it('accepts the codes of one step before and one after, not two', async () => {
    const c = new Client(h.app);
    await c.login('dave');
    time.next();
    const { secret } = await enrol(c, time.now);
    time.next(10);
    const attempt = async (offset: number) => {
      const d = new Client(h.app);
      await d.login('dave');
      return (await d.post('/login/totp', { code: code(secret, time.now, offset) }, { csrfFrom: '/login/totp' })).statusCode;
    };
    expect(await attempt(-2)).toBe(401);
    expect(await attempt(2)).toBe(401);
    expect(await attempt(-1)).toBe(303);
    expect(await attempt(1)).toBe(303);
    // the step after is used now: the current step's code is older, so it is refused too
    expect(await attempt(0)).toBe(401);
    await h.accounts.clearLoginFailures('dave');
  });

  it('lets a recovery code log in once, and audits its use', async () => {
    const c = new Client(h.app);
    await c.login('erin');
    time.next();
    const { codes } = await enrol(c, time.now);
    const d = new Client(h.app);
    await d.login('erin');
    const typed = codes[3]!.toUpperCase().replace(/-/g, ' '); // case and separators do not matter
    const ok = await d.post('/login/totp', { code: typed }, { csrfFrom: '/login/totp' });
    expect(ok.statusCode).toBe(303);
    expect((await d.get('/quarantine')).body).toContain('You logged in with a recovery code; 9 left.');
    const e = new Client(h.app);
    await e.login('erin');
    expect((await e.post('/login/totp', { code: codes[3]! }, { csrfFrom: '/login/totp' })).statusCode).toBe(401);
    expect(await auditOf(h, 'totp-recovery')).toEqual([{ actor: 'erin', outcome: 'ok', target: 'erin', detail: 'recovery code used; 9 left' }]);
    expect((await h.audit.list({ actor: 'erin', action: 'totp-code', limit: 5 })).rows.map((r) => r.detail)).toEqual(['wrong or used recovery code']);
    await h.accounts.clearLoginFailures('erin');
  });

  it('throttles wrong codes like wrong passwords: the right code does not get through from that address', async () => {
    const c = new Client(h.app);
    await c.login('frank');
    time.next();
    const { secret } = await enrol(c, time.now);
    time.next();
    const d = new Client(h.app, '198.51.100.9');
    await d.login('frank');
    for (let i = 0; i < 4; i++) expect((await d.post('/login/totp', { code: '000000' }, { csrfFrom: '/login/totp' })).statusCode).toBe(401);
    const right = await d.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' });
    expect(right.statusCode).toBe(401);
    expect(right.body).toContain('Too many failed logins');
    // and the right password from that address cannot start over with fresh tries
    expect((await new Client(h.app, '198.51.100.9').login('frank')).statusCode).toBe(401);
    // another address still logs in
    const e = new Client(h.app, '198.51.100.10');
    await e.login('frank');
    expect((await e.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' })).statusCode).toBe(303);
  });

  it('does not give fresh tries for giving the password again', async () => {
    const daveSecret = totpKeys(h.deps.secret).open(
      (await h.accounts.byName('dave'))!.id,
      (await h.deps.totp.get((await h.accounts.byName('dave'))!.id))!.sealed,
    );
    time.next(3);
    const ip = '198.51.100.20';
    const d = new Client(h.app, ip);
    await d.login('dave');
    for (let i = 0; i < 3; i++) expect((await d.post('/login/totp', { code: '000000' }, { csrfFrom: '/login/totp' })).statusCode).toBe(401);
    const again = new Client(h.app, ip);
    expect((await again.login('dave')).headers.location).toBe('/login/totp');
    expect((await again.post('/login/totp', { code: '000000' }, { csrfFrom: '/login/totp' })).statusCode).toBe(401);
    const right = await again.post('/login/totp', { code: code(daveSecret, time.now) }, { csrfFrom: '/login/totp' });
    expect(right.statusCode).toBe(401);
    expect(right.body).toContain('Too many failed logins');
    await h.accounts.clearLoginFailures('dave');
  });

  it('forgets a half login after five minutes', async () => {
    time.next();
    const d = new Client(h.app);
    expect((await d.login('bob')).headers.location).toBe('/login/totp');
    const csrf = await d.csrf('/login/totp');
    time.next(11); // 5.5 minutes
    const late = await d.post('/login/totp', { code: '123456' }, { csrf });
    expect(late.statusCode).toBe(303);
    expect(late.headers.location).toBe('/login');
    expect((await d.get('/quarantine')).statusCode).toBe(303);
  });

  it('refuses the forms without a CSRF token', async () => {
    time.next();
    const d = new Client(h.app);
    await d.login('bob');
    expect((await d.post('/login/totp', { code: '123456' }, { csrf: false })).statusCode).toBe(403);
    const c = new Client(h.app);
    await c.login('root');
    for (const url of [
      '/account/totp/begin',
      '/account/totp/confirm',
      '/account/totp/disable',
      '/account/totp/recovery-codes',
      `/users/${(await h.accounts.byName('bob'))!.id}/totp-reset`,
    ]) {
      expect((await c.post(url, { code: '123456', password: PASSWORD }, { csrf: false })).statusCode, url).toBe(403);
    }
    expect(await h.deps.totp.get((await h.accounts.byName('root'))!.id)).toBeUndefined();
    expect((await h.deps.totp.get((await h.accounts.byName('bob'))!.id))!.enabledAt).not.toBeNull();
  });

  it('keeps the key and the recovery codes out of the database in clear', async () => {
    const c = new Client(h.app);
    await c.login('root');
    time.next();
    const { secret, codes } = await enrol(c, time.now);
    const id = (await h.accounts.byName('root'))!.id;
    const row = (await h.sql.one<{ secret: string }>(q`SELECT secret FROM console_totp WHERE account_id = ${id}`))!;
    const dump = JSON.stringify([row, await h.sql.all(q`SELECT * FROM console_recovery_codes WHERE account_id = ${id}`)]);
    expect(dump).not.toContain(secret);
    expect(dump.toLowerCase()).not.toContain(Buffer.from(Secret.fromBase32(secret).bytes).toString('hex'));
    expect(dump).not.toContain(Buffer.from(Secret.fromBase32(secret).bytes).toString('base64').slice(0, 20));
    for (const rc of codes) expect(dump).not.toContain(rc.replace(/-/g, ''));
    // it opens with the console's key, for this account only, and not with another key
    expect(totpKeys(h.deps.secret).open(id, row.secret)).toBe(secret);
    expect(() => totpKeys(h.deps.secret).open(id + 1, row.secret)).toThrow(/does not open/);
    expect(() => totpKeys(Buffer.alloc(32, 9)).open(id, row.secret)).toThrow(/does not open/);
  });

  it('is turned off with a current code or the password, not without', async () => {
    const c = new Client(h.app);
    await c.login('alice');
    const aliceId = (await h.accounts.byName('alice'))!.id;
    // alice has TOTP on: her login went to the code step; do it properly
    time.next();
    const rec = (await h.deps.totp.get(aliceId))!;
    const secret = totpKeys(h.deps.secret).open(aliceId, rec.sealed);
    await c.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' });
    const none = await c.post('/account/totp/disable', { code: '', password: '' }, { csrfFrom: '/account/totp' });
    expect(none.statusCode).toBe(400);
    const wrongPw = await c.post('/account/totp/disable', { password: 'not my password' }, { csrfFrom: '/account/totp' });
    expect(wrongPw.statusCode).toBe(400);
    expect((await h.deps.totp.get(aliceId))!.enabledAt).not.toBeNull();
    const ok = await c.post('/account/totp/disable', { password: PASSWORD }, { csrfFrom: '/account/totp' });
    expect(ok.statusCode).toBe(303);
    expect(await h.deps.totp.get(aliceId)).toBeUndefined();
    expect(await h.deps.totp.recoveryCodesLeft(aliceId)).toBe(0);
    expect((await new Client(h.app).login('alice')).headers.location).toBe('/');
    expect((await h.audit.list({ actor: 'alice', action: 'totp-disable', limit: 5 })).rows.map((r) => `${r.outcome}:${r.detail}`)).toEqual([
      'ok:confirmed with password',
      'denied:wrong password',
      'denied:no code given',
    ]);
    await h.accounts.clearLoginFailures('alice');
  });

  it('makes new recovery codes only for a current code', async () => {
    const c = new Client(h.app);
    await c.login('alice');
    time.next();
    const { secret, codes } = await enrol(c, time.now);
    expect((await c.post('/account/totp/recovery-codes', { code: '' }, { csrfFrom: '/account/totp' })).statusCode).toBe(400);
    time.next();
    const res = await c.post('/account/totp/recovery-codes', { code: code(secret, time.now) }, { csrfFrom: '/account/totp' });
    expect(res.statusCode).toBe(200);
    const fresh = [...res.body.matchAll(/<li>([0-9a-z-]{19})<\/li>/g)].map((m) => m[1]!);
    expect(fresh).toHaveLength(10);
    const d = new Client(h.app);
    await d.login('alice');
    expect((await d.post('/login/totp', { code: codes[0]! }, { csrfFrom: '/login/totp' })).statusCode).toBe(401); // the old ones are gone
    expect((await d.post('/login/totp', { code: fresh[0]! }, { csrfFrom: '/login/totp' })).statusCode).toBe(303);
    await h.accounts.clearLoginFailures('alice');
  });

  it('can be reset by a superadmin only: audited, the user logged out, next login with the password alone', async () => {
    const bob = (await h.accounts.byName('bob'))!;
    time.next();
    const secret = totpKeys(h.deps.secret).open(bob.id, (await h.deps.totp.get(bob.id))!.sealed);
    const b = new Client(h.app);
    await b.login('bob');
    expect((await b.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' })).statusCode).toBe(303);
    // a domain admin cannot (the page does not exist for them)
    const carol = new Client(h.app);
    await carol.login('carol');
    time.next();
    const carolSecret = totpKeys(h.deps.secret).open(
      (await h.accounts.byName('carol'))!.id,
      (await h.deps.totp.get((await h.accounts.byName('carol'))!.id))!.sealed,
    );
    await carol.post('/login/totp', { code: code(carolSecret, time.now) }, { csrfFrom: '/login/totp' });
    expect((await carol.post(`/users/${bob.id}/totp-reset`, {}, { csrfFrom: '/account' })).statusCode).toBe(404);
    expect(await h.deps.totp.get(bob.id)).toBeDefined();
    // the superadmin (root has TOTP on from an earlier test)
    const root = new Client(h.app);
    await root.login('root');
    time.next();
    const rootSecret = totpKeys(h.deps.secret).open(
      (await h.accounts.byName('root'))!.id,
      (await h.deps.totp.get((await h.accounts.byName('root'))!.id))!.sealed,
    );
    await root.post('/login/totp', { code: code(rootSecret, time.now) }, { csrfFrom: '/login/totp' });
    const users = await root.get('/users');
    expect(users.body).toContain(`action="/users/${bob.id}/totp-reset"`);
    const res = await root.post(`/users/${bob.id}/totp-reset`, {}, { csrfFrom: '/users' });
    expect(res.statusCode).toBe(303);
    expect(await h.deps.totp.get(bob.id)).toBeUndefined();
    expect((await b.get('/quarantine')).statusCode).toBe(303); // bob's session ended
    expect((await new Client(h.app).login('bob')).headers.location).toBe('/');
    expect(await auditOf(h, 'totp-reset')).toEqual([{ actor: 'root', outcome: 'ok', target: 'bob', detail: 'second factor removed; sessions ended' }]);
  });
});
