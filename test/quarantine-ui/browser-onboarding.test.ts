// A provider onboards a customer domain with the console alone, in Debian's chromium against a
// real in-process gateway (SMTP front and workers on a live config polling the database, the
// suite's Redis, clamd and spamd, the demo mailbox as downstream) and a console that is its own
// node (its own live config and domain sync on the same database): mail to the new domain is
// refused; the superadmin adds the domain (downstream, recipient list, policy keys its admins may
// change), a domain admin and an API token; without a restart or a file change the domain's mail
// is accepted and delivered; the domain admin (on a phone) sees only their domain, changes an
// allowed policy key and is refused another; the token sees only that domain; /api/docs opens;
// after the superadmin removes the domain its mail is refused again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type Page } from 'playwright-core';
import { simpleParser } from 'mailparser';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { mailDate } from '../support/mime.ts';
import { silentLogger } from '../../gateway/log.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { liveConfig } from '../../gateway/config/live.ts';
import { startDomainSync, type DomainSync } from '../../gateway/domains/sync.ts';
import { openDomainStore } from '../../gateway/store/domains.ts';
import { type RunningConsole } from '../../quarantine-ui/server.ts';
import type { Config } from '../../gateway/config/schema.ts';
import { startTestConsole } from '../support/console.ts';
import { launchChromium } from '../support/browser.ts';

const PASSWORD = 'onboarding test password';
const DOMAIN = 'newcustomer.test';
const POLL_MS = 300;

const mail = (to: string, subject: string) =>
  `From: Bob <bob@sender.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\n\r\nWelcome aboard.\r\n`;

