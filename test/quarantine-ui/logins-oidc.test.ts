// Single sign-on with OpenID Connect in a real browser (Debian chromium driven by playwright-core):
// a real provider (oidc-provider, its development login and consent pages) on 127.0.0.1 in this
// process, the console harness listening on 127.0.0.1. The whole code flow with PKCE, state and
// nonce; the groups claim maps to a domain admin who sees only their domain; an unmapped person
// is refused; a forged state, a replayed answer and an answer without a started sign-on are refused.
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type Page } from 'playwright-core';
import Provider from 'oidc-provider';
import { Client, startHarness, type Harness } from './harness.ts';
import { PROVIDER_UNAVAILABLE } from '../../quarantine-ui/routes/oidc.ts';
import { closedPort, freePort } from '../support/ports.ts';
import { launchChromium } from '../support/browser.ts';

const CLIENT_SECRET = 'a client secret for the test provider';

/** What the provider knows about each person who logs in on its development login page. */
const PEOPLE: Record<string, { groups: string[]; email?: string; verified?: boolean }> = {
  carol: { groups: ['staff', 'mail-admins-a'], email: 'carol@a.test', verified: true },
  dave: { groups: ['sales'], email: 'dave@b.test', verified: true },
  frank: { groups: ['mail-users'], email: 'frank@a.test', verified: true },
  // a provider that lets people type their address and does not say it checked it
  erin: { groups: ['mail-users'], email: 'alice@a.test' },
};

async function startProvider(redirectUri: string): Promise<{ issuer: string; close(): Promise<void> }> {
  let handle: http.RequestListener = (_req, res) => res.end();
  const server = http.createServer((req, res) => handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'mailmoat', client_secret: CLIENT_SECRET, redirect_uris: [redirectUri], token_endpoint_auth_method: 'client_secret_post' }],
    async findAccount(_ctx: unknown, id: string) {
      const person = PEOPLE[id] ?? { groups: [] };
      return {
        accountId: id,
        claims: async () => ({
          sub: `subject-${id}`,
          preferred_username: id,
          email: person.email,
          ...(person.verified === undefined ? {} : { email_verified: person.verified }),
          groups: person.groups,
        }),
      };
    },
    claims: { openid: ['sub'], profile: ['preferred_username'], email: ['email', 'email_verified'], groups: ['groups'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['a cookie key for the test provider'] },
  });
  handle = provider.callback();
  return { issuer, close: () => new Promise((r) => server.close(() => r())) };
}

