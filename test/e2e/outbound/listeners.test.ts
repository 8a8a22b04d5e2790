// Issue 18, listeners: several submission listeners at once (587 STARTTLS with strict HELO, 465
// implicit TLS, 2525 relay for customers' static addresses with the client XBL check), and the
// first `submission:` shape still working beside them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { RawSmtp, saslPlain } from '../../support/smtp-client.ts';
import { startFakeDns, type FakeDns } from '../../support/fake-dns.ts';
import { mailboxMessages, startTestGateway, waitForStatus, type TestGateway } from '../../support/gateway.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { hashPassword } from '../../../gateway/passwords.ts';
import { configSchema } from '../../../gateway/config/schema.ts';
import { makeCert } from '../../support/certs.ts';

const message = (subject: string, from = 'alice@example.test') =>
  `From: ${from}\r\nTo: bob@elsewhere.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\nhello\r\n`;

describe('submission listeners: 587 + 465 + 2525 relay', () => {
  let gw: TestGateway;
  let dns: FakeDns;
  beforeAll(async () => {
    dns = await startFakeDns({
      // 127.0.0.78 is an infected PC: listed in the (fake) XBL with the list's own text.
      '78.0.0.127.xbl.bl.test': { A: ['127.0.0.4'], TXT: ['https://www.spamhaus.org/query/ip/127.0.0.78 (XBL)'] },
      // 127.0.0.77, the customer's static address, is on a policy list: not counted on the relay port.
      '77.0.0.127.pbl.bl.test': { A: ['127.0.0.10'], TXT: ['https://www.spamhaus.org/query/ip/127.0.0.77 (PBL)'] },
    });
    gw = await startTestGateway({
      dns,
      domains: { 'example.test': {}, 'elsewhere.test': {} },
      overrides: {
        tls: { certificates: [makeCert(['mx.gateway.test'])] },
        checks: {
          trusted: { networks: [] },
          rdns: { enabled: false },
          spf: { enabled: false },
          helo: { enabled: false },
          dnsbl: {
            lists: [
              { zone: 'xbl.bl.test', codes: { '127.0.0.4': 'XBL' } },
              { zone: 'pbl.bl.test', codes: { '127.0.0.10': 'PBL' } },
            ],
          },
        },
        submission: {
          enabled: true,
          listen: { host: '127.0.0.1', port: 0 },
          listeners: [
            { name: 'strict', port: 0, heloChecks: true, maxRecipients: 2 },
            { name: 'smtps', port: 0, tls: 'implicit' },
            {
              name: 'relay',
              port: 0,
              auth: 'off',
              relayNetworks: ['127.0.0.76/31', '127.0.0.78'],
              requireTls: false,
              dnsbl: true,
              dnsblZones: ['xbl.bl.test'],
            },
          ],
        },
      },
    });
    const accounts = openAccountStore(gw.stores.sql);
    await accounts.create({
      username: 'alice@example.test',
      role: 'user',
      addresses: ['alice@example.test'],
      passwordHash: await hashPassword('correct horse'),
    });
  });
  afterAll(async () => {
    await gw?.stop();
    dns?.close();
  });

  it('binds every listener, the first shape as "submission"', () => {
    expect(Object.keys(gw.front.ports.listeners).sort()).toEqual(['relay', 'smtps', 'strict', 'submission']);
    expect(gw.front.ports.submission).toBe(gw.front.ports.listeners.submission);
  });

  it('465: implicit TLS from the first byte, AUTH, mail relayed and delivered', async () => {
    const t = createTransport({
      host: '127.0.0.1',
      port: gw.front.ports.listeners.smtps,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@example.test', pass: 'correct horse' },
    });
    try {
      const sent = await t.sendMail({ envelope: { from: 'alice@example.test', to: ['bob@elsewhere.test'] }, raw: message('over 465') });
      await waitForStatus(gw, /queued as (\S+)/.exec(String(sent.response))![1]!, ['delivered']);
    } finally {
      t.close();
    }
    const got = (await mailboxMessages(gw, 'bob@elsewhere.test')).map((m) => m.toString('latin1'));
    expect(got.some((m) => m.includes('Subject: over 465'))).toBe(true);
  });

  it('587 with strict HELO: "EHLO localhost" is refused at RCPT; a good name passes; the listener’s own recipient cap', async () => {
    const session = async (helo: string, to: string[]) => {
      const c = await RawSmtp.connect(gw.front.ports.listeners.strict!);
      await c.hello();
      await c.starttls();
      await c.cmd(`EHLO ${helo}`);
      expect((await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'correct horse')}`)).code).toBe(235);
      expect((await c.cmd('MAIL FROM:<alice@example.test>')).code).toBe(250);
      const r = [];
      for (const rcpt of to) r.push(await c.cmd(`RCPT TO:<${rcpt}>`));
      c.close();
      return r;
    };
    const [bad] = await session('localhost', ['bob@elsewhere.test']);
    expect(bad!.code).toBe(550);
    expect(bad!.text).toMatch(/localhost/);
    const good = await session('pc1.customer.test', ['a@elsewhere.test', 'b@elsewhere.test', 'c@elsewhere.test']);
    expect(good.map((r) => r.code)).toEqual([250, 250, 452]);
  });

  it('2525 relay: a static customer address relays without AUTH (its PBL listing does not count here); a stranger is refused; an XBL-listed one gets the list’s text', async () => {
    const from = async (ip: string) => {
      const c = await RawSmtp.connect(gw.front.ports.listeners.relay!, { localAddress: ip });
      await c.hello();
      const ehlo = await c.cmd('EHLO customer.test');
      const r = await c.transaction('alice@example.test', ['bob@elsewhere.test'], `${message(`relay from ${ip}`)}.\r\n`);
      c.close();
      return { ehlo, r };
    };
    const ok = await from('127.0.0.77');
    expect(ok.ehlo.lines.join('\n')).not.toMatch(/AUTH/);
    expect(ok.r.map((x) => x.code)).toEqual([250, 250, 354, 250]);
    const stranger = await from('127.0.0.79');
    expect(stranger.r[0]).toMatchObject({ code: 554, text: '5.7.1 Relay access denied: client [127.0.0.79] may not relay through this port' });
    const infected = await from('127.0.0.78');
    expect(infected.r[1]!.code).toBe(554);
    expect(infected.r[1]!.text).toContain('https://www.spamhaus.org/query/ip/127.0.0.78 (XBL)');
  });

  it('the first shape still has AUTH required: MAIL without it → 530 5.7.0', async () => {
    const c = await RawSmtp.connect(gw.front.ports.submission!);
    await c.hello();
    await c.starttls();
    await c.cmd('EHLO client.test');
    expect(await c.cmd('MAIL FROM:<alice@example.test>')).toMatchObject({ code: 530, text: '5.7.0 Authentication required' });
    c.close();
  });
});

describe('submission config', () => {
  const base = { hostname: 'mx.test', dataDir: '/tmp/x', domains: { 'a.test': { downstream: [{ host: '127.0.0.1' }] } } };
  const error = (submission: unknown) => {
    const r = configSchema.safeParse({ ...base, submission });
    return r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
  };
  it('a relay-only listener needs relayNetworks; AUTH and implicit TLS need certificates', () => {
    expect(error({ listeners: [{ port: 2525, auth: 'off', requireTls: false }] })).toContain(
      'submission.listeners.0.relayNetworks: a listener without AUTH needs relayNetworks',
    );
    expect(error({ listeners: [{ port: 465, tls: 'implicit' }] })).toContain('submission.listeners.0.tls: this listener needs tls.certificates');
    expect(error({ listeners: [{ port: 2525, auth: 'off', requireTls: false, relayNetworks: ['10.0.0.0/8'] }] })).toBe('');
  });
});
