// Issue 5, step 4: hosts named in the bodies against a domain blocklist (through the DNSBL client
// on the gateway's one resolver, here an in-process DNS server) and the local bad-sites list.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { mailboxMessages, sendRaw, splitMessage, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { mailDate } from '../support/mime.ts';

const message = (subject: string, body: string) =>
  `From: Shop <deals@shop.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@shop.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;

describe('URL checks', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  beforeAll(async () => {
    dns = await startFakeDns({ 'evil-shop.test.dbl.test': { A: ['127.0.1.2'] } });
    gw = await startTestGateway({
      overrides: {
        dns: { servers: [dns.address], timeoutMs: 1_000 },
        urls: {
          lists: [
            { zone: 'dbl.test', codes: { '127.0.1.2': 'spam domain' }, weight: 3 },
            { zone: 'strict-bl.test', weight: 1, onError: 'retry' },
          ],
          badSites: ['phish.test'],
        },
        policy: { checks: { auth: false }, urls: { badSiteScore: 2 }, spam: { highThreshold: 100 } },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await dns?.close();
  });

  it('hits on the blocklist and the bad-sites list add to the score and show in the report', async () => {
    const body = 'Deals at http://www.evil-shop.test/deal and https://login.phish.test/x\r\nalso http://badsite-test.mailmoat.invalid/ and www.fine.test\r\n';
    const sent = await sendRaw(gw.smtpPort, { from: 'deals@shop.test', to: ['u1@example.test'] }, message('deals', body));
    await waitForStatus(gw, sent.id!, ['delivered']);
    const row = (await gw.stores.store.get(sent.id!))!;
    expect(row.report?.urls).toMatchObject({
      status: 'checked',
      hosts: 4,
      hits: [
        { host: 'login.phish.test', list: 'bad-sites', detail: 'on the bad-sites list (phish.test)', score: 2 },
        { host: 'badsite-test.mailmoat.invalid', list: 'bad-sites', score: 2 },
        { host: 'evil-shop.test', list: 'dbl.test', detail: 'spam domain', score: 3 },
      ],
      score: 7,
    });
    expect(row.report?.score).toMatchObject({ urls: 7 });
    expect(row.verdict).toBe('spam');
    const [got] = await mailboxMessages(gw, 'u1@example.test');
    const head = splitMessage(got).head.replace(/\r\n[ \t]+/g, ' ');
    expect(head).toContain('Subject: {Spam?} deals\r\n');
    expect(head).toMatch(/X-Mailmoat-Status: spam; .*url-hits=3/);
  });

  it('a blocklist lookup that fails with onError: retry defers the scan until DNS answers', async () => {
    dns.servfail('later.test.strict-bl.test');
    const sent = await sendRaw(gw.smtpPort, { from: 'deals@shop.test', to: ['u2@example.test'] }, message('later', 'see www.later.test\r\n'));
    expect(sent.code).toBe(250);
    await waitFor(async () => (await gw.stores.store.events(sent.id!)).find((e) => e.kind === 'scan-deferred'), { what: 'a deferred scan' });
    expect((await gw.stores.store.get(sent.id!))?.status).toBe('queued');
    dns.remove('later.test.strict-bl.test');
    await waitForStatus(gw, sent.id!, ['delivered']);
    const [got] = await mailboxMessages(gw, 'u2@example.test');
    expect(splitMessage(got).head).toContain('Subject: later');
    expect((await gw.stores.store.events(sent.id!)).find((e) => e.kind === 'scan-deferred')?.detail).toMatch(/strict-bl\.test lookup of later\.test failed/);
  });
});
