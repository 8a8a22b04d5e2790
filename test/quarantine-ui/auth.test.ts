// Accounts, login, sessions, CSRF and the security headers, through app.inject.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, PASSWORD, startHarness, type Harness } from './harness.ts';
import { hashPassword, verifyPassword } from '../../gateway/passwords.ts';
import { safeNext } from '../../quarantine-ui/routes/auth.ts';

describe('passwords', () => {
  it('scrypt hashes verify, carry their parameters and differ per salt', async () => {
    const a = await hashPassword('s3cret password');
    const b = await hashPassword('s3cret password');
    expect(a).toMatch(/^scrypt\$15\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('s3cret password', a)).toBe(true);
    expect(await verifyPassword('s3cret passwore', a)).toBe(false);
    expect(await verifyPassword('x', 'not a hash')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$40$8$1$AAAA$AAAA')).toBe(false); // absurd cost refused
  });
});

describe('console login and sessions', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: { console: { login: { maxPerIp: 50, maxFailuresPerUser: 3, windowMinutes: 15 } } } });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('gone', 'domainadmin', { domains: ['a.test'] });
    await h.accounts.update((await h.accounts.byName('gone'))!.id, { disabled: true });
  });
  afterAll(async () => h?.close());

  it('an anonymous visitor is sent to the login page', async () => {
    const c = new Client(h.app);
    const res = await c.get('/quarantine?x=1');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Fquarantine%3Fx%3D1');
  });

  it('logs in, rotates the session, and logs out for good', async () => {
    const c = new Client(h.app);
    await c.get('/login');
    const before = c.cookies.get('mailmoat');
    expect(before).toBeTruthy();
    const res = await c.login('admina');
    expect(res.statusCode).toBe(303);
    const after = c.cookies.get('mailmoat');
    expect(after).not.toBe(before);
    const cookie = [res.headers['set-cookie']].flat().join('\n');
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//);
    expect((await c.get('/quarantine')).statusCode).toBe(200);
    // the old (pre-login) cookie is not a session
    const stale = new Client(h.app);
    stale.cookies.set('mailmoat', before!);
    expect((await stale.get('/quarantine')).statusCode).toBe(303);
    // a copy of the logged-in cookie stops working after logout (the server-side session is gone)
    const copy = new Client(h.app);
    copy.cookies.set('mailmoat', after!);
    expect((await copy.get('/quarantine')).statusCode).toBe(200);
    const out = await c.post('/logout', {});
    expect(out.statusCode).toBe(303);
    expect((await copy.get('/quarantine')).statusCode).toBe(303);
    const audit = (await h.audit.list({ actor: 'admina', limit: 10 })).rows.map((r) => `${r.action}:${r.outcome}`);
    expect(audit).toEqual(expect.arrayContaining(['login:ok', 'logout:ok']));
  });

  it('refuses a wrong password, an unknown user and a disabled account with the same answer', async () => {
    for (const [user, pw] of [
      ['admina', 'wrong password'],
      ['nobody', PASSWORD],
      ['gone', PASSWORD],
    ] as const) {
      const c = new Client(h.app);
      const res = await c.login(user, pw);
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('Wrong username or password.');
    }
    const denied = (await h.audit.list({ action: 'login', limit: 20 })).rows.filter((r) => r.outcome === 'denied').map((r) => r.detail);
    expect(denied).toEqual(expect.arrayContaining(['wrong password', 'unknown user', 'account disabled']));
  });

  it('locks a username out for the address that keeps failing, even with the right password', async () => {
    await h.addAccount('target', 'domainadmin', { domains: ['b.test'] });
    for (let i = 0; i < 3; i++) expect((await new Client(h.app, '198.51.100.7').login('target', 'nope nope nope')).statusCode).toBe(401);
    const res = await new Client(h.app, '198.51.100.7').login('target');
    expect(res.statusCode).toBe(401);
    expect(res.body).toContain('Too many failed logins for this username from your address');
    // the real user, from another address, is not locked out
    expect((await new Client(h.app, '192.0.2.80').login('target')).statusCode).toBe(303);
  });

  it('failures from many addresses do not lock the real user out; the failing addresses back off', async () => {
    await h.addAccount('victim', 'domainadmin', { domains: ['b.test'] });
    for (let i = 1; i <= 6; i++) expect((await new Client(h.app, `203.0.113.${i}`).login('victim', 'guess guess guess')).statusCode).toBe(401);
    // an address that failed already waits (the username has more failures than the limit)
    const again = await new Client(h.app, '203.0.113.1').login('victim');
    expect(again.statusCode).toBe(401);
    expect(again.body).toMatch(/Too many failed logins for this username\. Wait \d+ seconds?/);
    // the right password from a clean address logs in
    const real = await new Client(h.app, '192.0.2.81').login('victim');
    expect(real.statusCode).toBe(303);
    const denied = (await h.audit.list({ action: 'login', limit: 50 })).rows.filter((r) => r.target === 'victim' && r.outcome === 'denied');
    expect(denied.map((r) => r.ip)).toContain('203.0.113.1');
  });

  it('refuses a login post without a CSRF token', async () => {
    const c = new Client(h.app);
    await c.get('/login');
    const res = await c.post('/login', { username: 'admina', password: PASSWORD }, { csrf: false });
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('Form expired');
  });

  it('sets a strict CSP and the other security headers on every page', async () => {
    const c = new Client(h.app);
    const res = await c.get('/login');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).not.toMatch(/<script>|<script [^>]*>[^<]|style="/);
  });

  it('only redirects to paths on the console after login', () => {
    expect(safeNext('/quarantine?x=1')).toBe('/quarantine?x=1');
    expect(safeNext('//evil.test/')).toBe('/');
    expect(safeNext('/\\evil.test')).toBe('/');
    expect(safeNext('https://evil.test/')).toBe('/');
    expect(safeNext('/login')).toBe('/');
  });

  it('a password change ends the other sessions', async () => {
    const a = new Client(h.app);
    const b = new Client(h.app);
    await h.addAccount('changer', 'superadmin');
    await a.login('changer');
    await b.login('changer');
    const res = await a.post(
      '/account/password',
      { current: PASSWORD, password: 'a much better password', confirm: 'a much better password' },
      { csrfFrom: '/account' },
    );
    expect(res.statusCode).toBe(303);
    expect((await a.get('/account')).statusCode).toBe(200);
    expect((await b.get('/quarantine')).statusCode).toBe(303);
  });
});

describe('login rate limit per client address', () => {
  it('answers 429 past the limit', async () => {
    const h = await startHarness({ config: { console: { login: { maxPerIp: 3, maxFailuresPerUser: 100, windowMinutes: 15 } } } });
    try {
      const codes = [];
      for (let i = 0; i < 5; i++) codes.push((await new Client(h.app).login(`u${i}`, 'bad password')).statusCode);
      expect(codes).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await h.close();
    }
  });
});

describe('cookies behind HTTPS', () => {
  it('uses a __Host- cookie with Secure and sends HSTS when the public URL is https', async () => {
    const h = await startHarness({ config: { console: { publicUrl: 'https://console.example.test/' } } });
    try {
      const res = await h.app.inject({ method: 'GET', url: '/login' });
      const cookie = [res.headers['set-cookie']].flat().join('\n');
      expect(cookie).toMatch(/^__Host-mailmoat=[^;]+;/);
      expect(cookie).toMatch(/; Secure/i);
      expect(cookie).toMatch(/; Path=\//);
      expect(cookie).not.toMatch(/Domain=/i);
      expect(res.headers['strict-transport-security']).toMatch(/max-age=31536000/);
    } finally {
      await h.close();
    }
  });
});
