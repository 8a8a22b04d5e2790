// Issue 5, step 2: HTML disarming and the phishing net in the delivered copy, over real SMTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage, html, text, type PartSpec, mailDate } from '../support/mime.ts';
import { mailboxMessages, sendRaw, splitMessage, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const headers = (subject: string) => [
  'From: Bank <service@bank.test>',
  'To: alice@example.test',
  `Subject: ${subject}`,
  `Date: ${mailDate()}`,
  'MIME-Version: 1.0',
];
const alternative = (subject: string, plain: string, markup: string): Buffer =>
  buildMessage({ multipart: 'alternative', boundary: 'ALT', parts: [text(plain), html(markup)] } satisfies PartSpec, headers(subject));

/** The decoded HTML part of a delivered copy (quoted-printable, as the test corpus sends it). */
function htmlOf(raw: Buffer): string {
  const part = raw.toString('latin1').split('--ALT')[2];
  const body = part.slice(part.indexOf('\r\n\r\n') + 4);
  return Buffer.from(
    body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}
const textPart = (raw: Buffer) => raw.toString('latin1').split('--ALT')[1];

async function deliver(gw: TestGateway, rcpt: string, raw: Buffer) {
  const sent = await sendRaw(gw.smtpPort, { from: 'service@bank.test', to: [rcpt] }, raw);
  expect(sent.code).toBe(250);
  await waitForStatus(gw, sent.id!, ['delivered', 'quarantined']);
  const row = (await gw.stores.store.get(sent.id!))!;
  const [got] = await mailboxMessages(gw, rcpt);
  return { row, got };
}

const PHISH =
  '<p>Dear customer, your account is locked.</p>\r\n' +
  '<p><a href="https://login.evil.example/bank">https://www.bank.test/login</a></p>\r\n' +
  '<script>document.location="https://evil.example"</script>\r\n' +
  '<img src="https://track.evil.example/p.gif" width="1" height="1">\r\n';

describe('HTML disarming and the phishing net (default policy)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('a phishing link: delivered tagged {Fraud?} <Cleaned>, link inert, real target shown, text part untouched', async () => {
    const raw = alternative('account locked', 'Dear customer, your account is locked.\r\n', PHISH);
    const { row, got } = await deliver(gw, 'p1@example.test', raw);
    expect(row.verdict).toBe('phishing');
    expect(row.reason).toBe('a link shows www.bank.test but goes to login.evil.example');
    expect(row.report?.html).toMatchObject({
      status: 'checked',
      changed: true,
      dangerous: true,
      phishing: [{ part: '2', shown: 'www.bank.test', real: 'login.evil.example' }],
    });
    const head = splitMessage(got).head.replace(/\r\n[ \t]+/g, ' ');
    expect(head).toContain('Subject: {Fraud?} <Cleaned> account locked\r\n');
    expect(head).toContain('X-Mailmoat-Warning: phishing: a link shows www.bank.test but goes to login.evil.example');
    expect(textPart(got)).toBe(textPart(raw));
    const out = htmlOf(got);
    expect(out).not.toContain('<script');
    expect(out).not.toContain('href="https://login.evil.example');
    expect(out).toContain('[mailmoat: this link claims to go to www.bank.test but really goes to login.evil.example]');
    expect(out).not.toContain('track.evil.example');
  });

  it('a script alone: clean, delivered with <Cleaned>', async () => {
    const { row, got } = await deliver(
      gw,
      'p2@example.test',
      alternative('hello', 'hi\r\n', '<p onclick="steal()">hi</p><form action="https://x.test/"><input name="pw"></form>'),
    );
    expect(row.verdict).toBe('clean');
    expect(row.report?.html).toMatchObject({ changed: true, dangerous: true, phishing: [] });
    expect(splitMessage(got).head).toContain('Subject: <Cleaned> hello\r\n');
    expect(htmlOf(got)).not.toMatch(/onclick|<form/);
  });

  it('a newsletter: click-tracker links are no phishing; its tracking pixel goes quietly (no tag)', async () => {
    const markup =
      '<p>Our <a href="https://shop.us1.list-manage.com/track/click?u=1">www.shop.test</a> sale!</p>\r\n' +
      '<img src="https://shop.test/banner.jpg" width="600" height="200" alt="banner">\r\n' +
      '<img src="https://shop.us1.list-manage.com/track/open.php?u=1" width="1" height="1">\r\n';
    const { row, got } = await deliver(gw, 'p3@example.test', alternative('sale', 'Our sale!\r\n', markup));
    expect(row.verdict).toBe('clean');
    expect(row.report?.html).toMatchObject({ changed: true, dangerous: false, phishing: [] });
    expect(splitMessage(got).head).toContain('Subject: sale\r\n');
    const out = htmlOf(got);
    expect(out).toContain('https://shop.test/banner.jpg'); // remoteImages: keep
    expect(out).not.toContain('open.php');
  });

  it('nothing to disarm: the whole body byte-identical, no tag', async () => {
    const raw = alternative('plain', 'Hello\r\n', '<p>Hello <b>there</b></p>\r\n');
    const { row, got } = await deliver(gw, 'p4@example.test', raw);
    expect(row.verdict).toBe('clean');
    expect(splitMessage(got).body.equals(splitMessage(raw).body)).toBe(true);
    expect(splitMessage(got).head).toContain('Subject: plain\r\n');
  });
});

describe('HTML policy per domain', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: {
        'example.test': {},
        // No disarming, the phishing net still judges; phishing is quarantined here.
        'strict.test': { policy: { html: { disarm: false }, actions: { phishing: 'quarantine' } } },
        'trusting.test': { policy: { html: { phishingSafeSites: ['evil.example'] } } },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('quarantines phishing for one domain, lets a safe site through for another', async () => {
    const strict = await deliver(gw, 'a@strict.test', alternative('locked', 'x\r\n', PHISH));
    expect(strict.row).toMatchObject({ verdict: 'phishing', status: 'quarantined' });
    const trusting = await deliver(gw, 'a@trusting.test', alternative('locked', 'x\r\n', PHISH));
    expect(trusting.row.verdict).toBe('clean');
    expect(splitMessage(trusting.got).head).toContain('Subject: <Cleaned> locked\r\n'); // the script still goes
  });
});
