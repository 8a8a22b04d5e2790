// Numbers, the queue page and the daily summary against a real in-process gateway (SMTP, scan
// and delivery workers, the suite's Redis, clamd and spamd; the demo mailbox for example.test and
// a scripted peer that defers for slow.test) and two consoles on the same database (two nodes),
// driven in Debian's chromium: a refusal at SMTP is counted on the Numbers page; a message
// deferred by a refusing downstream shows on the queue page with its error, and "Retry now" and
// "Flush" deliver it once the downstream takes mail; the daily summary is delivered once with the
// day's numbers though both consoles run it; the pages fit a 390 px wide screen.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type Page } from 'playwright-core';
import { simpleParser } from 'mailparser';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { startScriptedPeer, type ScriptedPeer } from '../support/scripted-peer.ts';
import { mailDate } from '../support/mime.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { type RunningConsole } from '../../quarantine-ui/server.ts';
import { startTestConsole, testConsoleConfig } from '../support/console.ts';
import { launchChromium } from '../support/browser.ts';

const PASSWORD = 'numbers test password';
const POLL = { timeout: 15_000, interval: 100 };
const DEFER = '451 4.3.2 mailbox server busy, try later (scripted)';

const mail = (to: string, subject: string, body = 'Hello, see you tomorrow.') =>
  `From: Bob <bob@sender.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\n\r\n${body}\r\n`;

