// STARTTLS with several certificates chosen by SNI and reloaded without a restart, "require TLS",
// PROXY protocol v1 from a load balancer (the checks see the real client), and the authenticated
// submission listener (AUTH only after STARTTLS, sender ownership, same scanning path).
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { RawSmtp, saslPlain } from '../support/smtp-client.ts';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { mailboxMessages, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { EICAR } from '../support/eicar.ts';
import { metricValue } from '../../gateway/metrics.ts';
import { reversedLabels } from '../../core/ip.ts';
import { openAccountStore } from '../../gateway/store/accounts.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { makeCert } from '../support/certs.ts';

const message = (subject: string) =>
  `From: alice@example.test\r\nTo: carol@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\nhello\r\n`;
const withEicar = (subject: string) =>
  `From: alice@example.test\r\nTo: carol@example.test\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n` +
  `--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/octet-stream; name="eicar.com"\r\n` +
  `Content-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--b--\r\n`;

describe('STARTTLS: certificates by SNI, reload without restart', () => {
  let gw: TestGateway;
  let one: { cert: string; key: string };
  beforeAll(async () => {
    one = makeCert(['mx1.test']);
    const two = makeCert(['mx2.test', '*.mx2.test']);
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        tls: { certificates: [one, two], reloadCheckSec: 1 },
        checks: { helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false } },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('offers STARTTLS and picks the certificate by SNI (exact, wildcard, default)', async () => {
    const seen: Record<string, string> = {};
    for (const sni of ['mx1.test', 'mx2.test', 'a.mx2.test', undefined]) {
      const c = await RawSmtp.connect(gw.smtpPort);
      const ehlo = await c.hello();
      expect(ehlo.lines.join('\n')).toContain('STARTTLS');
      seen[sni ?? '(none)'] = (await c.starttls(sni)).subject;
      c.close();
    }
    expect(seen).toEqual({ 'mx1.test': 'mx1.test', 'mx2.test': 'mx2.test', 'a.mx2.test': 'mx2.test', '(none)': 'mx1.test' });
  });

  it('a message over TLS is received and marked ESMTPS in our Received header', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    await c.starttls('mx1.test');
    expect((await c.cmd('EHLO mail.good.test')).code).toBe(250);
    const replies = await c.transaction('alice@example.test', ['carol@example.test'], `${message('over tls')}.\r\n`);
    c.close();
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 250]);
    await waitForStatus(gw, /queued as (\S+)/.exec(replies[3]!.text)![1]!, ['delivered']);
    const [m] = await mailboxMessages(gw, 'carol@example.test');
    expect(m!.toString('latin1')).toMatch(/^Received: from mail\.good\.test [\s\S]*? with ESMTPS id /);
  });

  it('renewed files are served to new sessions without a restart (reload and mtime poll); bad files keep the old ones', async () => {
    const before = await (async () => {
      const c = await RawSmtp.connect(gw.smtpPort);
      await c.hello();
      const cert = await c.starttls('mx1.test');
      c.close();
      return cert.serial;
    })();
    const renewed = makeCert(['mx1.test']);
    writeFileSync(one.cert, readFileSync(renewed.cert));
    writeFileSync(one.key, readFileSync(renewed.key));
    expect(gw.front.reloadTls()).toBe(true);
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    const after = (await c.starttls('mx1.test')).serial;
    c.close();
    expect(after).not.toBe(before);

    // a key that does not belong to the certificate: refused, the renewed pair stays in use
    const errors = await metricValue('mailmoat_tls_reloads_total', { outcome: 'error' });
    const other = makeCert(['mx1.test']);
    writeFileSync(one.key, readFileSync(other.key));
    expect(gw.front.reloadTls()).toBe(false);
    expect(await metricValue('mailmoat_tls_reloads_total', { outcome: 'error' })).toBe(errors + 1);
    const d = await RawSmtp.connect(gw.smtpPort);
    await d.hello();
    expect((await d.starttls('mx1.test')).serial).toBe(after);
    d.close();

    // the mtime poll (reloadCheckSec: 1) picks up a good pair on its own
    writeFileSync(one.cert, readFileSync(other.cert));
    const deadline = Date.now() + 5_000;
    let serial = after;
    while (serial === after && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      const e = await RawSmtp.connect(gw.smtpPort);
      await e.hello();
      serial = (await e.starttls('mx1.test')).serial;
      e.close();
    }
    expect(serial).toBe(
      execFileSync('openssl', ['x509', '-noout', '-serial', '-in', other.cert])
        .toString()
        .trim()
        .replace(/^serial=/, '')
        .toUpperCase(),
    );
  });
});

