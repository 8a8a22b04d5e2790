// The front line over real SMTP against a scripted DNS server: HELO, reverse DNS, DNSBL/DNSWL,
// SPF, the score threshold, trust, exempt recipients, per-domain policy, address syntax and
// recipient verification. Clients connect from different 127.0.0.0/8 addresses, so each test
// client has its own PTR and list entries. Every refusal's reply code and text is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import { startFakeDns, type FakeDns, type FakeZone } from '../support/fake-dns.ts';
import { RawSmtp, type Reply } from '../support/smtp-client.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { metricValue } from '../../gateway/metrics.ts';

const ip = (n: number) => `127.0.0.${n}`;
const rev = (n: number) => `${n}.0.0.127`;

/** Clients 1..30 have a PTR host<n>.good.test that resolves back; the specials are replaced below. */
function zone(): FakeZone {
  const z: FakeZone = {
    'mail.good.test': { A: Array.from({ length: 30 }, (_, i) => ip(i + 1)) },
    'good.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'], A: ['127.0.0.1'] },
    'fail.test': { TXT: ['v=spf1 ip4:192.0.2.1 exp=why.fail.test -all'] },
    'why.fail.test': { TXT: ['%{i} is not a mail server of %{d}, see https://fail.test/spf'] },
    'soft.test': { TXT: ['v=spf1 ~all'] },
    'nospf.test': { A: ['192.0.2.1'] },
    'partner.test': { TXT: ['v=spf1 ip4:127.0.0.20 -all'] },
    'forged-partner.test': { TXT: ['v=spf1 ip4:192.0.2.7 -all'] },
    'broken.test': { TXT: ['v=spf1 include:nospf.test -all'] },
    // lists
    [`${rev(2)}.zen.bl.test`]: { A: ['127.0.0.2', '127.0.0.4'], TXT: ['Listed in SBL, see https://bl.test/q/127.0.0.2'] },
    [`${rev(7)}.zen.bl.test`]: { A: ['127.255.255.254'] },
    [`${rev(10)}.zen.bl.test`]: { A: ['127.0.0.2'] },
    [`${rev(10)}.wl.bl.test`]: { A: ['127.0.15.2'] },
    [`${rev(11)}.score.bl.test`]: { A: ['127.0.0.2'] },
    'spammy.test.dbl.bl.test': { A: ['127.0.1.2'], TXT: ['spam domain, see https://bl.test/d/spammy.test'] },
    'spammy.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    'fake.good.test': { A: ['192.0.2.99'] },
  };
  for (let n = 1; n <= 30; n++) {
    z[`${rev(n)}.in-addr.arpa`] = { PTR: [`host${n}.good.test`] };
    z[`host${n}.good.test`] = { A: [ip(n)] };
  }
  delete z[`${rev(3)}.in-addr.arpa`]; // 127.0.0.3: no PTR at all
  z[`${rev(4)}.in-addr.arpa`] = { PTR: ['fake.good.test'] }; // 127.0.0.4: PTR does not confirm
  return z;
}

const LISTS = [
  { zone: 'wl.bl.test', type: 'allow' },
  { zone: 'zen.bl.test', codes: { '127.0.0.2': 'SBL', '127.0.0.3': 'SBL CSS', '127.0.0.4': 'XBL', '127.0.0.10': 'PBL', '127.0.0.11': 'PBL' } },
  { zone: 'score.bl.test', action: 'score', weight: 3 },
  { zone: 'dbl.bl.test', kind: 'domain', codes: { '127.0.1.2': 'spam domain' } },
];

const body = (subject: string) =>
  `From: bob@good.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@good.test>\r\n\r\nhello\r\n.\r\n`;

let dns: FakeDns;
beforeAll(async () => {
  dns = await startFakeDns(zone());
  dns.servfail(`${rev(5)}.in-addr.arpa`); // 127.0.0.5: PTR lookup fails
  dns.hang(`${rev(6)}.in-addr.arpa`); // 127.0.0.6: PTR lookup times out
  dns.servfail(`${rev(8)}.zen.bl.test`); // 127.0.0.8: the list fails
  dns.hang(`${rev(9)}.zen.bl.test`); // 127.0.0.9: the list times out
  dns.servfail('servfail.good.test');
  dns.servfail('temp.test');
});
afterAll(() => dns.close());

