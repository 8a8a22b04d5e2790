// Issue 8: reportspam@ / notspam@ over real SMTP with the suite's real spamd (--allow-tell).
// Reports from the domain's users are learned (spamd answers DidSet) and never delivered; an
// outsider is refused at RCPT; a sender of the domain without SPF pass and without a DKIM pass is
// recorded as refused and nothing is learned; a DKIM-signed one is learned.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimSign } from 'mailauth';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { buildMessage, text, mailDate } from '../support/mime.ts';
import { openListStore } from '../../gateway/store/lists.ts';

const TRUSTED = '127.0.0.1'; // checks.trusted.networks below: the domain's own mail server
const OUTSIDE = '127.0.0.11';
const SPF_OK = '127.0.0.10'; // example.test's SPF names this one

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const der = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), txt: `v=DKIM1; k=rsa; p=${der}`.match(/.{1,250}/g) ?? [] };
}

/** A spam with words of its own (spamd recognises a message it learned before and would not say DidSet again). */
const spam = (tag: string) => {
  const token = randomBytes(6).toString('hex');
  return Buffer.from(
    `Received: from bad.example (bad.example [192.0.2.66])\r\n\tby mx.example.test; Mon, 23 Nov 2026 10:00:00 +0000\r\nFrom: "Prize Office" <prize-${token}@lottery.example>\r\nTo: alice@example.test\r\nSubject: ${tag}: you won ${token}\r\nMessage-ID: <${token}@lottery.example>\r\nDate: ${mailDate()}\r\n\r\nDear winner ${token}, claim your prize ${tag} now at lottery.example. Cheap ${token} offer.\r\n`,
  );
};
const reporter = (subject: string, from = 'alice@example.test') => [
  `From: Alice <${from}>`,
  'To: reportspam@example.test',
  `Subject: ${subject}`,
  'Date: Mon, 23 Nov 2026 11:00:00 +0000',
  `Message-ID: <${randomBytes(6).toString('hex')}@example.test>`,
  'MIME-Version: 1.0',
];
const eml = (raw: Buffer, name: string) => ({
  contentType: 'message/rfc822',
  disposition: `attachment; filename="${name}"`,
  encoding: '7bit' as const,
  body: raw,
});

