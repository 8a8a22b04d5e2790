// A recipient's digest journey in a real browser (Debian chromium driven by playwright-core)
// against a real in-process gateway (SMTP, scan and delivery workers, the suite's Redis, clamd and
// spamd, the demo mailbox as downstream), the domain in notice mode: spam to a recipient with no
// console account is held; a notice reaches their mailbox soon after (delivered, not scanned into
// the quarantine itself); its "open your quarantine" link logs them in after a confirmation; its
// "not spam" link, confirmed, releases the message, which arrives once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser } from 'playwright-core';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { mailDate } from '../support/mime.ts';
import { block, digestsIn, linkIn } from './digest-mail.ts';
import { type RunningConsole } from '../../quarantine-ui/server.ts';
import type { Config } from '../../gateway/config/schema.ts';
import { startTestConsole } from '../support/console.ts';
import { launchChromium } from '../support/browser.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const POLL = { timeout: 15_000, interval: 100 };
const RCPT = 'nia@example.test';

describe('a digest notice in a browser', () => {
  let gw: TestGateway;
  let ui: RunningConsole;
  let browser: Browser;

  beforeAll(async () => {
    gw = await startTestGateway({ domains: { 'example.test': { policy: { digest: 'notice' } } } });
    const config: Config = {
      ...gw.config,
      console: {
        ...gw.config.console,
        listen: { host: '127.0.0.1', port: 0 },
        digest: { ...gw.config.console.digest, enabled: true, hourUtc: 23, noticeBatchMs: 200, noticeCheckMs: 200 },
      },
    };
    ui = await startTestConsole(gw, config);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await gw?.stop();
  });

  it('spam is held, the notice arrives, its magic link logs in and its not-spam link releases the message once', async () => {
    const subject = 'notice <b>candidate</b>';
    const raw = `From: Bob <bob@sender.test>\r\nTo: ${RCPT}\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${GTUBE}\r\n`;
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [RCPT] }, raw);
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['quarantined']);
    expect(await ui.deps.accounts.byName(RCPT)).toBeUndefined();

    const notice = await waitFor(async () => (await digestsIn(await mailboxMessages(gw, RCPT)))[0], { what: 'the notice in the mailbox', timeoutMs: 30_000 });
    expect(notice.subject).toBe(`Quarantine notice: 1 message(s) held for ${RCPT}`);
    expect(notice.html).toContain('notice &lt;b&gt;candidate&lt;/b&gt;');
    // The notice went through the delivery path, not the scanner: nothing of it is in the quarantine.
    expect((await gw.stores.store.searchMessages({ scope: { all: true }, statuses: ['quarantined'], limit: 10 })).rows.map((m) => m.id)).toEqual([sent.id]);

    const context = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const page = await context.newPage();
    await page.goto(linkIn(notice.text, 'Open your quarantine (no password needed)')!);
    expect(await page.locator('main').innerText()).toContain(RCPT);
    // The confirmation page, as opened from the mail on a phone: nothing wider than the viewport.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.click('button:text-is("Open my quarantine")');
    await page.waitForURL(/\/quarantine$/);
    expect(await page.locator('main').innerText()).toContain(subject);
    expect(await ui.deps.accounts.byName(RCPT)).toMatchObject({ role: 'user', addresses: [RCPT] });

    const notSpam = linkIn(block(notice, subject), 'Not spam (learn and release)')!;
    await page.goto(notSpam);
    expect(await page.locator('main').innerText()).toContain(subject);
    // Its content fits a phone (the header of a logged-in page is the layout's).
    expect(await page.evaluate(() => Math.max(...[...document.querySelectorAll('main *')].map((e) => e.getBoundingClientRect().right)))).toBeLessThanOrEqual(
      390,
    );
    expect((await gw.stores.store.get(sent.id!))!.status).toBe('quarantined');
    await page.click('button:text-is("Not spam")');
    await expect.poll(() => page.locator('.flash.ok').innerText(), POLL).toContain('has been released');
    await waitForStatus(gw, sent.id!, ['released']);
    const delivered = await waitFor(async () => (await mailboxMessages(gw, RCPT)).filter((b) => b.toString().includes(GTUBE)), {
      what: 'the released message',
    });
    expect(delivered).toHaveLength(1);
    const again = await page.goto(notSpam);
    expect(again!.status()).toBe(410);
    expect(await page.locator('main').innerText()).toContain('This link has been used already.');
    await context.close();
  });
});