describe('smtp.requireTls', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: { smtp: { listen: { host: '127.0.0.1', port: 0 }, requireTls: true }, tls: { certificates: [makeCert(['mx.gateway.test'])] } },
    });
  });
  afterAll(() => gw?.stop());

  it('MAIL before STARTTLS → 530 5.7.0; after it → 250', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    expect(await c.cmd('MAIL FROM:<alice@good.test>')).toMatchObject({ code: 530, text: '5.7.0 Must issue a STARTTLS command first' });
    await c.starttls();
    await c.cmd('EHLO mail.good.test');
    expect((await c.cmd('MAIL FROM:<alice@good.test>')).code).toBe(250);
    c.close();
  });
});

describe('PROXY protocol v1 from a load balancer', () => {
  let gw: TestGateway;
  let dns: FakeDns;
  beforeAll(async () => {
    dns = await startFakeDns({
      '55.2.0.192.zen.bl.test': { A: ['127.0.0.2'], TXT: ['listed: 192.0.2.55'] },
      '66.2.0.192.in-addr.arpa': { PTR: ['relay.good.test'] },
      'relay.good.test': { A: ['192.0.2.66'] },
      'mail.good.test': { A: ['192.0.2.66'] },
      [`${reversedLabels('2001:db8::55')}.zen.bl.test`]: { A: ['127.0.0.3'], TXT: ['listed: 2001:db8::55'] },
    });
    gw = await startTestGateway({
      dns,
      domains: { 'example.test': {} },
      // loopback stays trusted (the default): the balancer is on it, the real clients are not
      overrides: { proxy: { from: ['127.0.0.1'] }, checks: { dnsbl: { lists: [{ zone: 'zen.bl.test' }] }, spf: { enabled: false } } },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await dns?.close();
  });

  it('the checks see the real client: a listed client behind the balancer is refused by its own address', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { proxy: 'PROXY TCP4 192.0.2.55 127.0.0.1 40000 25\r\n' });
    await c.hello();
    await c.cmd('MAIL FROM:<bob@good.test>');
    const r = await c.cmd('RCPT TO:<alice@example.test>');
    c.close();
    expect(r).toMatchObject({ code: 554, text: '5.7.1 Service unavailable; client [192.0.2.55] blocked using zen.bl.test; listed: 192.0.2.55' });
  });

  it('IPv6 clients too (PROXY TCP6): the list is asked by nibbles', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { proxy: 'PROXY TCP6 2001:db8::55 2001:db8::1 40003 25\r\n' });
    await c.hello();
    await c.cmd('MAIL FROM:<bob@good.test>');
    const r = await c.cmd('RCPT TO:<alice@example.test>');
    c.close();
    expect(r).toMatchObject({ code: 554, text: '5.7.1 Service unavailable; client [2001:db8::55] blocked using zen.bl.test; listed: 2001:db8::55' });
  });

  it('an accepted message records the real client and its verified name', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { proxy: 'PROXY TCP4 192.0.2.66 127.0.0.1 40001 25\r\n' });
    await c.hello('mail.good.test');
    const replies = await c.transaction('bob@good.test', ['alice@example.test'], `${message('proxied')}.\r\n`);
    c.close();
    const id = /queued as (\S+)/.exec(replies[3]!.text)![1]!;
    expect((await gw.stores.store.get(id))?.clientIp).toBe('192.0.2.66');
    await waitForStatus(gw, id, ['delivered']);
    const [m] = await mailboxMessages(gw, 'alice@example.test');
    expect(m!.toString('latin1')).toMatch(/^Received: from mail\.good\.test \(relay\.good\.test \[192\.0\.2\.66\]\)/);
  });

  // With no greet pause (greetPauseMs 0) the header is not an early talk any more: it is read as
  // a command after our greeting, and refused as an unknown one (as Postfix smtpd does).
  it('a PROXY header from anyone else is not believed: an unknown command after the greeting', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: '127.0.0.50', proxy: 'PROXY TCP4 192.0.2.66 127.0.0.1 40002 25\r\n' });
    const greeting = await c.reply();
    const r = await c.reply();
    c.close();
    expect(greeting.code).toBe(220);
    expect(r.code).toBeGreaterThanOrEqual(500);
    expect(c.transcript).not.toContain('192.0.2.66');
  });
});

