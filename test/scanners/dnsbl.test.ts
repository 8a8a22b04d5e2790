import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../gateway/dns/resolver.ts';
import { classifyAnswers, createDnsblChecker, dnsblQueryName, type DnsblList, type DnsblResult } from '../../scanners/dnsbl.ts';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';

const ZEN: DnsblList = {
  zone: 'zen.bl.test',
  kind: 'ip',
  type: 'block',
  codes: { '127.0.0.2': 'SBL', '127.0.0.3': 'SBL CSS', '127.0.0.4': 'XBL', '127.0.0.10': 'PBL ISP', '127.0.0.11': 'PBL' },
};
const SLOW: DnsblList = { zone: 'slow.bl.test', kind: 'ip', type: 'block' };
const WILD: DnsblList = { zone: 'wild.bl.test', kind: 'ip', type: 'block' };
const WL: DnsblList = { zone: 'wl.bl.test', kind: 'ip', type: 'allow' };
const DBL: DnsblList = { zone: 'dbl.bl.test', kind: 'domain', type: 'block', codes: { '127.0.1.2': 'spam domain' } };

let dns: FakeDns;
beforeAll(async () => {
  dns = await startFakeDns({
    // 192.0.2.2: listed in SBL and XBL, with a TXT reason
    '2.2.0.192.zen.bl.test': {
      A: ['127.0.0.2', '127.0.0.4'],
      TXT: ['https://check.bl.test/query/ip/192.0.2.2'],
    },
    // 192.0.2.3: listed without TXT
    '3.2.0.192.zen.bl.test': { A: ['127.0.0.11'] },
    // 192.0.2.4: the list refuses us (public resolver)
    '4.2.0.192.zen.bl.test': { A: ['127.255.255.254'] },
    // 192.0.2.6: an answer the codes map does not name
    '6.2.0.192.zen.bl.test': { A: ['127.0.0.99'] },
    // 192.0.2.7: an answer outside 127/8 — hijacked or broken
    '7.2.0.192.zen.bl.test': { A: ['198.51.100.1'] },
    // 2001:db8::2 listed via IPv6 nibbles
    '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.bl.test': { A: ['127.0.0.3'] },
    '2.2.0.192.wl.bl.test': { A: ['127.0.15.2'] },
    'spammy.test.dbl.bl.test': { A: ['127.0.1.2'], TXT: [['Domain listed, ', 'see https://check.bl.test/d/spammy.test']] },
  });
  dns.servfail('5.2.0.192.zen.bl.test');
  dns.hang('2.2.0.192.slow.bl.test');
  dns.set('2.2.0.192.wild.bl.test', 'A', ['127.0.0.2']);
});
afterAll(() => dns.close());

const checker = (lists: DnsblList[], timeoutMs = 300) =>
  createDnsblChecker({ resolver: createResolver({ servers: [dns.address], timeoutMs, tries: 1 }), lists });
const strip = (r: DnsblResult) => {
  const { list, ...rest } = r;
  return { zone: list.zone, ...rest };
};

