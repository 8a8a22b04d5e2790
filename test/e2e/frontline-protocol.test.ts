// The front line's protocol defences and limits over raw sockets: SMTP smuggling variants and bare
// line endings (refused or normalised — never a second transaction), RFC 2920 pipelining, early
// talkers, command length, per-client connection/message/recipient limits and the idle timeout.
// No DNS checks here (helo/rdns/spf off), so each test shows its one check's reply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtp } from '../support/smtp-client.ts';
import { mailboxMessages, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const NO_DNS_CHECKS = { helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false }, trusted: { networks: [] } };
const ip = (n: number) => `127.0.0.${n}`;
const TRUSTED = '127.0.0.250';

/** The published smuggling end-of-data variants (SEC Consult 2023, Postfix/Sendmail/Exim advisories). */
const SMUGGLING: [string, string][] = [
  ['<LF>.<LF>', '\n.\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR><LF>.<LF>', '\r\n.\n'],
  ['<CR><LF>.<CR>', '\r\n.\r'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
  ['<LF>.<CR>', '\n.\r'],
  ['<CR>.<LF>', '\r.\n'],
];

/** A first message whose "end" is `end`, followed by a complete second transaction to bob@. */
const smuggle = (end: string) =>
  `From: alice@good.test\r\nTo: alice@example.test\r\nSubject: outer\r\n\r\nouter body${end}` +
  'MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n' +
  'From: admin@example.test\r\nTo: bob@example.test\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n';

async function smuggleFrom(gw: TestGateway, end: string) {
  const c = await RawSmtp.connect(gw.smtpPort);
  await c.hello();
  const replies = await c.transaction('alice@good.test', ['alice@example.test'], smuggle(end));
  // Whatever the client hid after its fake end of data must not have produced replies of its own:
  // the very next reply is the one to our QUIT.
  const quit = await c.cmd('QUIT');
  c.close();
  return { replies, quit };
}

describe('SMTP smuggling and bare line endings: reject (the default)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ domains: { 'example.test': {} }, overrides: { checks: NO_DNS_CHECKS } });
  });
  afterAll(() => gw?.stop());

  it.each(SMUGGLING)('%s: one transaction, refused with 550 5.5.2, nothing smuggled', async (_name, end) => {
    const before = (await gw.stores.store.list({ limit: 1000 })).length;
    const { replies, quit } = await smuggleFrom(gw, end);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 550]);
    expect(replies[3]!.text).toMatch(/^5\.5\.2 Error: bare <(LF|CR)> received in the message; lines must end with <CR><LF> \(RFC 5321 section 2\.3\.8\)$/);
    expect(quit.code).toBe(221);
    expect(await gw.stores.store.list({ limit: 1000 })).toHaveLength(before);
    expect(await gw.stores.spool.committedIds()).toHaveLength(0);
  });

  it('a bare LF inside an otherwise normal message is refused too, a clean one is not', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    const bad = await c.transaction('alice@good.test', ['alice@example.test'], 'Subject: x\r\n\r\nline one\nline two\r\n.\r\n');
    expect(bad[3]).toMatchObject({ code: 550, text: '5.5.2 Error: bare <LF> received in the message; lines must end with <CR><LF> (RFC 5321 section 2.3.8)' });
    const bareCr = await c.transaction('alice@good.test', ['alice@example.test'], 'Subject: x\r\n\r\nline one\rline two\r\n.\r\n');
    expect(bareCr[3]).toMatchObject({
      code: 550,
      text: '5.5.2 Error: bare <CR> received in the message; lines must end with <CR><LF> (RFC 5321 section 2.3.8)',
    });
    const good = await c.transaction('alice@good.test', ['alice@example.test'], 'Subject: x\r\n\r\nline one\r\nline two\r\n.\r\n');
    expect(good[3]!.code).toBe(250);
    c.close();
    expect((await gw.stores.store.refusals({ limit: 50 })).some((r) => r.stage === 'data' && r.reply.startsWith('550 5.5.2 Error: bare <CR>'))).toBe(true);
  });

  it('a command line ended by a bare LF → 550 5.5.2', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    const r = await (c.write('MAIL FROM:<alice@good.test>\n'), c.reply());
    c.close();
    expect(r).toMatchObject({ code: 550, text: '5.5.2 Error: bare <LF> received in the command; lines must end with <CR><LF> (RFC 5321 section 2.3.8)' });
  });
});