describe('a provider onboards a customer domain in the console', () => {
  let gw: TestGateway;
  let sync: DomainSync;
  let ui: RunningConsole;
  let browser: Browser;
  let root: Page;
  let mailboxPort: number;
  const send = (rcpt: string, subject: string) => sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [rcpt] }, mail(rcpt, subject));

  beforeAll(async () => {
    gw = await startTestGateway({ liveDomainsPollMs: POLL_MS });
    mailboxPort = gw.config.domains['example.test']!.downstream[0]!.port;
    const logger = silentLogger();
    // The console is another node: its own live config, kept current by its own domain sync.
    const live = liveConfig({
      ...gw.config,
      console: {
        ...gw.config.console,
        listen: { host: '127.0.0.1', port: 0 },
        digest: { ...gw.config.console.digest, enabled: false },
        dailySummary: { enabled: false, hourUtc: 6 },
      },
    });
    sync = await startDomainSync({ store: openDomainStore(gw.stores.sql), live, logger, intervalMs: POLL_MS });
    const config: Config = live.config;
    ui = await startTestConsole(gw, config, { domainSync: sync });
    await ui.deps.accounts.create({ username: 'root@provider.test', role: 'superadmin', passwordHash: await hashPassword(PASSWORD, { logN: 12, r: 8, p: 1 }) });
    browser = await launchChromium();
    root = await (await browser.newContext()).newPage();
    root.on('dialog', (d) => void d.accept());
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    sync?.stop();
    await gw?.stop();
  });

  async function logIn(page: Page, username: string, password: string) {
    await page.goto(`${ui.url}login`);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/dashboard$/);
  }

  it('adds the domain, its admin and a token in the browser; mail flows without a restart; the admin and the token see only their domain; removal refuses mail again', async () => {
    await logIn(root, 'root@provider.test', PASSWORD);
    const before = await send(`someone@${DOMAIN}`, 'too early');
    expect(before.code).toBe(554);
    expect(before.response).toMatch(/Relay access denied/);

    // Domains → Add a domain: the form's starting settings, edited where a provider would edit them.
    await root.click('nav a:text-is("Domains")');
    await root.click('a:text-is("Add a domain")');
    await root.fill('input[name=name]', DOMAIN);
    const template = await root.inputValue('textarea[name=settings]');
    const settings = template
      .replace('mail.example.net', '127.0.0.1')
      .replace('port: 25', `port: ${mailboxPort}`)
      .replace(/(recipients:\n\s+\w+:) any/, '$1 list\n  list: [someone]')
      .concat('policy:\n  digest: daily\n  spam:\n    threshold: 6\n');
    await root.fill('textarea[name=settings]', settings);
    await root.fill('input[name=adminMay]', 'digest');
    await root.click('button:text-is("Add domain")');
    await root.locator('.flash').first().waitFor(); // saved (on Domains) or not (on the form)
    expect(await root.locator('.flash.error').count(), await root.locator('main').innerText()).toBe(0);
    await root.waitForURL(/\/domains$/);
    expect(await root.locator('.flash.ok').innerText()).toContain(`${DOMAIN}: saved`);
    expect(await root.locator('main table').innerText()).toContain(`127.0.0.1:${mailboxPort}`);

    // Users → a domain admin for the new domain, with the password shown once.
    await root.click('nav a:text-is("Users")');
    await root.fill('input[name=username]', `admin@${DOMAIN}`);
    await root.selectOption('select[name=role]', 'domainadmin');
    await root.fill('input[name=domains]', DOMAIN);
    await root.click('button:text-is("Create with a random password")');
    expect(await root.locator('main').innerText()).toContain(`Created admin@${DOMAIN}`);
    const adminPassword = (await root.locator('.secret').innerText()).trim();
    expect(adminPassword.length).toBeGreaterThan(8);

    // API tokens → a domain admin token for the new domain, shown once.
    await root.goto(`${ui.url}domains`);
    await root.click('a:text-is("API tokens")');
    await root.fill('input[name=name]', 'customer panel');
    await root.selectOption('select[name=role]', 'domainadmin');
    await root.fill('input[name=domains]', DOMAIN);
    await root.click('button:text-is("Create token")');
    const token = (await root.locator('[data-token]').innerText()).trim();
    expect(token.length).toBeGreaterThan(20);

    // No restart, no file: the gateway node takes the domain's mail within seconds, for listed recipients only.
    const accepted = await waitFor(
      async () => {
        const r = await send(`someone@${DOMAIN}`, 'welcome aboard');
        return r.code === 250 ? r : undefined;
      },
      { timeoutMs: 10_000, what: `${DOMAIN} to be accepted` },
    );
    await waitForStatus(gw, accepted.id!, ['delivered']);
    const delivered = await Promise.all((await mailboxMessages(gw, `someone@${DOMAIN}`)).map((b) => simpleParser(b)));
    expect(delivered.map((m) => m.subject)).toEqual(['welcome aboard']);
    expect(delivered[0]!.text).toContain('Welcome aboard.');
    const unknown = await send(`nobody@${DOMAIN}`, 'not listed');
    expect(unknown.code).toBe(550);

    // The domain admin, on a phone: their domain only, its policy within the allowed keys.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const admin = await phone.newPage();
    await logIn(admin, `admin@${DOMAIN}`, adminPassword);
    await admin.goto(`${ui.url}domains`);
    const domainsShown = await admin.locator('main table').innerText();
    expect(domainsShown).toContain(DOMAIN);
    expect(domainsShown).not.toContain('example.test');
    await admin.click('a:text-is("policy")');
    await admin.waitForURL(new RegExp(`/domains/${DOMAIN}/policy$`));
    expect(await admin.locator('main').innerText()).toContain('You may change: policy.digest.');
    const policy = await admin.inputValue('textarea[name=policy]');
    expect(policy).toContain('digest: daily');
    await admin.fill('textarea[name=policy]', policy.replace('digest: daily', 'digest: notice'));
    await admin.click('button:text-is("Save policy")');
    await admin.waitForURL(/\/domains$/);
    expect(await admin.locator('.flash.ok').innerText()).toContain(`${DOMAIN}: saved`);
    await admin.click('a:text-is("policy")');
    const refused = (await admin.inputValue('textarea[name=policy]')).replace('threshold: 6', 'threshold: 20');
    await admin.fill('textarea[name=policy]', refused);
    await admin.click('button:text-is("Save policy")');
    expect(await admin.locator('.flash.error').innerText()).toContain('policy.spam.threshold: domain admins may change only policy.digest');
    expect(await admin.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect((await ui.deps.hostedDomains.store.list()).find((d) => d.name === DOMAIN)!.settings).toMatchObject({
      policy: { digest: 'notice', spam: { threshold: 6 } },
    });
    // Another tenant's domain does not exist for them.
    expect((await admin.goto(`${ui.url}domains/example.test/policy`))!.status()).toBe(404);
    await phone.close();

    // The token: this domain only; the API's documentation opens in the browser.
    const api = (path: string) => fetch(new URL(`api/v1${path}`, ui.url), { headers: { authorization: `Bearer ${token}` } });
    const listed = await api('/domains');
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { domains: { name: string }[] }).domains.map((d) => d.name)).toEqual([DOMAIN]);
    expect((await api(`/domains/${DOMAIN}`)).status).toBe(200);
    expect((await api('/domains/example.test')).status).toBe(404);
    await root.goto(`${ui.url}api/docs`);
    await expect.poll(() => root.locator('.swagger-ui .info .title').innerText(), { timeout: 10_000 }).toContain('mailmoat');

    // Removed in the browser: refused again, without a restart.
    await root.goto(`${ui.url}domains`);
    await root.locator('tr', { hasText: DOMAIN }).locator('button:text-is("Remove")').click();
    await root.waitForURL(/\/domains$/);
    expect(await root.locator('.flash.ok').innerText()).toContain(`${DOMAIN}: removed`);
    await waitFor(async () => ((await send(`someone@${DOMAIN}`, 'too late')).code === 554 ? true : undefined), {
      timeoutMs: 10_000,
      what: `${DOMAIN} to be refused again`,
    });
    // (A mail sent in the poll interval after the click may still be taken: "within seconds".) From then on, refused.
    expect((await send(`someone@${DOMAIN}`, 'still too late')).code).toBe(554);
  }, 60_000);
});