describe('single sign-on with OpenID Connect in a browser', () => {
  let h: Harness;
  let idp: { issuer: string; close(): Promise<void> };
  let browser: Browser;
  let base: string;
  let inA: string;
  let inB: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    idp = await startProvider(`${base}auth/oidc/callback`);
    const secretFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'mm-secret-')), 'oidc-secret');
    writeFileSync(secretFile, CLIENT_SECRET, { mode: 0o600 });
    h = await startHarness({
      config: {
        console: {
          listen: { host: '127.0.0.1', port },
          publicUrl: base,
          auth: {
            oidc: {
              issuer: idp.issuer,
              clientId: 'mailmoat',
              clientSecret: { file: secretFile },
              scopes: ['openid', 'profile', 'email', 'groups'],
              timeoutMs: 5000,
            },
            roleMapping: [
              { group: 'mail-admins-a', role: 'domainadmin', domains: ['a.test'] },
              { group: 'mail-users', role: 'user' },
            ],
          },
        },
      },
    });
    await h.app.listen({ host: '127.0.0.1', port });
    inA = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'held for a.test' });
    inB = await h.addMessage({ rcpt: ['bob@b.test'], subject: 'held for b.test' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await idp?.close();
  });

  /** From the console's login page through the provider's login and consent pages. */
  async function signOn(page: Page, login: string): Promise<void> {
    await page.goto(`${base}login`);
    await page.click('a:text-is("Log in with single sign-on")');
    await page.waitForURL(`${idp.issuer}/**`);
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'anything');
    await page.click('button[type=submit]');
    await page.waitForSelector('button:text-is("Continue")');
    await page.click('button:text-is("Continue")');
    await page.waitForURL(`${base}**`);
  }

  it('the code flow logs a mapped person in as domain admin of their domain only; the answer cannot be replayed', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const callbacks: string[] = [];
    const authorizations: URL[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${base}auth/oidc/callback`)) callbacks.push(r.url());
      if (r.url().startsWith(`${idp.issuer}/auth?`)) authorizations.push(new URL(r.url()));
    });
    await signOn(page, 'carol');
    expect(new URL(page.url()).pathname).toBe('/dashboard');
    expect(await h.accounts.byName('carol')).toMatchObject({ role: 'domainadmin', domains: ['a.test'], authSource: 'oidc' });
    const row = (await h.audit.list({ actor: 'carol', action: 'login', limit: 1 })).rows[0];
    expect(row).toMatchObject({ outcome: 'ok' });
    expect(row!.detail).toBe('oidc as domainadmin of a.test (groups: mail-admins-a); account created');
    // the authorization request carried PKCE (S256), a state and a nonce, and came back once
    expect(authorizations).toHaveLength(1);
    const sent = Object.fromEntries(authorizations[0]!.searchParams);
    expect(sent).toMatchObject({ client_id: 'mailmoat', response_type: 'code', code_challenge_method: 'S256', redirect_uri: `${base}auth/oidc/callback` });
    for (const k of ['state', 'nonce', 'code_challenge']) expect(sent[k]).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(callbacks).toHaveLength(1);

    await page.goto(`${base}messages/${inA}`);
    expect(await page.locator('main').innerText()).toContain('held for a.test');
    const other = await page.goto(`${base}messages/${inB}`);
    expect(other!.status()).toBe(404);
    expect(await page.locator('main').innerText()).not.toContain('held for b.test');
    expect((await h.audit.list({ actor: 'carol', messageId: inB, limit: 1 })).rows[0]).toMatchObject({
      outcome: 'denied',
      detail: 'message outside the user’s scope',
    });
    await page.goto(`${base}quarantine`);
    const list = await page.locator('main').innerText();
    expect(list).toContain('held for a.test');
    expect(list).not.toContain('held for b.test');

    // The same answer again, in the same browser: the sign-on it belonged to is used up.
    const replay = await page.goto(callbacks[0]!);
    expect(replay!.status()).toBe(400);
    expect(await page.locator('main').innerText()).toContain('This sign-on was not started in this browser');
    await context.close();
  });

  it('a person whose groups claim maps to no role is refused on the console login page, with an audit row', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signOn(page, 'dave');
    expect(new URL(page.url()).pathname).toBe('/auth/oidc/callback');
    expect(await page.locator('[role=alert]').innerText()).toContain('none of your groups gives access to this console');
    expect(await h.accounts.byName('dave')).toBeUndefined();
    const row = (await h.audit.list({ action: 'login', limit: 1 })).rows[0];
    expect(row).toMatchObject({ target: 'dave', outcome: 'denied' });
    expect(row!.detail).toContain('groups: sales');
    await context.close();
  });

  it('an end user gets the address the provider vouched for; an email without email_verified opens nobody’s quarantine', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signOn(page, 'frank');
    expect(await h.accounts.byName('frank')).toMatchObject({ role: 'user', addresses: ['frank@a.test'], authSource: 'oidc' });
    await context.clearCookies();
    await signOn(page, 'erin');
    expect(await page.locator('[role=alert]').innerText()).toContain('no mail address');
    expect(await h.accounts.byName('erin')).toBeUndefined();
    await page.goto(`${base}messages/${inA}`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await context.close();
  });

  it('an answer whose state is not the one this browser started with is refused, and so is one without a started sign-on', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}login`);
    await page.click('a:text-is("Log in with single sign-on")');
    await page.waitForURL(`${idp.issuer}/**`);
    // An attacker's own code and state, planted in the victim's browser (login CSRF).
    const forged = await page.goto(`${base}auth/oidc/callback?code=attackers-code&state=attackers-state`);
    expect(forged!.status()).toBe(400);
    expect(await page.locator('[role=alert]').innerText()).toContain('does not belong to the sign-on started in this browser');
    expect((await h.audit.list({ action: 'login', limit: 1 })).rows[0]).toMatchObject({ outcome: 'denied', detail: 'oidc: state mismatch' });
    expect((await page.goto(`${base}quarantine`))!.url()).toContain('/login');

    const fresh = await browser.newContext();
    const other = await fresh.newPage();
    const res = await other.goto(`${base}auth/oidc/callback?code=x&state=y`);
    expect(res!.status()).toBe(400);
    expect((await h.audit.list({ action: 'login', limit: 1 })).rows[0]).toMatchObject({
      outcome: 'denied',
      detail: 'oidc: no sign-on pending in this session',
    });
    await fresh.close();
    await context.close();
  });
});

describe('single sign-on with the provider down', () => {
  it('says the provider is unavailable, and password logins still work', async () => {
    const dead = await closedPort();
    const h = await startHarness({
      config: { console: { auth: { oidc: { issuer: `http://127.0.0.1:${dead}`, clientId: 'mailmoat', timeoutMs: 2000 }, roleMapping: [] } } },
    });
    try {
      await h.addAccount('root', 'superadmin');
      const c = new Client(h.app);
      const res = await c.get('/auth/oidc/start');
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain(PROVIDER_UNAVAILABLE);
      expect((await h.audit.list({ action: 'login', limit: 1 })).rows[0]!.detail).toMatch(/^oidc unavailable: /);
      expect((await c.login('root')).statusCode).toBe(303);
    } finally {
      await h.close();
    }
  });
});