describe('IP lists', () => {
  it.each([
    [
      'listed with codes, meanings and TXT reason',
      '192.0.2.2',
      {
        status: 'listed',
        codes: ['127.0.0.2', '127.0.0.4'],
        meanings: ['SBL', 'XBL'],
        reason: 'https://check.bl.test/query/ip/192.0.2.2',
        query: '2.2.0.192.zen.bl.test',
      },
    ],
    ['listed without TXT', '192.0.2.3', { status: 'listed', codes: ['127.0.0.11'], meanings: ['PBL'] }],
    ['not listed (NXDOMAIN)', '192.0.2.1', { status: 'not-listed' }],
    ['127.255.255.254 is a refused query, not a listing', '192.0.2.4', { status: 'refused', codes: ['127.255.255.254'] }],
    ['SERVFAIL is an error, not "not listed"', '192.0.2.5', { status: 'error' }],
    ['an unknown code is not a listing but is reported', '192.0.2.6', { status: 'not-listed', ignoredCodes: ['127.0.0.99'] }],
    ['an answer outside 127/8 is an error', '192.0.2.7', { status: 'error' }],
    ['IPv4-mapped IPv6 is checked as IPv4', '::ffff:192.0.2.3', { status: 'listed', query: '3.2.0.192.zen.bl.test' }],
    [
      'IPv6 by nibbles',
      '2001:db8::2',
      { status: 'listed', codes: ['127.0.0.3'], query: '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.bl.test' },
    ],
  ])('%s', async (_label, ip, expected) => {
    const [result] = await checker([ZEN]).checkIp(ip);
    expect(result).toMatchObject(expected);
    if (expected.status !== 'listed' || !('reason' in expected)) expect(result).not.toHaveProperty('reason');
  });

  it('a timeout is an error', async () => {
    const [result] = await checker([SLOW], 200).checkIp('192.0.2.2');
    expect(result).toMatchObject({ status: 'error' });
    expect(result?.status === 'error' && result.error).toMatch(/ETIMEOUT/);
  });

  it('fetches TXT only when listed', async () => {
    dns.queries.length = 0;
    await checker([ZEN]).checkIp('192.0.2.1');
    await checker([ZEN, { ...WILD, txt: false }]).checkIp('192.0.2.2');
    expect(dns.queries.filter((q) => q.type === 'TXT').map((q) => q.name)).toEqual(['2.2.0.192.zen.bl.test']);
  });

  it('queries lists in parallel; one slow list spoils only its own result', async () => {
    const started = Date.now();
    const results = await checker([SLOW, ZEN, WL, DBL], 400).checkIp('192.0.2.2');
    expect(Date.now() - started).toBeLessThan(700);
    expect(results.map(strip)).toMatchObject([
      { zone: 'slow.bl.test', status: 'error' },
      { zone: 'zen.bl.test', status: 'listed', meanings: ['SBL', 'XBL'] },
      { zone: 'wl.bl.test', status: 'listed', codes: ['127.0.15.2'] },
    ]);
  });

  it('a list without codes counts any 127/8 answer except the refused range', async () => {
    const [result] = await checker([WILD]).checkIp('192.0.2.2');
    expect(result).toMatchObject({ status: 'listed', codes: ['127.0.0.2'], meanings: ['listed'] });
  });
});

describe('domain lists', () => {
  it('listed domain with codes and TXT chunks joined', async () => {
    expect((await checker([ZEN, DBL]).checkDomain('Spammy.TEST.')).map(strip)).toEqual([
      {
        zone: 'dbl.bl.test',
        status: 'listed',
        codes: ['127.0.1.2'],
        meanings: ['spam domain'],
        reason: 'Domain listed, see https://check.bl.test/d/spammy.test',
        query: 'spammy.test.dbl.bl.test',
      },
    ]);
  });

  it('unlisted domain', async () => {
    expect(await checker([DBL]).checkDomain('clean.test')).toMatchObject([{ status: 'not-listed' }]);
  });

  it.each(['192.0.2.1', '[192.0.2.1]', 'bad..name', ''])('"%s" is not a domain: error, not a lookup', async (subject) => {
    expect(await checker([DBL]).checkDomain(subject)).toMatchObject([{ status: 'error', query: '' }]);
  });
});

describe('pure helpers', () => {
  it('builds query names', () => {
    expect(dnsblQueryName('192.0.2.9', ZEN)).toBe('9.2.0.192.zen.bl.test');
    expect(dnsblQueryName('bücher.test', DBL)).toBe('xn--bcher-kva.test.dbl.bl.test');
    expect(dnsblQueryName('not-an-ip', ZEN)).toBeUndefined();
  });

  it.each<[string[], DnsblList, string]>([
    [['127.255.255.252'], ZEN, 'refused'],
    [['127.0.0.1'], { ...WILD, refusedCodes: ['127.0.0.1'] }, 'refused'],
    [['127.0.0.2', '10.0.0.1'], ZEN, 'error'],
    [['127.0.0.10'], ZEN, 'listed'],
  ])('%j → %s', (answers, list, status) => {
    expect(classifyAnswers(answers, list).status).toBe(status);
  });

  it('refuses a bad list config at start', () => {
    expect(() => checker([{ ...ZEN, zone: 'nodot' }])).toThrow(/zone/);
    expect(() => checker([{ ...ZEN, codes: { '10.0.0.2': 'x' } }])).toThrow(/127/);
  });
});
