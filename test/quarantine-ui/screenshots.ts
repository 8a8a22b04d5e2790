// `npm run screenshots`: pictures of the console's main pages at a phone's width (390 px) and a
// laptop's (1280 px), written to docs/screenshots/<name>-<width>.png for the README.
//
// What it shows is the real console (same routes, views, CSS and script) on real SQLite stores,
// filled with the demo data the phone-width browser test checks (demo-data.ts); the mail engines
// are not running, so the data is seeded rather than scanned. Each picture is the visible window
// only, not the whole page, to keep the files small.
//
// To add a page: add a line to SHOTS (and its seed data to demo-data.ts if it needs some).
import { mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { PASSWORD, startHarness } from './harness.ts';
import { DEMO_CONFIG, DEMO_USERS, TOTP_USER, demoUrl, seedDemo, type DemoIds, type DemoRole } from './demo-data.ts';
import { launchChromium } from '../support/browser.ts';

interface Shot {
  name: string;
  path: string;
  /** half-login: TOTP_USER after the password, before the code (/login/totp). */
  as: DemoRole | 'anonymous' | 'half-login';
  /** Only at this width (default: both). */
  width?: number;
  /** Open the phone menu first. */
  menu?: boolean;
  /** Scroll this element into view first (the window shows only part of the page). */
  scrollTo?: string;
}

const SHOTS: Shot[] = [
  { name: 'login', path: '/login', as: 'anonymous' },
  { name: 'dashboard', path: '/dashboard', as: 'superadmin' },
  { name: 'quarantine', path: '/quarantine', as: 'domainadmin' },
  { name: 'message', path: '/messages/{message}', as: 'domainadmin' },
  { name: 'message-log', path: '/log', as: 'domainadmin' },
  { name: 'domains', path: '/domains', as: 'superadmin' },
  { name: 'numbers', path: '/stats', as: 'superadmin', width: 1280 },
  // on a phone the totals fill the first screen: show the charts
  { name: 'numbers', path: '/stats', as: 'superadmin', width: 390, scrollTo: 'main .card:has(svg.chart) >> nth=0' },
  { name: 'queue', path: '/queue', as: 'superadmin' },
  { name: 'totp-setup', path: '/account/totp', as: 'user' },
  { name: 'login-totp', path: '/login/totp', as: 'half-login' },
  { name: 'digest-link', path: '/d/{digest}', as: 'anonymous' },
  { name: 'menu', path: '/quarantine', as: 'superadmin', width: 390, menu: true },
];
const WIDTHS = [
  { width: 390, height: 844 },
  { width: 1280, height: 800 },
];
const OUT = path.resolve(import.meta.dirname, '../../docs/screenshots');

async function main(): Promise<void> {
  const h = await startHarness({ learner: true, config: DEMO_CONFIG });
  let browser: Browser | undefined;
  try {
    const ids: DemoIds = await seedDemo(h);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    const url = (p: string) => demoUrl(base, p, ids);
    browser = await launchChromium(process.env.CHROMIUM);
    const pages = new Map<string, Page>();
    const pageOf = async (who: Shot['as']): Promise<Page> => {
      let page = pages.get(who);
      if (page) return page;
      page = await (await browser!.newContext({ viewport: WIDTHS[0] })).newPage();
      if (who !== 'anonymous') {
        await page.goto(url('/login'));
        await page.fill('input[name=username]', who === 'half-login' ? TOTP_USER : DEMO_USERS[who]);
        await page.fill('input[name=password]', PASSWORD);
        await page.click('button[type=submit]');
        await page.waitForURL(who === 'half-login' ? /\/login\/totp$/ : /\/(dashboard|quarantine)$/);
      }
      pages.set(who, page);
      return page;
    };
    mkdirSync(OUT, { recursive: true });
    for (const shot of SHOTS) {
      for (const size of WIDTHS.filter((w) => !shot.width || w.width === shot.width)) {
        const page = await pageOf(shot.as);
        await page.setViewportSize(size);
        await page.goto(url(shot.path));
        if (shot.menu) await page.click('header .menu-button');
        if (shot.scrollTo) await page.locator(shot.scrollTo).evaluate((e) => e.scrollIntoView({ block: 'start' }));
        // a sandboxed preview frame paints a moment after its page
        if (await page.locator('iframe.preview').count()) await page.waitForTimeout(300);
        const file = path.join(OUT, `${shot.name}-${size.width}.png`);
        rmSync(file, { force: true });
        await page.screenshot({ path: file });
        console.log(`${path.relative(process.cwd(), file)}  ${Math.round(statSync(file).size / 1024)} KB`);
      }
    }
  } finally {
    await browser?.close();
    await h.close();
  }
}

await main();
