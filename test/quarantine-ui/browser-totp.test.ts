// Two-step login in a real browser (Debian chromium driven by playwright-core) against the console
// on real stores, listening on loopback: a superadmin whose role requires TOTP is sent to set it up
// right after the password, scans nothing but reads the key off the page (the QR code must load
// under the console's CSP), turns it on with a code computed from that key, sees the recovery codes
// once, and logs in again with the password and a code. At 390 px the pages' content fits the screen.
//
// MAILMOAT_SCREENSHOTS=1 also writes docs/screenshots/{totp-enrol,totp-recovery-codes,login-totp}-390.png.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
import { PASSWORD, startHarness, type Harness } from './harness.ts';
import { launchChromium } from '../support/browser.ts';

const SHOTS = process.env.MAILMOAT_SCREENSHOTS ? path.resolve(import.meta.dirname, '../../docs/screenshots') : null;
/** The machine may be busy with other test files: page loads get time. */
const POLL = { timeout: 15_000, interval: 100 };

describe('two-step login in a browser', () => {
  let h: Harness;
  let browser: Browser;
  let base: string;
  const cspErrors: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ config: { console: { requireTotpFor: ['superadmin'] } } });
    await h.addAccount('root', 'superadmin');
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  async function shot(page: Page, name: string): Promise<void> {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  }
  const watch = (page: Page) =>
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text());
    });
  /** Nothing of the page's own content runs past the viewport (the header is the layout's, made narrow elsewhere). */
  const fitsWidth = (page: Page) =>
    page.evaluate(() => [...document.querySelectorAll('main *')].every((e) => e.getBoundingClientRect().right <= window.innerWidth));

  it('sets TOTP up when required, then logs in with the password and a code from the shown key', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    watch(page);
    await page.goto(`${base}/login`);
    await page.fill('input[name=username]', 'root');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/account\/totp$/);
    expect(await page.locator('.flash.error').innerText()).toContain('Your role requires two-step login');
    // nothing else opens yet
    await page.goto(`${base}/users`);
    await page.waitForURL(/\/account\/totp$/);
    await page.click('button:text-is("Set up two-step login")');
    await page.waitForURL(/\/account\/totp$/);
    const qr = page.locator('img.qr');
    await expect.poll(() => qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), POLL).toBe(true);
    expect(await fitsWidth(page)).toBe(true);
    await shot(page, 'totp-enrol-390');
    const secret = (await page.locator('.totp-secret').innerText()).replace(/\s+/g, '');
    await page.fill('input[name=code]', TOTP.generate({ secret: Secret.fromBase32(secret) }));
    await page.click('button:text-is("Turn on")');
    await expect.poll(() => page.locator('ul.recovery-codes li').count(), POLL).toBe(10);
    await shot(page, 'totp-recovery-codes-390');
    await page.click('text=I have saved them: continue');
    await page.waitForURL(/\/dashboard$/);
    await page.click('header .menu-button'); // at 390 px Log out is in the menu
    await page.click('button:text-is("Log out")');
    await page.waitForURL(/\/login$/);

    // the next login asks for a code; the code that switched TOTP on is spent, so use the next step's
    await page.fill('input[name=username]', 'root');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/login\/totp$/);
    expect(await fitsWidth(page)).toBe(true);
    await page.fill('input[name=code]', '000000');
    await page.click('button:text-is("Log in")');
    await expect.poll(() => page.locator('.flash.error').innerText(), POLL).toContain('That code is not right');
    await shot(page, 'login-totp-390');
    await page.fill('input[name=code]', TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() + 30_000 }));
    await page.click('button:text-is("Log in")');
    await page.waitForURL(/\/dashboard$/);
    await page.goto(`${base}/users`);
    expect(await page.locator('td', { hasText: 'root' }).locator('.badge', { hasText: '2-step' }).count()).toBe(1);
    expect(cspErrors).toEqual([]);
    const actions = (await h.audit.list({ actor: 'root', limit: 20 })).rows.map((r) => `${r.action}:${r.outcome}`);
    expect(actions).toEqual(expect.arrayContaining(['totp-enrol:ok', 'totp-code:denied', 'login:ok']));
    await context.close();
  });
});
