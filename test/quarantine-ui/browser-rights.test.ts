// Release rights and release requests in a real browser (Debian chromium driven by playwright-core)
// against a real in-process gateway (SMTP, scan and delivery workers, the suite's Redis, clamd and
// spamd, the demo mailbox as downstream): an end user cannot release or download a virus, not even
// with a forged post; the digest offers a request link instead of a release link; a domain admin
// approves a request and the message arrives once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { EICAR } from '../support/eicar.ts';
import { mailDate } from '../support/mime.ts';
import { block, digestsIn, linkIn } from './digest-mail.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { type RunningConsole } from '../../quarantine-ui/server.ts';
import { startTestConsole, testConsoleConfig } from '../support/console.ts';
import { launchChromium } from '../support/browser.ts';

const PASSWORD = 'browser test password';
const POLL = { timeout: 15_000, interval: 100 };

/** A message with the EICAR test file as a harmless-looking text attachment: clamd calls it a virus. */
function virusMail(subject: string): string {
  return (
    `From: Bob <bob@sender.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\n` +
    `Message-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n` +
    `--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe notes you asked for.\r\n` +
    `--b\r\nContent-Type: text/plain; name="notes.txt"\r\nContent-Disposition: attachment; filename="notes.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--b--\r\n`
  );
}

describe('release rights and requests in a browser', () => {
  let gw: TestGateway;
  let ui: RunningConsole;
  let browser: Browser;
  let base: string;
  let alice: Page; // end user alice@example.test
  let admin: Page; // domain admin of example.test

  async function quarantinedVirus(subject: string): Promise<string> {
    const r = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, virusMail(subject));
    expect(r.code).toBe(250);
    await waitForStatus(gw, r.id!, ['quarantined']);
    await waitFor(async () => !(await gw.stores.spool.readEnvelope(r.id!)), { what: `the scan job of ${r.id} to finish` });
    expect((await gw.stores.store.get(r.id!))!.report?.virus).toMatchObject({ status: 'infected' });
    return r.id!;
  }

  async function loggedIn(username: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${base}login`);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/(dashboard|quarantine)$/);
    return { context, page };
  }

  beforeAll(async () => {
    gw = await startTestGateway();
    const config = testConsoleConfig(gw);
    ui = await startTestConsole(gw, config);
    base = ui.url;
    const hash = await hashPassword(PASSWORD, { logN: 12, r: 8, p: 1 });
    await ui.deps.accounts.create({ username: 'admina', role: 'domainadmin', domains: ['example.test'], passwordHash: hash });
    await ui.deps.accounts.create({ username: 'alice', role: 'user', addresses: ['alice@example.test'], passwordHash: hash });
    browser = await launchChromium();
    alice = (await loggedIn('alice')).page;
    admin = (await loggedIn('admina')).page;
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await gw?.stop();
  });

  it('an end user on a virus sees no release or download, and a forged release post is a 403 with an audit row', async () => {
    const id = await quarantinedVirus('notes with a virus');
    await alice.goto(`${base}messages/${id}`);
    await expect.poll(() => alice.locator('main').innerText(), POLL).toContain('Only an administrator may release a message held as virus.');
    expect(await alice.locator('button:text-is("Release")').count()).toBe(0);
    expect(await alice.locator('button:text-is("Release and allow sender")').count()).toBe(0);
    expect(await alice.locator('a', { hasText: 'Download the raw message' }).count()).toBe(0);
    expect(await alice.locator('iframe.preview').count()).toBe(0);
    expect(await alice.locator('button:text-is("Request release")').count()).toBe(1);
    // A forged post with the user's own valid CSRF token.
    const token = await alice.locator('input[name=_csrf]').first().inputValue();
    const forged = await alice.request.post(`${base}messages/${id}/release`, { form: { _csrf: token }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('Only an administrator may release a message held as virus.');
    expect((await alice.request.get(`${base}messages/${id}/raw`, { maxRedirects: 0 })).status()).toBe(403);
    expect((await ui.deps.audit.list({ actor: 'alice', messageId: id, limit: 5 })).rows.map((r) => `${r.action} ${r.outcome}`)).toEqual(
      expect.arrayContaining(['release denied', 'download denied']),
    );
    expect((await gw.stores.store.get(id))!.status).toBe('quarantined');
    // the domain admin has the buttons
    await admin.goto(`${base}messages/${id}`);
    expect(await admin.locator('button:text-is("Release")').count()).toBe(1);
    expect(await admin.locator('a', { hasText: 'Download the raw message' }).count()).toBe(1);
  });

  it('the digest has no release link for a virus but a request link, which asks the domain admin', async () => {
    const id = await quarantinedVirus('digest virus');
    const run = await ui.sendDigests();
    expect(run.recipients).toContain('alice@example.test');
    const digest = await waitFor(
      async () => (await digestsIn(await mailboxMessages(gw, 'alice@example.test'))).find((d) => d.text.includes('Subject: digest virus')),
      {
        what: 'the digest in the mailbox',
      },
    );
    expect(linkIn(block(digest, 'digest virus'), 'Release it')).toBeUndefined();
    const link = linkIn(block(digest, 'digest virus'), 'Request release (an administrator decides)')!;
    const anon = await browser.newContext();
    const p = await anon.newPage();
    await p.goto(link);
    expect(await p.locator('main').innerText()).toContain('digest virus');
    expect(await p.locator('button:text-is("Release this message")').count()).toBe(0);
    await p.fill('input[name=note]', 'my colleague sent it');
    await p.click('button:text-is("Request release")');
    await expect.poll(() => p.locator('.flash.ok').innerText(), POLL).toContain('Your request has been sent to the administrators of example.test.');
    expect((await gw.stores.store.get(id))!.status).toBe('quarantined');
    await anon.close();
    await admin.goto(`${base}requests`);
    expect(await admin.locator('nav a[href="/requests"] .badge.count').innerText()).toMatch(/^\d+$/);
    expect(await admin.locator('table.requests').innerText()).toContain('my colleague sent it');
  });

  it('a domain admin approves a request: the message arrives once', async () => {
    const id = await quarantinedVirus('approve me please');
    await alice.goto(`${base}messages/${id}`);
    await alice.fill('input[name=note]', 'it is the contract');
    await alice.click('button:text-is("Request release")');
    await expect.poll(() => alice.locator('.flash.ok').innerText(), POLL).toContain('Your request has been sent');
    const [request] = await ui.deps.requests.forMessage(id);
    await admin.goto(`${base}requests`);
    const row = admin.locator(`tr[data-request="${request!.id}"]`);
    expect(await row.innerText()).toContain('it is the contract');
    await row.locator('button:text-is("Approve and release")').click();
    await expect.poll(() => admin.locator('.flash.ok').innerText(), POLL).toContain('Approved: the message is on its way to alice@example.test.');
    await waitForStatus(gw, id, ['released']);
    const arrived = () => mailboxMessages(gw, 'alice@example.test').then((all) => all.filter((b) => b.toString().includes('Subject: approve me please')));
    await waitFor(async () => ((await arrived()).length > 0 ? true : undefined), { what: 'the released message in the mailbox' });
    // once: approving again (a second click, a forged post) is refused
    const token = await admin.locator('input[name=_csrf]').first().inputValue();
    expect((await admin.request.post(`${base}requests/${request!.id}/approve`, { form: { _csrf: token }, maxRedirects: 0 })).status()).toBe(409);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await arrived()).toHaveLength(1);
    // the user sees the answer
    await alice.goto(`${base}requests`);
    expect(await alice.locator('main').innerText()).toContain('approved');
  });
});