describe('reportspam@ and notspam@', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  const dkim = keyPair();

  beforeAll(async () => {
    dns = await startFakeDns({
      'example.test': { TXT: [`v=spf1 ip4:${SPF_OK} ~all`] },
      'sel._domainkey.example.test': { TXT: [dkim.txt] },
    });
    gw = await startTestGateway({
      dns: { address: dns.address },
      domains: { 'example.test': { reports: { addSenderToBlockList: true } } },
      overrides: {
        checks: {
          trusted: { networks: [`${TRUSTED}/32`] },
          helo: { unresolvable: 'ignore' },
          rdns: { missingPtr: 'ignore', notConfirmed: 'ignore' },
        },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await dns?.close();
  });

  async function report(raw: Buffer, o: { from?: string; to?: string; client?: string } = {}) {
    const sent = await sendRaw(gw.smtpPort, { from: o.from ?? 'alice@example.test', to: [o.to ?? 'reportspam@example.test'] }, raw, {
      localAddress: o.client ?? TRUSTED,
    });
    expect(sent.code, sent.response).toBe(250);
    await waitForStatus(gw, sent.id!, ['reported']);
    return { id: sent.id!, row: (await gw.stores.store.get(sent.id!))!, events: await gw.stores.store.events(sent.id!) };
  }
  // What spamd learned; the learned filter's part (issue 19, after "; learned filter: ") is tested in reports-bayes.test.ts.
  const learned = (events: { kind: string; detail: string }[]) =>
    events.filter((e) => e.kind === 'learned').map((e) => e.detail.split('; learned filter: ')[0]);

  it('learns a forward with a message/rfc822 attachment (spamd DidSet), delivers nothing to reportspam@, acknowledges and blocks the sender for the reporter', async () => {
    const original = spam('attached');
    const r = await report(buildMessage({ multipart: 'mixed', parts: [text('This got through.'), eml(original, 'spam.eml')] }, reporter('Fwd: spam')));
    expect(r.row.verdict).toBe('report');
    expect(learned(r.events)).toEqual(['attachment 1 (spam.eml): learned as spam']);
    expect(r.row.reason).toContain('1 of 1 message(s) learned as spam');
    expect(await mailboxMessages(gw, 'reportspam@example.test')).toEqual([]);
    const ack = await waitFor(async () => (await mailboxMessages(gw, 'alice@example.test')).find((m) => m.toString().includes(r.id)), {
      what: 'the acknowledgement',
    });
    expect(ack.toString()).toMatch(/Subject: Your spam report: 1 message\(s\) learned/);
    expect(ack.toString()).toContain('attachment 1 (spam.eml): learned as spam');
    const from = /prize-[0-9a-f]+@lottery\.example/.exec(original.toString())![0];
    expect(r.events.find((e) => e.kind === 'blocked-sender')?.detail).toBe(`${from} added to the block list of alice@example.test`);
    expect((await openListStore(gw.stores.sql).forRecipient('alice@example.test')).some((e) => e.kind === 'block' && e.text === from)).toBe(true);
  });

  it('learns an inline forward', async () => {
    const original = spam('inline').toString();
    const headers = original
      .slice(0, original.indexOf('\r\n\r\n'))
      .split('\r\n')
      .filter((l) => /^(From|Subject|Date|To):/.test(l))
      .join('\r\n');
    const body = `FYI\r\n\r\n---------- Forwarded message ---------\r\n${headers}\r\n\r\n${original.slice(original.indexOf('\r\n\r\n') + 4)}`;
    const r = await report(buildMessage(text(body), reporter('Fwd: inline')));
    expect(learned(r.events)).toEqual(['inline forward: learned as spam']);
  });

  it('learns each message of a multi-message report, and a redirected one', async () => {
    const r = await report(
      buildMessage(
        { multipart: 'mixed', parts: [text('three'), eml(spam('m1'), 'a.eml'), eml(spam('m2'), 'b.eml'), eml(spam('m3'), 'c.eml')] },
        reporter('three spams'),
      ),
    );
    expect(learned(r.events)).toEqual([
      'attachment 1 (a.eml): learned as spam',
      'attachment 2 (b.eml): learned as spam',
      'attachment 3 (c.eml): learned as spam',
    ]);
    const redirected = Buffer.concat([
      Buffer.from('Resent-From: alice@example.test\r\nResent-To: reportspam@example.test\r\nResent-Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n'),
      spam('resent'),
    ]);
    const rr = await report(redirected);
    expect(learned(rr.events)).toEqual(['redirected message (Resent- headers): learned as spam']);
  });

  it('learns a false positive sent to notspam@ as ham, and shows what could not be extracted', async () => {
    const ham = Buffer.from(
      `From: Bob <bob@partner.example>\r\nTo: alice@example.test\r\nSubject: minutes ${randomBytes(4).toString('hex')}\r\nDate: ${mailDate()}\r\n\r\nThe meeting minutes are attached ${randomBytes(4).toString('hex')}.\r\n`,
    );
    const r = await report(buildMessage({ multipart: 'mixed', parts: [text('not spam'), eml(ham, 'ok.eml')] }, reporter('not spam')), {
      to: 'notspam@example.test',
    });
    expect(learned(r.events)).toEqual(['attachment 1 (ok.eml): learned as ham']);
    const none = await report(buildMessage(text('I get too much spam, please help.\r\n'), reporter('help')));
    expect(learned(none.events)).toEqual([]);
    expect(none.events.find((e) => e.kind === 'not-extracted')?.detail).toContain('no reported message found');
    expect(none.row.reason).toContain('0 of 0 message(s) learned');
  });

  it('refuses an outside sender at RCPT with 550 5.7.1, and a report address mixed with other recipients with 452', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'mallory@evil.example', to: ['reportspam@example.test'] }, spam('outsider'), { localAddress: OUTSIDE });
    expect(sent.code).toBe(550);
    expect(sent.response).toContain('5.7.1 <reportspam@example.test>: Recipient address rejected: only users of example.test may report spam here');
    expect((await gw.stores.store.refusals({ limit: 20 })).some((x) => x.recipient === 'reportspam@example.test' && x.reply.startsWith('550 5.7.1'))).toBe(
      true,
    );
    const mixed = await sendRaw(gw.smtpPort, { from: 'alice@example.test', to: ['bob@example.test', 'reportspam@example.test'] }, spam('mixed'), {
      localAddress: TRUSTED,
    });
    expect(mixed.code).toBe(250); // bob's copy; the report address was refused with 452 for another transaction
    const row = (await gw.stores.store.get(mixed.id!))!;
    expect(row.rcptTo).toEqual(['bob@example.test']);
  });

  it('trusts a sender of the domain whose SPF passes at RCPT', async () => {
    const r = await report(buildMessage({ multipart: 'mixed', parts: [eml(spam('spf'), 'spf.eml')] }, reporter('spf')), { client: SPF_OK });
    expect(learned(r.events)).toEqual(['attachment 1 (spf.eml): learned as spam']);
  });

  it('a sender of the domain without SPF pass: learned only with an aligned DKIM pass, else recorded as refused', async () => {
    const unsigned = await report(buildMessage({ multipart: 'mixed', parts: [eml(spam('forged'), 'f.eml')] }, reporter('forged', 'carol@example.test')), {
      from: 'carol@example.test',
      client: OUTSIDE,
    });
    expect(unsigned.row.verdict).toBe('report-refused');
    expect(unsigned.row.reason).toContain('no passing DKIM signature of example.test (unsigned); nothing learned');
    expect(learned(unsigned.events)).toEqual([]);
    expect((await mailboxMessages(gw, 'carol@example.test')).length).toBe(0); // no acknowledgement to a possibly forged sender

    const body = buildMessage({ multipart: 'mixed', parts: [eml(spam('signed'), 's.eml')] }, reporter('signed', 'carol@example.test'));
    const key = { signingDomain: 'example.test', selector: 'sel', privateKey: dkim.privateKey };
    const { signatures } = await dkimSign(body, { ...key, signatureData: [key] });
    const signed = await report(Buffer.concat([Buffer.from(signatures), body]), { from: 'carol@example.test', client: OUTSIDE });
    expect(signed.events.find((e) => e.kind === 'report-trusted')?.detail).toBe('DKIM pass: signature of example.test (selector sel)');
    expect(learned(signed.events)).toEqual(['attachment 1 (s.eml): learned as spam']);
  });
});
