// The console's user journeys in a real browser (Debian chromium driven by playwright-core),
// against a real in-process gateway (SMTP, scan and delivery workers, the suite's Redis, clamd and
// spamd, the demo mailbox as downstream): log in, find a quarantined message, preview it, release
// it (it arrives once), allow its sender (the next one is delivered), upload a spam report; a
// hostile message executes nothing; a domain admin cannot touch another domain's mail; posts
// without a CSRF token are refused.
//
// Script execution is detected from outside the page: every payload would call a local "beacon"
// HTTP server, which records each hit (a sandboxed frame cannot set globals we could read).
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { EICAR } from '../support/eicar.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { type RunningConsole } from '../../quarantine-ui/server.ts';
import { mailDate } from '../support/mime.ts';
import { block, digestsIn, linkIn } from './digest-mail.ts';
import { startTestConsole, testConsoleConfig } from '../support/console.ts';
import { launchChromium } from '../support/browser.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const PASSWORD = 'browser test password';
/** The machine may be busy with other test files: page loads get time. */
const POLL = { timeout: 15_000, interval: 100 };

function mail(o: { from?: string; to?: string; subject: string; body?: string; html?: string; extra?: string }): string {
  const head =
    `From: ${o.from ?? 'Bob <bob@sender.test>'}\r\nTo: ${o.to ?? 'alice@example.test'}\r\nSubject: ${o.subject}\r\n` +
    `Date: ${mailDate()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\nMIME-Version: 1.0\r\n${o.extra ?? ''}`;
  if (!o.html) return `${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${o.body ?? GTUBE}\r\n`;
  return (
    `${head}Content-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${o.body ?? GTUBE}\r\n` +
    `--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${o.html}\r\n--alt--\r\n`
  );
}

