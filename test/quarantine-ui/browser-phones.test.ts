// Every console page at a phone's width (390×844), a tablet's (800) and a laptop's (1280×800) in a real browser
// (Debian chromium driven by playwright-core), as superadmin, domain admin and end user: nothing is
// wider than the screen, the navigation and Log out are reachable behind the menu button (also
// without JavaScript), and a quarantine row is shown as a card with each value labelled.
// The console runs on real stores with demo data (demo-data.ts); no mail engines are needed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PASSWORD, startHarness, type Harness } from './harness.ts';
import { Secret, TOTP } from 'otpauth';
import { DEMO_CONFIG, DEMO_USERS, TOTP_USER, demoUrl, seedDemo, type DemoIds, type DemoRole } from './demo-data.ts';
import { launchChromium } from '../support/browser.ts';

type Who = DemoRole | 'anonymous';
const EVERYONE: Who[] = ['superadmin', 'domainadmin', 'user'];
const ADMINS: Who[] = ['superadmin', 'domainadmin'];

/** Every page of the console and who may open it; `{message}`, `{domain}`, `{digest}` come from the demo data (demoUrl). */
const PAGES: { path: string; as: Who[] }[] = [
  { path: '/login', as: ['anonymous'] },
  { path: '/d/{digest}', as: ['anonymous'] },
  { path: '/dashboard', as: ADMINS },
  { path: '/quarantine', as: EVERYONE },
  { path: '/messages/{message}', as: EVERYONE },
  { path: '/requests', as: EVERYONE },
  { path: '/log', as: EVERYONE },
  { path: '/lists', as: EVERYONE },
  { path: '/report', as: EVERYONE },
  { path: '/account', as: EVERYONE },
  // alice is half-way through setting it up (the QR code), the others have it off
  { path: '/account/totp', as: EVERYONE },
  { path: '/domains', as: ADMINS },
  { path: '/domains/{domain}/policy', as: ADMINS },
  { path: '/domains/{domain}/edit', as: ['superadmin'] },
  { path: '/domains/new', as: ['superadmin'] },
  { path: '/tokens', as: ADMINS },
  { path: '/users', as: ['superadmin'] },
  { path: '/audit', as: ['superadmin'] },
  { path: '/learner', as: ['superadmin'] },
  { path: '/stats', as: ADMINS },
  { path: '/stats?range=30d&domain={domain}', as: ADMINS },
  { path: '/queue', as: ADMINS },
];

const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 800 };
/** Between the two: the widest window that still gets the phone layout is 900 px (console.css). */
const TABLET = { width: 800, height: 1000 };