describe('numbers, queue and daily summary on a running gateway', () => {
  let gw: TestGateway;
  let peer: ScriptedPeer;
  let ui: RunningConsole;
  let ui2: RunningConsole;
  let browser: Browser;
  let root: Page;

  async function consoleOn(): Promise<RunningConsole> {
    const config = testConsoleConfig(gw, { dailySummary: { enabled: false, hourUtc: 6 } });
    return startTestConsole(gw, config);
  }

  async function deferred(subject: string): Promise<string> {
    const r = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['carol@slow.test'] }, mail('carol@slow.test', subject));
    expect(r.code).toBe(250);
    await waitForStatus(gw, r.id!, ['deferred']);
    return r.id!;
  }

  beforeAll(async () => {
    peer = await startScriptedPeer({ rcpt: () => DEFER });
    gw = await startTestGateway({
      domains: { 'example.test': {}, 'slow.test': { downstream: [{ host: '127.0.0.1', port: peer.port }] } },
      // The next attempt after a deferral is far away: only "Retry now" or "Flush" makes it happen in the test.
      overrides: { delivery: { retryDelayMs: 600_000, maxRetryDelayMs: 600_000, connectTimeoutMs: 3_000 } },
    });
    [ui, ui2] = await Promise.all([consoleOn(), consoleOn()]);
    const hash = await hashPassword(PASSWORD, { logN: 12, r: 8, p: 1 });
    await ui.deps.accounts.create({ username: 'root@example.test', role: 'superadmin', passwordHash: hash });
    await ui.deps.accounts.create({ username: 'admin@example.test', role: 'domainadmin', domains: ['example.test'], passwordHash: hash });
    // An admin who turned the daily summary off (the Numbers page's button: numbers.test.ts).
    const quiet = await ui.deps.accounts.create({ username: 'quiet@example.test', role: 'domainadmin', domains: ['example.test'], passwordHash: hash });
    await ui.deps.stats!.setSummaryOptOut(quiet.id, true);
    browser = await launchChromium();
    const context = await browser.newContext();
    root = await context.newPage();
    root.on('dialog', (d) => void d.accept());
    await root.goto(`${ui.url}login`);
    await root.fill('input[name=username]', 'root@example.test');
    await root.fill('input[name=password]', PASSWORD);
    await root.click('button[type=submit]');
    await root.waitForURL(/\/dashboard$/);
  });

  afterAll(async () => {
    await browser?.close();
    await ui2?.close();
    await ui?.close();
    await gw?.stop();
    await peer?.close();
  });

  /**
   * The Numbers page's figures for a domain today, read again until they are `expected`: a delivery
   * is counted just after its final state is committed and the spool cleared, and each node adds
   * its counts every 5 s (done here at once), as a user reloading the page would see.
   */
  async function expectNumbers(domain: string, kinds: string[], expected: string[]): Promise<void> {
    const read = async () => {
      await gw.stores.stats!.flush();
      await root.goto(`${ui.url}stats?range=1d&domain=${domain}`);
      return Promise.all(kinds.map((k) => root.locator(`b[data-kind="${k}"]`).innerText()));
    };
    await expect.poll(read, POLL).toEqual(expected);
  }

  it('counts a refusal at SMTP and an accepted message for their domain on the Numbers page', async () => {
    const big = await sendRaw(
      gw.smtpPort,
      { from: 'bob@sender.test', to: ['alice@example.test'] },
      mail('alice@example.test', 'too big', 'x'.repeat(76) + '\r\n'.repeat(1) + ('y'.repeat(998) + '\r\n').repeat(260)),
    );
    expect(big.code).toBe(552);
    const ok = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, mail('alice@example.test', 'fine'));
    expect(ok.code).toBe(250);
    await waitForStatus(gw, ok.id!, ['delivered']);
    await expectNumbers('example.test', ['refused', 'received', 'delivered'], ['1', '1', '1']);
    await root.goto(`${ui.url}stats?range=7d`);
    expect(await root.locator('tr[data-domain="example.test"]').innerText()).toMatch(/example\.test\s+1\s+0\s+0\s+1/);
  });

  it('shows a deferred message with its error; Retry now and Flush deliver once the downstream takes mail', async () => {
    const first = await deferred('deferred one');
    await root.goto(`${ui.url}queue`);
    expect(await root.locator('b[data-state="deferred"]').innerText()).toBe('1');
    const dest = root.locator('tr[data-destination="slow.test"]');
    expect(await dest.innerText()).toContain(DEFER.slice(0, 40));
    expect(await root.locator(`tr[data-id="${first}"]`).innerText()).toContain('carol@slow.test');
    const tries = peer.commands.filter((c) => c.startsWith('RCPT')).length;
    peer.setScript({});
    await root.locator(`tr[data-id="${first}"] button:text-is("Retry now")`).click();
    await expect.poll(() => root.locator('.flash.ok').innerText(), POLL).toContain(`${first}: tried again now`);
    await waitForStatus(gw, first, ['delivered']);
    expect(peer.commands.filter((c) => c.startsWith('RCPT')).length).toBe(tries + 1);
    expect(peer.accepted.filter((m) => m.data.toString().includes('Subject: deferred one'))).toHaveLength(1);
    expect((await ui.deps.audit.list({ action: 'queue-retry', limit: 1 })).rows[0]).toMatchObject({
      actor: 'root@example.test',
      messageId: first,
      outcome: 'ok',
    });

    peer.setScript({ rcpt: () => DEFER });
    const second = await deferred('deferred two');
    peer.setScript({});
    await root.goto(`${ui.url}queue`);
    await root.locator('tr[data-destination="slow.test"] button', { hasText: 'Flush' }).click();
    await expect.poll(() => root.locator('.flash.ok').innerText(), POLL).toContain('1 deferred message(s) for slow.test tried again now');
    await waitForStatus(gw, second, ['delivered']);
    expect((await ui.deps.audit.list({ action: 'queue-flush', limit: 1 })).rows[0]).toMatchObject({ target: 'slow.test', outcome: 'ok' });
    await expectNumbers('slow.test', ['received', 'deferred', 'delivered'], ['2', '2', '2']);
  });

  it('sends the daily summary once with the day’s numbers, though two consoles run it', async () => {
    await gw.stores.stats!.flush();
    const tomorrowMorning = (Math.floor(Date.now() / 86_400_000) + 1) * 86_400_000 + 7 * 3_600_000;
    const runs = await Promise.all([ui.runDailySummary(tomorrowMorning), ui2.runDailySummary(tomorrowMorning)]);
    expect(runs.filter((r) => r !== null)).toHaveLength(1);
    expect(runs.find((r) => r !== null)!.recipients.sort()).toEqual(['admin@example.test', 'root@example.test']);
    expect(await ui2.runDailySummary(tomorrowMorning)).toBeNull();
    const today = new Date().toISOString().slice(0, 10);
    const summaryOf = async (to: string) =>
      (await Promise.all((await mailboxMessages(gw, to)).map((b) => simpleParser(b)))).filter((m) => m.subject?.startsWith(`Mail summary for ${today}`));
    const [adminParsed] = await waitFor(async () => ((await summaryOf('admin@example.test')).length > 0 ? summaryOf('admin@example.test') : undefined), {
      what: 'the daily summary in the mailbox',
    });
    expect(adminParsed!.html).toContain('<td>example.test</td>');
    const adminMail = adminParsed!.text!;
    expect(adminMail).toContain('example.test: mail in 1, spam 0, virus 0, refused at SMTP 1, held 0, delivered 1');
    expect(adminMail).not.toContain('slow.test');
    const [rootParsed] = await waitFor(async () => ((await summaryOf('root@example.test')).length > 0 ? summaryOf('root@example.test') : undefined), {
      what: 'the superadmin summary',
    });
    expect(rootParsed!.text).toContain('slow.test: mail in 2, spam 0, virus 0, refused at SMTP 0, held 0, delivered 2, deferred 2');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await summaryOf('admin@example.test')).toHaveLength(1);
    expect(await summaryOf('quiet@example.test')).toHaveLength(0);
  });

  it('fits the numbers and queue pages on a 390 px wide screen', async () => {
    await root.setViewportSize({ width: 390, height: 844 });
    for (const page of ['stats?range=1d', 'stats?range=30d', 'queue']) {
      await root.goto(`${ui.url}${page}`);
      // Nothing in the page's own content reaches past the screen's right edge (the header is the layout's).
      const overflow = await root.evaluate(() => {
        const width = document.documentElement.clientWidth;
        return [...document.querySelectorAll('main *')]
          .filter((e) => !e.closest('.table-scroll') && e.getBoundingClientRect().right > width + 1)
          .map((e) => e.tagName + '.' + e.className);
      });
      expect(overflow, page).toEqual([]);
      expect(await root.evaluate(() => document.querySelector('main')!.scrollWidth <= document.documentElement.clientWidth), page).toBe(true);
    }
  });
});