describe('submission listener', () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        tls: { certificates: [makeCert(['mx.gateway.test'])] },
        submission: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, maxAuthFailures: 3 },
      },
    });
    port = gw.front.ports.submission!;
    const accounts = openAccountStore(gw.stores.sql);
    await accounts.create({
      username: 'alice@example.test',
      role: 'user',
      addresses: ['alice@example.test'],
      passwordHash: await hashPassword('correct horse'),
    });
  });
  afterAll(() => gw?.stop());

  it('before STARTTLS: no AUTH offered or taken, MAIL → 530 5.7.0 Must issue a STARTTLS command first', async () => {
    const c = await RawSmtp.connect(port);
    const ehlo = await c.hello();
    expect(ehlo.lines.join('\n')).not.toMatch(/AUTH/);
    expect(ehlo.lines.join('\n')).toContain('STARTTLS');
    expect((await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'correct horse')}`)).code).toBeGreaterThanOrEqual(500);
    expect(await c.cmd('MAIL FROM:<alice@example.test>')).toMatchObject({ code: 530, text: '5.7.0 Must issue a STARTTLS command first' });
    c.close();
  });

  it('after STARTTLS: AUTH offered; MAIL without it → 530 5.7.0; wrong passwords → 535 5.7.8, then 421 4.7.0', async () => {
    const c = await RawSmtp.connect(port);
    await c.hello();
    await c.starttls();
    const ehlo = await c.cmd('EHLO client.test');
    expect(ehlo.lines.join('\n')).toMatch(/AUTH PLAIN LOGIN/);
    expect(await c.cmd('MAIL FROM:<alice@example.test>')).toMatchObject({ code: 530, text: '5.7.0 Authentication required' });
    expect(await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'wrong')}`)).toMatchObject({
      code: 535,
      text: '5.7.8 Authentication credentials invalid',
    });
    expect((await c.cmd(`AUTH PLAIN ${saslPlain('nobody@example.test', 'wrong')}`)).code).toBe(535);
    expect(await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'again wrong')}`)).toMatchObject({
      code: 421,
      text: '4.7.0 Too many failed authentication attempts, closing connection',
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(c.closed).toBe(true);
  });

  it('authenticated: only the user’s own sender address (553 5.7.1 otherwise); other domains may be relayed', async () => {
    const c = await RawSmtp.connect(port);
    await c.hello();
    await c.starttls();
    await c.cmd('EHLO client.test');
    expect((await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'correct horse')}`)).code).toBe(235);
    expect(await c.cmd('MAIL FROM:<boss@example.test>')).toMatchObject({
      code: 553,
      text: '5.7.1 <boss@example.test>: Sender address rejected: not owned by user alice@example.test',
    });
    expect((await c.cmd('MAIL FROM:<alice@example.test>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<friend@elsewhere.test>')).code).toBe(250);
    c.close();
  });

  it('a real client (nodemailer, requireTLS + AUTH) submits; the mail is scanned like any other and stamped ESMTPSA (RFC 3848)', async () => {
    const transport = createTransport({
      host: '127.0.0.1',
      port,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@example.test', pass: 'correct horse' },
    });
    try {
      const clean = await transport.sendMail({ envelope: { from: 'alice@example.test', to: ['carol@example.test'] }, raw: message('submitted') });
      const cleanId = /queued as (\S+)/.exec(String(clean.response))![1]!;
      // Issue 15: a virus from an authenticated sender is refused in session (submission.refuse).
      await expect(transport.sendMail({ envelope: { from: 'alice@example.test', to: ['carol@example.test'] }, raw: withEicar('eicar') })).rejects.toMatchObject(
        { responseCode: 554 },
      );
      await waitForStatus(gw, cleanId, ['delivered']);
      const delivered = (await mailboxMessages(gw, 'carol@example.test')).map((m) => m.toString('latin1'));
      expect(delivered.some((m) => m.includes('Subject: submitted') && /\swith ESMTPSA id /.test(m))).toBe(true);
      expect(delivered.some((m) => m.includes('Subject: eicar'))).toBe(false);
    } finally {
      transport.close();
    }
  });

  it('the MX listener still takes no AUTH; its greeting names ESMTP once', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    expect((await c.reply()).text).toBe(`${gw.config.hostname} ESMTP mailmoat`);
    const ehlo = await c.cmd('EHLO mail.good.test');
    expect(ehlo.lines.join('\n')).not.toMatch(/AUTH/);
    c.close();
  });
});
