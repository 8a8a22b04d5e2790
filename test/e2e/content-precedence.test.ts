// Every class decides, the strictest action wins, end to end through the real gateway with the real
// spamd: GTUBE (score 1001.5) plus one misleading link used to be delivered tagged {Fraud?} with
// X-Spam-Flag: NO, because phishing outranked high-spam and its action is only a tag.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage, html, mailDate, text } from '../support/mime.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const LINK = '<p><a href="https://evil-login.example.net/pp">https://www.paypal.com/signin</a></p>';

const message = (subject: string, markup: string, plain: string) =>
  buildMessage({ multipart: 'alternative', boundary: 'ALT', parts: [text(plain), html(markup)] }, [
    'From: PayPal <service@pay.test>',
    'To: alice@example.test',
    `Subject: ${subject}`,
    `Date: ${mailDate()}`,
    'MIME-Version: 1.0',
  ]);

describe('precedence of verdict classes (default policy)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  async function send(rcpt: string, raw: Buffer) {
    const sent = await sendRaw(gw.smtpPort, { from: 'service@pay.test', to: [rcpt] }, raw);
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['delivered', 'quarantined']);
    return (await gw.stores.store.get(sent.id!))!;
  }

  it('GTUBE plus one misleading link is quarantined as high-spam, X-Spam-Flag: YES in the stored report', async () => {
    const row = await send('gtube-link@example.test', message('your account', `<p>${GTUBE}</p>${LINK}`, `${GTUBE}\r\n`));
    expect(row).toMatchObject({ status: 'quarantined', verdict: 'high-spam' });
    const outcome = row.report!.outcome!;
    expect(outcome.classes).toEqual(['phishing', 'high-spam']);
    expect(outcome.action).toBe('quarantine');
    expect(outcome.reasons.join('\n')).toContain('www.paypal.com');
    expect(outcome.headers).toContainEqual(['X-Spam-Flag', 'YES']);
    expect(outcome.headers!.find(([k]) => k === 'X-Spam-Status')![1]).toMatch(/^Yes, score=\d{3,4}\.\d required=5\.0 tests=.*GTUBE/);
    expect(await mailboxMessages(gw, 'gtube-link@example.test')).toEqual([]);
  });

  it('the misleading link alone is still delivered tagged {Fraud?} with X-Spam-Flag: NO', async () => {
    const row = await send('link@example.test', message('your account', `<p>Please sign in.</p>${LINK}`, 'Please sign in.\r\n'));
    expect(row).toMatchObject({ status: 'delivered', verdict: 'phishing' });
    const [got] = await mailboxMessages(gw, 'link@example.test');
    const head = got.toString('latin1').split('\r\n\r\n')[0];
    expect(head).toMatch(/^Subject: \{Fraud\?\} <Cleaned> your account$/m);
    expect(head).toMatch(/^X-Spam-Flag: NO$/m);
  });
});