/** One session from a client address: EHLO name, MAIL, RCPTs; returns the RCPT replies. */
async function rcpts(gw: TestGateway, client: number, o: { helo?: string; from?: string; to: string[] }): Promise<{ mail: Reply; rcpt: Reply[] }> {
  const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(client) });
  try {
    const ehlo = await c.hello(o.helo ?? 'mail.good.test');
    expect(ehlo.code).toBe(250);
    const mail = await c.cmd(`MAIL FROM:<${o.from ?? 'bob@good.test'}>`);
    const rcpt: Reply[] = [];
    if (mail.code === 250) for (const r of o.to) rcpt.push(await c.cmd(`RCPT TO:<${r}>`));
    return { mail, rcpt };
  } finally {
    c.close();
  }
}
const one = async (gw: TestGateway, client: number, o: { helo?: string; from?: string; to?: string }) =>
  (await rcpts(gw, client, { ...o, to: [o.to ?? 'alice@example.test'] })).rcpt[0]!;

describe('front line with the providers’ rules (each one config line)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      dns,
      domains: {
        'example.test': {},
        'lenient.test': {
          checks: { rdns: { missingPtr: 'score', notConfirmed: 'score' }, dnsbl: { onError: 'ignore' }, helo: { unresolvable: { action: 'score', score: 1 } } },
        },
        'listed.test': { recipients: { mode: 'list', list: ['alice', 'bob@listed.test'] } },
        'verify.test': { recipients: { mode: 'verify', verify: { timeoutMs: 2_000 } } },
        'strict.test': { checks: { helo: { literalMismatch: 'reject' }, spf: { softfail: 'reject', permerror: 'reject' } } },
      },
      mailboxHooks: {
        refuseRecipient: (a) =>
          a === 'ghost@verify.test'
            ? { code: 550, text: '5.1.1 <ghost@verify.test>: Recipient address rejected: User unknown in local recipient table' }
            : a === 'busy@verify.test'
              ? { code: 450, text: '4.3.0 try later' }
              : undefined,
      },
      overrides: {
        checks: {
          trusted: { networks: [] },
          helo: { unresolvable: 'reject' },
          rdns: { missingPtr: 'reject', notConfirmed: 'reject' },
          dnsbl: { lists: LISTS, onError: 'tempfail' },
        },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('accepts a clean client (PTR confirmed, HELO resolves, SPF pass, not listed) and delivers once', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(1) });
    await c.hello('mail.good.test');
    const replies = await c.transaction('bob@good.test', ['alice@example.test'], body('clean'));
    c.close();
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 250]);
    const id = /queued as (\S+)/.exec(replies[3]!.text)![1]!;
    await waitForStatus(gw, id, ['delivered']);
    const [delivered] = await mailboxMessages(gw, 'alice@example.test');
    const head = delivered!.toString('latin1').split('\r\n\r\n')[0]!;
    // our Received header names the verified PTR; Received-SPF from mailauth is kept for the mailbox
    expect(head).toMatch(/^Received: from mail\.good\.test \(host1\.good\.test \[127\.0\.0\.1\]\)/);
    expect(head).toMatch(/Received-SPF: pass \(mx\.gateway\.test: domain of bob@good\.test designates 127\.0\.0\.1 as permitted sender\)/);
    expect(head.match(/^Received-SPF:/gm)).toHaveLength(1); // written once, by the front line
  });

  describe('HELO', () => {
    it.each([
      ['mail.good.test', 250, /Accepted/],
      ['nx.good.test', 550, /^5\.7\.1 Bad HELO: nx\.good\.test does not exist$/],
      ['server1', 550, /^5\.7\.1 Bad HELO: server1 is not a fully-qualified domain name$/],
      ['localhost', 550, /^5\.7\.1 Bad HELO: localhost is a reserved name, not a public host name$/],
      ['server1.local', 550, /^5\.7\.1 Bad HELO: server1\.local is a reserved name/],
      ['bad_name.good.test', 501, /^5\.5\.2 Bad HELO: bad_name\.good\.test: underscore is not allowed in a host name$/],
      ['127.0.0.1', 501, /^5\.5\.2 Bad HELO: 127\.0\.0\.1: an address must be given as a literal in brackets/],
      ['mx.gateway.test', 550, /^5\.7\.1 Bad HELO: mx\.gateway\.test is our own name or address, not yours$/],
      ['servfail.good.test', 450, /^4\.7\.1 Bad HELO: cannot resolve servfail\.good\.test now \(temporary DNS failure\), please try again later$/],
    ])('EHLO %s → %i', async (helo, code, text) => {
      // from 127.0.0.12: a client on our own listening address (127.0.0.1) may use our name
      const r = await one(gw, 12, { helo });
      expect(r.code).toBe(code);
      expect(r.text).toMatch(text);
    });

    it('an address literal must be the client’s own address (scored by default; refused where a domain says reject)', async () => {
      expect((await one(gw, 12, { helo: '[127.0.0.12]', to: 'alice@strict.test' })).code).toBe(250);
      const { rcpt } = await rcpts(gw, 12, { helo: '[127.0.0.9]', to: ['alice@example.test', 'alice@strict.test'] });
      expect(rcpt[0]!.code).toBe(250); // a score of 1, below the threshold
      expect(rcpt[1]).toMatchObject({ code: 550, text: '5.7.1 Bad HELO: address literal [127.0.0.9] does not match your address 127.0.0.12' });
    });
  });

  describe('reverse DNS', () => {
    it('no PTR → 550 5.7.25', async () => {
      const r = await one(gw, 3, {});
      expect(r.code).toBe(550);
      expect(r.text).toBe('5.7.25 Client host [127.0.0.3] has no reverse DNS (PTR) record');
    });
    it('a PTR that does not resolve back → 550 5.7.25 (FCrDNS)', async () => {
      const r = await one(gw, 4, {});
      expect(r.code).toBe(550);
      expect(r.text).toBe('5.7.25 Client host [127.0.0.4]: reverse DNS name fake.good.test does not resolve back to this address');
    });
    it.each([
      [5, 'SERVFAIL'],
      [6, 'timeout'],
    ])('PTR lookup of 127.0.0.%i fails (%s) → 450 4.7.25, never a reject', async (client) => {
      const started = Date.now();
      const r = await one(gw, client, {});
      expect(r.code).toBe(450);
      expect(r.text).toBe(`4.7.25 Client host [127.0.0.${client}]: cannot verify reverse DNS now (temporary DNS failure), please try again later`);
      expect(Date.now() - started).toBeLessThan(3_000);
    });
    it('per domain: lenient.test only scores a missing PTR, so the same client is accepted there', async () => {
      const { rcpt } = await rcpts(gw, 3, { to: ['alice@example.test', 'alice@lenient.test'] });
      expect(rcpt.map((r) => r.code)).toEqual([550, 250]);
    });
  });

  describe('DNSBL / DNSWL', () => {
    it('a listed client is refused at RCPT with the list’s name, codes and TXT reason', async () => {
      const r = await one(gw, 2, {});
      expect(r.code).toBe(554);
      expect(r.text).toBe('5.7.1 Service unavailable; client [127.0.0.2] blocked using zen.bl.test; Listed in SBL, see https://bl.test/q/127.0.0.2');
    });
    it('postmaster@ stays reachable for a listed client (RFC 5321 §4.5.1)', async () => {
      const { rcpt } = await rcpts(gw, 2, { to: ['postmaster@example.test', 'alice@example.test'] });
      expect(rcpt.map((r) => r.code)).toEqual([250, 554]);
    });
    it('a 127.255.255.x answer means "query refused", never listed', async () => {
      const before = await metricValue('mailmoat_smtp_check_decisions_total', { check: 'dnsbl', action: 'pass' });
      expect((await one(gw, 7, {})).code).toBe(250);
      expect(await metricValue('mailmoat_smtp_check_decisions_total', { check: 'dnsbl', action: 'pass' })).toBeGreaterThan(before);
    });
    it.each([
      [8, 'SERVFAIL'],
      [9, 'timeout'],
    ])('list error for 127.0.0.%i (%s): onError tempfail → 451 4.7.1; a domain with onError ignore accepts', async (client) => {
      const { rcpt } = await rcpts(gw, client, { to: ['alice@example.test', 'alice@lenient.test'] });
      expect(rcpt[0]).toMatchObject({
        code: 451,
        text: `4.7.1 Service temporarily unavailable; client [127.0.0.${client}] could not be checked against zen.bl.test, please try again later`,
      });
      expect(rcpt[1]!.code).toBe(250);
    });
    it('a DNSWL hit skips the block lists', async () => {
      expect((await one(gw, 10, {})).code).toBe(250);
    });
    it('a scoring list adds its weight (3): below the threshold (5) alone', async () => {
      expect((await one(gw, 11, {})).code).toBe(250);
    });
    it('domain lists: a listed sender domain is refused', async () => {
      const r = await one(gw, 1, { from: 'bob@spammy.test' });
      expect(r.code).toBe(554);
      expect(r.text).toBe('5.7.1 Service unavailable; sender domain spammy.test blocked using dbl.bl.test; spam domain, see https://bl.test/d/spammy.test');
    });
  });

  describe('SPF (mailauth on the gateway’s resolver)', () => {
    it('fail → 550 5.7.23 with the domain’s explanation', async () => {
      const r = await one(gw, 1, { from: 'bob@fail.test' });
      expect(r.code).toBe(550);
      expect(r.text).toBe(
        '5.7.23 SPF fail: fail.test does not designate 127.0.0.1 as permitted sender; 127.0.0.1 is not a mail server of fail.test, see https://fail.test/spf',
      );
    });
    it('softfail, neutral and none are accepted (softfail scores 1)', async () => {
      for (const from of ['bob@soft.test', 'bob@nospf.test']) expect((await one(gw, 1, { from })).code).toBe(250);
    });
    it('by domain policy: softfail → 550 5.7.23, permerror → 550 5.7.24', async () => {
      expect(await one(gw, 1, { from: 'bob@soft.test', to: 'alice@strict.test' })).toMatchObject({
        code: 550,
        text: '5.7.23 SPF softfail: soft.test does not designate 127.0.0.1 as permitted sender',
      });
      expect(await one(gw, 1, { from: 'bob@broken.test', to: 'alice@strict.test' })).toMatchObject({
        code: 550,
        text: '5.7.24 SPF record of broken.test is invalid (permerror)',
      });
    });
    it('temperror → 451 4.7.24', async () => {
      const r = await one(gw, 1, { from: 'bob@temp.test' });
      expect(r.code).toBe(451);
      expect(r.text).toBe('4.7.24 SPF check of temp.test could not be completed (temporary DNS error), please try again later');
    });
  });

  describe('address syntax (beyond what smtp-server enforces)', () => {
    it.each([
      ['MAIL FROM: bob@good.test', 501, /Bad sender address syntax|Invalid/i],
      ['MAIL FROM:<bob@localhost>', 553, /^5\.1\.7 <bob@localhost>: Sender address rejected: need fully-qualified address$/],
      ['MAIL FROM:<bob@good.test> FOO=bar', 555, /^5\.5\.4 Unsupported parameter FOO$/],
      [`MAIL FROM:<${'x'.repeat(65)}@good.test>`, 501, /^5\.1\.7 Bad sender address syntax: .*local part longer than 64 octets/],
    ])('%s → %i', async (line, code, text) => {
      const c = await RawSmtp.connect(gw.smtpPort);
      await c.hello();
      const r = await c.cmd(line);
      c.close();
      expect(r.code).toBe(code);
      expect(r.text).toMatch(text);
    });
    it('RCPT TO:<alice@example> → 553 5.1.3', async () => {
      const r = await one(gw, 1, { to: 'alice@example' });
      expect(r).toMatchObject({ code: 553, text: '5.1.3 <alice@example>: Recipient address rejected: need fully-qualified address' });
    });
    it('a domain we do not host is a relay attempt → 554 5.7.1, whatever else is fine', async () => {
      const r = await one(gw, 1, { to: 'someone@elsewhere.test' });
      expect(r).toMatchObject({ code: 554, text: '5.7.1 <someone@elsewhere.test>: Relay access denied: this server does not accept mail for that domain' });
    });
  });

  describe('recipients', () => {
    it('list: unknown user → 550 5.1.1; listed local parts, full addresses and +tags pass', async () => {
      const { rcpt } = await rcpts(gw, 1, { to: ['alice@listed.test', 'alice+news@listed.test', 'bob@listed.test', 'mallory@listed.test'] });
      expect(rcpt.map((r) => r.code)).toEqual([250, 250, 250, 550]);
      expect(rcpt[3]!.text).toBe('5.1.1 <mallory@listed.test>: Recipient address rejected: User unknown');
    });
    it('verify: asks the downstream (RCPT probe); 5xx → 550 5.1.1 with its words, 4xx → 450 4.1.1, then cached', async () => {
      const { rcpt } = await rcpts(gw, 1, { to: ['alice@verify.test', 'ghost@verify.test', 'busy@verify.test'] });
      expect(rcpt[0]!.code).toBe(250);
      expect(rcpt[1]).toMatchObject({
        code: 550,
        text: "5.1.1 <ghost@verify.test>: Recipient address rejected: User unknown (the domain's server said: 550 5.1.1 <ghost@verify.test>: Recipient address rejected: User unknown in local recipient table)",
      });
      expect(rcpt[2]!.code).toBe(450);
      expect(rcpt[2]!.text).toMatch(
        /^4\.1\.1 <busy@verify\.test>: Recipient address rejected: unverified address: .*answered 450 4\.3\.0 try later, please try again later$/,
      );
    });
  });

  it('every refusal is in the message log with its reply', async () => {
    await one(gw, 3, {});
    const rows = await gw.stores.store.refusals({ limit: 200 });
    expect(rows.some((r) => r.clientIp === '127.0.0.3' && r.stage === 'rcpt' && r.reply.startsWith('550 5.7.25 Client host [127.0.0.3]'))).toBe(true);
  });
});