describe('the console at phone and laptop widths', () => {
  let h: Harness;
  let ids: DemoIds;
  let base: string;
  let browser: Browser;
  const pages = new Map<Who, Page>();
  const contexts: BrowserContext[] = [];

  const url = (p: string) => demoUrl(base, p, ids);

  async function logIn(context: BrowserContext, who: DemoRole): Promise<Page> {
    const page = await context.newPage();
    await page.goto(url('/login'));
    await page.fill('input[name=username]', DEMO_USERS[who]);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/(dashboard|quarantine)$/);
    return page;
  }

  async function newContext(o: { javaScriptEnabled?: boolean } = {}): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: PHONE, ...o });
    context.setDefaultTimeout(5000); // a missing element fails fast: the pages are local and small
    contexts.push(context);
    return context;
  }

  /** How far the page is wider than the window (0: not at all), and the widest offenders. */
  const overflow = (page: Page) =>
    page.evaluate(() => {
      const width = window.innerWidth;
      const excess = document.documentElement.scrollWidth - width;
      const culprits =
        excess <= 0
          ? []
          : [...document.querySelectorAll('body *')]
              .map((e) => ({ e, right: e.getBoundingClientRect().right }))
              .sort((x, y) => y.right - x.right)
              .slice(0, 3)
              .map(({ e, right }) => `${e.tagName.toLowerCase()}${e.className ? '.' + String(e.className).replace(/ /g, '.') : ''} (${Math.round(right)} px)`);
      return { excess: Math.max(0, excess), culprits };
    });

  /** The element is shown and lies inside the window. */
  const reachable = (page: Page, selector: string) =>
    page.locator(selector).evaluateAll((els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return {
          text: (e.textContent ?? '').trim(),
          shown: r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden',
          inside: r.left >= 0 && r.right <= window.innerWidth,
        };
      }),
    );

  beforeAll(async () => {
    h = await startHarness({ learner: true, config: DEMO_CONFIG });
    ids = await seedDemo(h);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
    pages.set('anonymous', await (await newContext()).newPage());
    for (const who of EVERYONE as DemoRole[]) pages.set(who, await logIn(await newContext(), who));
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await h?.close();
  });

  it('no page is wider than the window at 390, 800 or 1280 px, for each role', async () => {
    const problems: string[] = [];
    // each role's browser tab goes through its pages; the tabs run side by side
    await Promise.all(
      [...pages].map(async ([who, page]) => {
        for (const { path } of PAGES.filter((p) => p.as.includes(who))) {
          await page.setViewportSize(PHONE);
          const res = await page.goto(url(path));
          if (res?.status() !== 200) problems.push(`${who} ${path}: status ${res?.status()}`);
          for (const size of [PHONE, TABLET, LAPTOP]) {
            await page.setViewportSize(size);
            const o = await overflow(page);
            if (o.excess > 0) problems.push(`${who} ${path} at ${size.width} px: ${o.excess} px too wide (${o.culprits.join(', ')})`);
          }
        }
      }),
    );
    expect(problems.sort()).toEqual([]);
  });

  /** Problems of the page at each width: status, overflow. */
  async function fits(page: Page, label: string): Promise<string[]> {
    const problems: string[] = [];
    for (const size of [PHONE, TABLET, LAPTOP]) {
      await page.setViewportSize(size);
      const o = await overflow(page);
      if (o.excess > 0) problems.push(`${label} at ${size.width} px: ${o.excess} px too wide (${o.culprits.join(', ')})`);
    }
    return problems;
  }

  it('the login page with its single sign-on button, and the two-step login’s code page and “on” state, fit every width', async () => {
    const page = await (await newContext()).newPage();
    await page.goto(url('/login'));
    expect(await page.locator('p.sso a').innerText()).toBe('Log in with Example Corp single sign-on');
    const problems = await fits(page, '/login');
    await page.setViewportSize(PHONE);
    await page.fill('input[name=username]', TOTP_USER);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/login\/totp/);
    problems.push(...(await fits(page, '/login/totp')));
    await page.setViewportSize(PHONE);
    await page.fill('input[name=code]', TOTP.generate({ secret: Secret.fromBase32(ids.totpSecret) }));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/(dashboard|quarantine)$/);
    await page.goto(url('/account/totp'));
    expect(await page.locator('main').innerText()).toContain('Two-step login is on');
    problems.push(...(await fits(page, '/account/totp (on)')));
    expect(problems).toEqual([]);
  });

  it('the charts of the Numbers page have readable text at 390 px, and one drawing each at every width', async () => {
    const page = pages.get('domainadmin')!;
    await page.setViewportSize(PHONE);
    await page.goto(url('/stats'));
    /** For each chart shown: the height of its smallest text on screen, and its right edge. */
    const charts = () =>
      page.locator('svg.chart').evaluateAll((svgs) =>
        svgs
          .filter((s) => s.getBoundingClientRect().width > 0)
          .map((s) => ({
            smallestText: Math.min(...[...s.querySelectorAll('text')].map((t) => t.getBoundingClientRect().height)),
            right: s.getBoundingClientRect().right,
            window: window.innerWidth,
          })),
      );
    const phone = await charts();
    expect(phone).toHaveLength(3);
    for (const c of phone) {
      expect(c.smallestText).toBeGreaterThanOrEqual(10);
      expect(c.right).toBeLessThanOrEqual(c.window);
    }
    await page.setViewportSize(LAPTOP);
    expect(await charts()).toHaveLength(3);
  });

  it('at 390 px the navigation is behind a menu button that opens it: every link and Log out are on screen', async () => {
    for (const who of EVERYONE) {
      const page = pages.get(who)!;
      await page.setViewportSize(PHONE);
      await page.goto(url('/quarantine'));
      expect(
        (await reachable(page, 'header nav a')).some((l) => l.shown),
        `${who}: navigation collapsed`,
      ).toBe(false);
      await page.click('header .menu-button');
      const links = await reachable(page, 'header nav a');
      expect(links.length, who).toBeGreaterThanOrEqual(5);
      expect(
        links.filter((l) => !l.shown || !l.inside),
        `${who}: links off screen`,
      ).toEqual([]);
      expect(await reachable(page, 'header button:text-is("Log out")'), who).toEqual([{ text: 'Log out', shown: true, inside: true }]);
      // a link leads where it says
      await page.click('header nav a:text-is("Message log")');
      await page.waitForURL(/\/log$/);
    }
  });

  it('the menu opens without JavaScript too, and Log out works from it', async () => {
    const context = await newContext({ javaScriptEnabled: false });
    const page = await logIn(context, 'superadmin');
    await page.goto(url('/users'));
    await page.click('header .menu-button');
    const links = await reachable(page, 'header nav a');
    expect(links.map((l) => l.text)).toEqual(expect.arrayContaining(['Dashboard', 'Quarantine', 'Users', 'Audit log']));
    expect(links.filter((l) => !l.shown || !l.inside)).toEqual([]);
    await page.click('header button:text-is("Log out")');
    await page.waitForURL(/\/login/);
    expect((await overflow(page)).excess).toBe(0);
  });

  it('at 1280 px the navigation is shown without a menu button', async () => {
    const page = pages.get('superadmin')!;
    await page.setViewportSize(LAPTOP);
    await page.goto(url('/quarantine'));
    expect(await page.locator('header .menu-button').isVisible()).toBe(false);
    const links = await reachable(page, 'header nav a');
    expect(links.length).toBeGreaterThanOrEqual(9);
    expect(links.filter((l) => !l.shown || !l.inside)).toEqual([]);
    expect(await page.locator('header button:text-is("Log out")').isVisible()).toBe(true);
  });

  it('at 390 px a quarantine row is a card with each value under its column’s name', async () => {
    const page = pages.get('domainadmin')!;
    await page.setViewportSize(PHONE);
    await page.goto(url('/quarantine'));
    const row = page.locator('table tbody tr', { hasText: 'Cheap watches' });
    const card = await row.evaluate((tr) => {
      const r = tr.getBoundingClientRect();
      const cells = [...tr.querySelectorAll('td')].map((td) => ({
        label: getComputedStyle(td, '::before').content,
        display: getComputedStyle(td).display,
        text: (td.textContent ?? '').trim().replace(/\s+/g, ' '),
      }));
      return { left: r.left, right: r.right, display: getComputedStyle(tr).display, cells, window: window.innerWidth };
    });
    expect(card.display).not.toBe('table-row');
    expect(card.right).toBeLessThanOrEqual(card.window);
    expect(card.left).toBeGreaterThanOrEqual(0);
    const cell = (label: string) => card.cells.find((c) => c.label === `"${label}"`);
    expect(cell('Subject')?.text).toBe('Cheap watches, 90% off this week only');
    expect(cell('From')?.text).toBe('offers@deals.example');
    expect(cell('To')?.text).toContain('alice@a.test');
    expect(cell('Reason')?.text).toContain('high-spam');
    expect(cell('Score')?.display).not.toBe('table-cell');
    // the long subject of another row wraps inside the window
    const long = await page.locator('td', { hasText: 'URGENT_ACTION_REQUIRED' }).first().boundingBox();
    expect(long!.x + long!.width).toBeLessThanOrEqual(PHONE.width);
    // at 1280 px it is a table again
    await page.setViewportSize(LAPTOP);
    expect(await row.evaluate((tr) => getComputedStyle(tr).display)).toBe('table-row');
  });

  it('the message preview fits the phone’s width, and a plain text message’s long lines wrap inside it', async () => {
    const page = pages.get('user')!;
    await page.setViewportSize(PHONE);
    await page.goto(url('/messages/{message}'));
    const frame = await page.locator('iframe.preview').boundingBox();
    expect(frame!.x).toBeGreaterThanOrEqual(0);
    expect(frame!.x + frame!.width).toBeLessThanOrEqual(PHONE.width);
    expect(frame!.width).toBeGreaterThan(300);
    await page.goto(url('/messages/{plain}'));
    const preview = page.frame({ url: /\/preview$/ })!;
    await expect.poll(() => preview.locator('body').innerText()).toContain('Genuine replica watches');
    const text = await preview.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: document.documentElement.clientWidth }));
    expect(text.scroll).toBeLessThanOrEqual(text.width);
  });
});