describe('SMTP smuggling with bareLineEndings: normalize', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ domains: { 'example.test': {} }, overrides: { checks: { ...NO_DNS_CHECKS, protocol: { bareLineEndings: 'normalize' } } } });
  });
  afterAll(() => gw?.stop());

  it.each(SMUGGLING)('%s: accepted as ONE message for alice only; the "smuggled" one is body text', async (_name, end) => {
    const { replies, quit } = await smuggleFrom(gw, end);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 250]);
    expect(quit.code).toBe(221);
    const id = /queued as (\S+)/.exec(replies[3]!.text)![1]!;
    await waitForStatus(gw, id, ['delivered']);
    const row = (await gw.stores.store.get(id))!;
    expect(row.rcptTo).toEqual(['alice@example.test']);
    expect(row.mailFrom).toBe('alice@good.test');
    const delivered = (await mailboxMessages(gw, 'alice@example.test')).map((m) => m.toString('latin1'));
    const mine = delivered.find((m) => m.includes(`X-Mailmoat-ID: ${id}`))!;
    expect(mine).toContain('smuggled body');
    expect(mine).not.toMatch(/[^\r]\n|\r[^\n]/); // every line ending is CRLF now
    expect(await mailboxMessages(gw, 'bob@example.test')).toHaveLength(0);
  });
});

describe('pipelining (RFC 2920) and early talkers', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        checks: { ...NO_DNS_CHECKS, trusted: { networks: [TRUSTED] }, protocol: { greetPauseMs: 300 } },
        smtp: { listen: { host: '127.0.0.1', port: 0 }, maxMessageBytes: 200_000, maxRecipients: 5, maxCommandLength: 600 },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('allowed pipelining (MAIL, RCPT, DATA in one group after EHLO) is accepted', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    c.write('MAIL FROM:<alice@good.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n');
    const codes = [(await c.reply()).code, (await c.reply()).code, (await c.reply()).code, (await c.reply()).code];
    expect(codes).toEqual([250, 250, 250, 354]);
    c.write('Subject: pipelined\r\n\r\nok\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    c.close();
  });

  it('the message sent before the 354 (DATA not last in its group) → 554 5.5.0 at the end of DATA', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    c.write('MAIL FROM:<alice@good.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: eager\r\n\r\nno wait\r\n.\r\n');
    const replies = [await c.reply(), await c.reply(), await c.reply(), await c.reply()];
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 554]);
    expect(replies[3]!.text).toBe('5.5.0 Error: SMTP protocol synchronization: command sent before the reply to DATA (RFC 2920)');
    // the session stays tainted: the next transaction is refused at MAIL
    expect(await c.cmd('MAIL FROM:<alice@good.test>')).toMatchObject({ code: 554 });
    c.close();
  });

  it('commands pipelined after HELO (no EHLO, so no PIPELINING) → that transaction gets 554 5.5.0 at its end of DATA', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.reply();
    c.write('HELO mail.good.test\r\nMAIL FROM:<alice@good.test>\r\n');
    expect((await c.reply()).code).toBe(250); // HELO
    expect((await c.reply()).code).toBe(250); // MAIL
    expect((await c.cmd('RCPT TO:<alice@example.test>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    c.write('Subject: x\r\n\r\nhi\r\n.\r\n');
    const r = await c.reply();
    c.close();
    expect(r).toMatchObject({ code: 554, text: '5.5.0 Error: SMTP protocol synchronization: command sent before the reply to HELO (RFC 2920)' });
  });

  it('talking before the greeting (within the greet pause) → 421, recorded', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(31) });
    await new Promise((r) => setTimeout(r, 150));
    c.write('EHLO mail.good.test\r\n');
    const r = await c.reply();
    expect(r.code).toBe(421);
    expect(r.text).toBe('mx.gateway.test You talk too soon');
    await new Promise((res) => setTimeout(res, 200));
    expect(
      (await gw.stores.store.refusals({ limit: 50 })).some((x) => x.clientIp === ip(31) && x.stage === 'connect' && x.reply.includes('You talk too soon')),
    ).toBe(true);
  });

  it('a client of a trusted network is not held by the greet pause: talking first is not refused', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: TRUSTED, early: 'EHLO relay.good.test\r\n' });
    expect((await c.reply()).code).toBe(220);
    expect((await c.reply()).code).toBe(250);
    c.close();
  });

  it('a command line over smtp.maxCommandLength → 421', async () => {
    const c = await RawSmtp.connect(gw.smtpPort);
    await c.hello();
    const r = await c.cmd(`MAIL FROM:<${'a'.repeat(700)}@good.test>`);
    c.close();
    expect(r).toMatchObject({ code: 421, text: 'Error: Command line too long' });
  });
});