describe('front line with the default policy (safe for a public MX)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      dns,
      domains: { 'example.test': {} },
      overrides: {
        checks: {
          trusted: { networks: [], senders: ['*@partner.test'] },
          dnsbl: { lists: LISTS },
        },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('a missing PTR or an unresolvable HELO alone only scores: accepted', async () => {
    expect((await one(gw, 3, {})).code).toBe(250);
    expect((await one(gw, 1, { helo: 'nx.good.test' })).code).toBe(250);
  });

  it('signals add up: no PTR (2) + unknown HELO (2) + SPF softfail (1) = 5 → 550 5.7.1 naming them', async () => {
    const r = await one(gw, 3, { helo: 'nx.good.test', from: 'bob@soft.test' });
    expect(r.code).toBe(550);
    expect(r.text).toMatch(
      /^5\.7\.1 Too many signs of spam from client \[127\.0\.0\.3\]: HELO nx\.good\.test: NXDOMAIN; no PTR for 127\.0\.0\.3; SPF softfail for soft\.test from 127\.0\.0\.3/,
    );
  });

  it('the score and the checks behind it reach the scanners in X-Mailmoat-Frontline (our own words only)', async () => {
    await gw.stopWorkers();
    try {
      const sent = await sendRaw(gw.smtpPort, { from: 'bob@soft.test', to: ['alice@example.test'] }, body('scored'), {
        localAddress: ip(3),
        name: 'mail.good.test',
      });
      expect(sent.code).toBe(250);
      const spooled = await fs.readFile(gw.stores.spool.messagePath(sent.id!), 'latin1');
      expect(spooled).toMatch(/^Received-SPF: softfail .*\r\nX-Mailmoat-Frontline: score=3; checks=rdns\.missing,spf\.softfail\r\nFrom: bob@good\.test\r\n/s);
    } finally {
      await gw.startWorkers();
    }
  });

  it('a DNSBL error is ignored by default (noted and counted), never read as "listed"', async () => {
    const before = await metricValue('mailmoat_smtp_check_decisions_total', { check: 'dnsbl', action: 'pass' });
    expect((await one(gw, 8, {})).code).toBe(250);
    expect(await metricValue('mailmoat_smtp_check_decisions_total', { check: 'dnsbl', action: 'pass' })).toBe(before + 1);
  });

  it('a trusted sender skips the checks, but only when SPF passes for it', async () => {
    // 127.0.0.2 is listed; partner.test's SPF allows 127.0.0.20 only
    expect((await one(gw, 2, { from: 'bob@partner.test' })).code).toBe(554);
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(20) });
    await c.hello();
    expect((await c.cmd('MAIL FROM:<bob@partner.test>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<alice@example.test>')).code).toBe(250);
    c.close();
  });
});

describe('trusted networks (the default: loopback, like Postfix mynetworks)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ dns, domains: { 'example.test': {} }, overrides: { checks: { dnsbl: { lists: LISTS }, rdns: { missingPtr: 'reject' } } } });
  });
  afterAll(() => gw?.stop());

  it('skip the DNS checks they name — a listed, PTR-less loopback client with a bad HELO is accepted — but never relay', async () => {
    expect((await one(gw, 2, { helo: 'nx.good.test' })).code).toBe(250);
    expect((await one(gw, 3, { helo: 'server1' })).code).toBe(250);
    expect((await one(gw, 3, { to: 'x@elsewhere.test' })).code).toBe(554);
  });
});