describe('the console in a browser', () => {
  let gw: TestGateway;
  let ui: RunningConsole;
  let browser: Browser;
  let base: string;
  let beacon: http.Server;
  let beaconUrl: string;
  const hits: string[] = [];
  let evil: http.Server;
  let evilUrl: string;
  let otherId: string; // a quarantined message of other.test (domain admin B's)
  let page: Page; // domain admin A, logged in once for the whole file
  const dialogs: string[] = [];

  async function send(raw: string, from = 'bob@sender.test', to = ['alice@example.test']): Promise<string> {
    const r = await sendRaw(gw.smtpPort, { from, to }, raw);
    expect(r.code).toBe(250);
    return r.id!;
  }

  /** Quarantined, and the scan job has let go of its spool files. */
  async function quarantined(id: string): Promise<void> {
    await waitForStatus(gw, id, ['quarantined']);
    await waitFor(async () => !(await gw.stores.spool.readEnvelope(id)), { what: `the scan job of ${id} to finish` });
  }

  async function loggedIn(username: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
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
    await ui.deps.accounts.create({ username: 'adminb', role: 'domainadmin', domains: ['other.test'], passwordHash: hash });

    beacon = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/gif' }).end();
    });
    await new Promise<void>((r) => beacon.listen(0, '127.0.0.1', () => r()));
    beaconUrl = `http://127.0.0.1:${(beacon.address() as { port: number }).port}`;
    // A page on another origin that posts a form (without a CSRF token) to the console.
    evil = http.createServer((req, res) => {
      const target = decodeURIComponent((req.url ?? '/').slice(1));
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(`<form id=f method=post action="${target}"><input name=action value=delete></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    evilUrl = `http://127.0.0.1:${(evil.address() as { port: number }).port}`;

    // B's message: a quarantined row and body for other.test, written straight into the stores.
    otherId = `01JOTHER${Date.now().toString().slice(-10)}00000000`.slice(0, 26);
    await gw.stores.store.recordReceived({
      id: otherId,
      receivedAt: Date.now(),
      clientIp: '192.0.2.1',
      helo: 'x',
      mailFrom: 'x@sender.test',
      rcptTo: ['bob@other.test'],
      size: 100,
    });
    await gw.stores.store.recordVerdict(otherId, {
      verdict: 'high-spam',
      reason: 'spam score 1000 >= 10',
      report: { virus: { status: 'clean' }, spam: { status: 'scored', score: 1000, threshold: 5, rules: ['GTUBE'] } } as never,
      subject: 'secret of B',
    });
    const tmp = path.join(gw.config.dataDir, 'other.eml');
    writeFileSync(tmp, mail({ to: 'bob@other.test', subject: 'secret of B' }));
    await gw.stores.quarantine.put(otherId, tmp);
    await gw.stores.store.transition(otherId, ['queued'], 'quarantined');

    browser = await launchChromium();
    page = (await loggedIn('admina')).page;
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await gw?.stop();
    beacon?.close();
    evil?.close();
  });

  it('logs in, finds a quarantined message, previews it and releases it: it arrives once', async () => {
    const id = await send(mail({ subject: 'journey one', html: `<p>Hello <b>Alice</b>, this is the <i>journey one</i> mail.</p>` }));
    await quarantined(id);
    await page.click('nav >> text=Quarantine');
    await page.fill('input[name=q]', 'journey one');
    await page.click('form.filters button[type=submit]');
    await page.click(`a[href="/messages/${id}"] >> text=journey one`);
    await page.waitForURL(new RegExp(`/messages/${id}$`));
    const preview = page.frameLocator('iframe.preview');
    await expect.poll(() => preview.locator('body').innerText(), POLL).toContain('this is the journey one mail');
    await page.click('button:text-is("Release")');
    await expect.poll(() => page.locator('.flash.ok').innerText(), POLL).toContain('Released');
    await waitForStatus(gw, id, ['released']);
    const boxes = await waitFor(
      async () => {
        const m = await mailboxMessages(gw, 'alice@example.test');
        return m.some((b) => b.toString().includes('journey one')) ? m : undefined;
      },
      { what: 'the released message in the mailbox' },
    );
    // once: no button to do it again, a forged second release is refused, and nothing else arrives
    await page.reload();
    expect(await page.locator('button:text-is("Release")').count()).toBe(0);
    const again = await ui.deps.release(id, 'test');
    expect(again.ok).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await mailboxMessages(gw, 'alice@example.test')).filter((b) => b.toString().includes('journey one'))).toHaveLength(1);
    expect(boxes.length).toBeGreaterThan(0);
  });

  it('releases and allows the sender: the next message from that sender is delivered', async () => {
    const first = await send(mail({ from: 'Friend <friend@pals.test>', subject: 'journey two' }), 'friend@pals.test');
    await quarantined(first);
    await page.goto(`${base}messages/${first}`);
    await page.click('button:text-is("Release and allow sender")');
    await expect.poll(() => page.locator('.flash.ok').innerText(), POLL).toContain('friend@pals.test added to the allow list of example.test');
    await waitForStatus(gw, first, ['released']);
    await page.goto(`${base}lists`);
    expect(await page.locator('td.mono', { hasText: 'friend@pals.test' }).count()).toBe(1);
    // The same GTUBE mail from the allowed sender now passes the spam verdict.
    const next = await send(mail({ from: 'Friend <friend@pals.test>', subject: 'journey two, again' }), 'friend@pals.test');
    await waitForStatus(gw, next, ['delivered', 'quarantined']);
    expect((await gw.stores.store.get(next))!.status).toBe('delivered');
  });

  it('uploads a spam report and says what happened to each file', async () => {
    await page.goto(`${base}report`);
    const spam = (n: number) => Buffer.from(mail({ subject: `cheap watches ${n} ${Date.now()}`, body: `Buy cheap watches now ${n} ${Math.random()}` }));
    await page.setInputFiles('input[name=files]', [
      { name: 'watches-1.eml', mimeType: 'message/rfc822', buffer: spam(1) },
      { name: 'watches-2.eml', mimeType: 'message/rfc822', buffer: spam(2) },
      { name: 'not-mail.eml', mimeType: 'message/rfc822', buffer: Buffer.from('this is not an e-mail\n') },
    ]);
    await page.click('form[action="/report"] button[type=submit]');
    const rows = page.locator('table >> nth=0 >> tbody tr');
    await expect.poll(() => rows.count(), POLL).toBe(3);
    const text = await page.locator('table >> nth=0').innerText();
    expect(text).toMatch(/watches-1\.eml\s+learned/);
    expect(text).toMatch(/watches-2\.eml\s+learned/);
    expect(text).toMatch(/not-mail\.eml\s+refused/);
    expect((await ui.deps.learnLog.recent({ actor: 'admina', limit: 3 })).map((r) => r.outcome).sort()).toEqual(['learned', 'learned', 'refused']);
  });

  it('a quarantined message carrying script, onerror and javascript: payloads executes nothing', async () => {
    const b = beaconUrl;
    const html = [
      `<p>Your invoice is ready.</p>`,
      `<script>new Image().src='${b}/script-ran';window.top.location='${b}/script-navigated'</script>`,
      `<img src="x-broken" onerror="new Image().src='${b}/onerror-ran'">`,
      `<svg onload="fetch('${b}/svg-onload-ran')"></svg>`,
      `<a id="jslink" href="javascript:fetch('${b}/javascript-url-ran')">Open your invoice</a>`,
      `<a href="${b}/link-followed">https://bank.example/</a>`,
      `<meta http-equiv="refresh" content="0;url=${b}/meta-refresh">`,
      `<iframe src="${b}/iframe-loaded"></iframe>`,
      `<form action="${b}/form-posted"><input name=q><button id="formbtn">Go</button></form>`,
      `<img src="${b}/remote-image.gif">`,
      `<div style="background:url('${b}/css-image')">styled</div>`,
    ].join('\n');
    const subject = `<img src=x onerror="fetch('${b}/subject-ran')"> invoice`;
    // With the EICAR file attached it is quarantined whatever the content policy makes of the HTML.
    const id = await send(
      `From: "<script>fetch('${b}/name-ran')</script>" <evil@sender.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n` +
        'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n' +
        `--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour invoice is ready.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html}\r\n--alt--\r\n` +
        `--mix\r\nContent-Type: application/octet-stream; name="<img src=x onerror=fetch('${b}/filename-ran')>.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--mix--\r\n`,
      'evil@sender.test',
    );
    await quarantined(id);
    await page.goto(`${base}quarantine`);
    expect(await page.locator('td.subject', { hasText: 'invoice' }).first().innerText()).toContain('<img src=x onerror=');
    await page.goto(`${base}messages/${id}`);
    const preview = page.frameLocator('iframe.preview');
    await expect.poll(() => preview.locator('body').innerText(), POLL).toContain('Your invoice is ready.');
    // try the payloads' own triggers: the inert link and the (removed) form
    await preview.locator('text=Open your invoice').click();
    await preview.locator('text=https://bank.example/').click();
    await page.waitForTimeout(800);
    expect(page.url()).toBe(`${base}messages/${id}`);
    expect(hits).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { pwned?: unknown }).pwned)).toBeUndefined();
    // Remote images load only when asked for, and even then no script runs.
    await page.click('text=Load remote images');
    await expect.poll(() => hits.filter((h) => h === '/remote-image.gif').length, POLL).toBe(1);
    await page.waitForTimeout(500);
    expect(hits.filter((h) => !['/remote-image.gif', '/css-image'].includes(h))).toEqual([]);
    expect(dialogs).toEqual([]);
    // still logged in, still on the console
    await page.goto(`${base}quarantine`);
    expect(page.url()).toBe(`${base}quarantine`);
  });

  it('domain admin A cannot read, release or delete B’s messages', async () => {
    await page.goto(`${base}quarantine`);
    expect(await page.content()).not.toContain('secret of B');
    for (const suffix of ['', '/preview', '/raw']) {
      const res = await page.goto(`${base}messages/${otherId}${suffix}`);
      expect(res!.status()).toBe(404);
      expect(await page.content()).not.toContain('secret of B');
    }
    // A valid CSRF token of A's own session does not help: the id is outside A's domains.
    await page.goto(`${base}quarantine`);
    const token = await page.locator('input[name=_csrf]').first().inputValue();
    for (const action of ['release', 'delete', 'learn-spam', 'block-sender']) {
      const res = await page.request.post(`${base}messages/${otherId}/${action}`, { form: { _csrf: token }, maxRedirects: 0 });
      expect(res.status()).toBe(404);
    }
    const bulk = await page.request.post(`${base}quarantine/bulk`, { form: { _csrf: token, action: 'delete', id: otherId }, maxRedirects: 0 });
    expect(bulk.status()).toBe(303);
    expect((await gw.stores.store.get(otherId))!.status).toBe('quarantined');
    expect((await ui.deps.audit.list({ actor: 'admina', messageId: otherId, limit: 20 })).rows.every((r) => r.outcome === 'denied')).toBe(true);
    // B sees it
    const b = await loggedIn('adminb');
    await b.page.goto(`${base}quarantine`);
    expect(await b.page.content()).toContain('secret of B');
    await b.context.close();
  });

  it('refuses posts without a CSRF token, also from a form on another site', async () => {
    const id = await send(mail({ subject: 'csrf target' }));
    await quarantined(id);
    const res = await page.request.post(`${base}messages/${id}/delete`, { form: {}, maxRedirects: 0 });
    expect(res.status()).toBe(403);
    // an attacker's page on another port of the same host (same site: the Lax cookie is sent)
    await page.goto(`${evilUrl}/${encodeURIComponent(`${base}messages/${id}/delete`)}`);
    await page.waitForURL(`${base}messages/${id}/delete`);
    expect(await page.locator('h1').innerText()).toBe('Form expired');
    expect((await gw.stores.store.get(id))!.status).toBe('quarantined');
  });

  it('shows the message log, the domains page with an SMTP test, and the dashboard charts', async () => {
    const virus = await send(
      'From: bob@sender.test\r\nTo: alice@example.test\r\nSubject: your parcel\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
        `--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/octet-stream; name="parcel.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--b--\r\n`,
    );
    const clean = await send(mail({ subject: 'lunch on friday', body: 'See you at noon.' }));
    await quarantined(virus);
    await waitForStatus(gw, clean, ['delivered']);
    await sendRaw(gw.smtpPort, { from: 'x@sender.test', to: ['someone@not-hosted.test'] }, mail({ subject: 'relay attempt' }));
    await page.goto(`${base}log`);
    expect(await page.locator('table').innerText()).toContain('lunch on friday');
    await page.fill('input[name=sender]', 'friend@pals.test');
    await page.click('form.filters button[type=submit]');
    expect(await page.locator('tbody tr').count()).toBeGreaterThanOrEqual(2);
    await page.goto(`${base}log`);
    await page.goto(`${base}domains`);
    await page.click('button:text-is("Test SMTP connection")');
    await expect.poll(() => page.locator('pre.transcript').innerText(), POLL).toContain('RCPT TO:<postmaster@example.test>');
    expect(await page.locator('p.good').innerText()).toContain('Passed');
    await page.goto(`${base}dashboard`);
    expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('svg.chart rect').count()).toBeGreaterThan(3);
    await page.goto(`${base}quarantine`);
  });

  it('sends a quarantine digest whose one-click link releases the message once', async () => {
    await ui.deps.accounts.create({
      username: 'alice',
      role: 'user',
      addresses: ['alice@example.test'],
      passwordHash: await hashPassword(PASSWORD, { logN: 12, r: 8, p: 1 }),
    });
    const id = await send(mail({ subject: 'digest candidate' }));
    await quarantined(id);
    const run = await ui.sendDigests();
    expect(run.recipients).toContain('alice@example.test');
    const digest = await waitFor(
      async () => (await digestsIn(await mailboxMessages(gw, 'alice@example.test'))).find((d) => d.text.includes('Subject: digest candidate')),
      {
        what: 'the digest in the mailbox',
      },
    );
    const link = linkIn(block(digest, 'digest candidate'), 'Release it')!;
    expect(link.startsWith(base)).toBe(true);
    const anon = await browser.newContext();
    const p = await anon.newPage();
    await p.goto(link);
    expect(await p.locator('main').innerText()).toContain('digest candidate');
    expect((await gw.stores.store.get(id))!.status).toBe('quarantined');
    await p.click('button:text-is("Release this message")');
    await expect.poll(() => p.locator('.flash.ok').innerText(), POLL).toContain('has been released');
    await waitForStatus(gw, id, ['released']);
    const again = await p.goto(link);
    expect(again!.status()).toBe(410);
    await anon.close();
  });
});