describe('greetPauseMs 0 (the default): the greeting is sent at once', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ domains: { 'example.test': {} }, overrides: { checks: NO_DNS_CHECKS } });
  });
  afterAll(() => gw?.stop());

  // smtp-server's own fixed 100 ms pre-greeting delay would answer this client "421 You talk too
  // soon" (gateway/smtp/greeting.ts removes it); with no pause configured it is served.
  it('a client that sends EHLO right after connecting gets the greeting, then 250, and its message is accepted', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(32), early: 'EHLO mail.good.test\r\n' });
    expect((await c.reply()).code).toBe(220);
    expect((await c.reply()).code).toBe(250);
    const replies = await c.transaction('alice@good.test', ['alice@example.test'], 'Subject: eager\r\n\r\nhi\r\n.\r\n');
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 250]);
    c.close();
  });
});

describe('limits', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        smtp: { listen: { host: '127.0.0.1', port: 0 }, maxMessageBytes: 200_000, maxRecipients: 4, socketTimeoutMs: 700, maxClients: 3 },
        checks: {
          ...NO_DNS_CHECKS,
          limits: {
            connectionsPerClient: 2,
            connectionRate: { max: 4, windowSec: 60 },
            messageRate: { max: 2, windowSec: 60 },
            recipientRate: { max: 6, windowSec: 60 },
          },
        },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('simultaneous sessions per client → 421 4.7.0, other clients unaffected, freed on close; in total → 421', async () => {
    const a = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(40) });
    const b = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(40) });
    expect((await a.reply()).code).toBe(220);
    expect((await b.reply()).code).toBe(220);
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(40) });
    expect(await c.reply()).toMatchObject({
      code: 421,
      text: '4.7.0 Error: too many connections from [127.0.0.40] (at most 2 at a time), please try again later',
    });
    const other = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(41) });
    expect((await other.reply()).code).toBe(220);
    // sessions in total (smtp.maxClients: 3), whoever the client
    const full = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(47) });
    expect(await full.reply()).toMatchObject({ code: 421, text: 'mx.gateway.test Too many connected clients, try again in a moment' });
    a.close();
    await new Promise((r) => setTimeout(r, 300));
    const d = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(40) });
    expect((await d.reply()).code).toBe(220);
    for (const x of [b, c, other, d, full]) x.close();
  });

  it('connections per client per window → 421 4.7.0', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(42) });
      const r = await c.reply();
      codes.push(r.code);
      if (i === 4) expect(r.text).toBe('4.7.0 Error: too many connections from [127.0.0.42] (at most 4 per 60 s), please try again later');
      c.close();
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(codes).toEqual([220, 220, 220, 220, 421]);
  });

  it('messages per client per window → 450 4.7.1 at MAIL', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(43) });
    await c.hello();
    expect((await c.cmd('MAIL FROM:<a@good.test>')).code).toBe(250);
    await c.cmd('RSET');
    expect((await c.cmd('MAIL FROM:<a@good.test>')).code).toBe(250);
    await c.cmd('RSET');
    expect(await c.cmd('MAIL FROM:<a@good.test>')).toMatchObject({
      code: 450,
      text: '4.7.1 Error: too much mail from [127.0.0.43] (at most 2 messages per 60 s), please try again later',
    });
    c.close();
  });

  it('recipients per message → 452 4.5.3; recipients per client per window → 450 4.7.1', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(44) });
    await c.hello();
    await c.cmd('MAIL FROM:<a@good.test>');
    const first = [];
    for (const r of ['r1', 'r2', 'r3', 'r4', 'r5']) first.push(await c.cmd(`RCPT TO:<${r}@example.test>`));
    expect(first.map((r) => r.code)).toEqual([250, 250, 250, 250, 452]);
    expect(first[4]!.text).toBe('4.5.3 Too many recipients: at most 4 per message, send the rest in another transaction');
    await c.cmd('RSET');
    await c.cmd('MAIL FROM:<a@good.test>');
    const second = [];
    for (const r of ['s1', 's2', 's3']) second.push(await c.cmd(`RCPT TO:<${r}@example.test>`));
    expect(second.map((r) => r.code)).toEqual([250, 250, 450]);
    expect(second[2]!.text).toBe('4.7.1 Error: too many recipients from [127.0.0.44] (at most 6 per 60 s), please try again later');
    c.close();
  });

  it('an idle session is closed after smtp.socketTimeoutMs with 421', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(46) });
    await c.hello();
    const r = await c.reply(3_000);
    expect(r).toMatchObject({ code: 421, text: 'Timeout - closing connection' });
  });
});
