import { describe, expect, it } from 'vitest';
import { classifyAddress, countReceived, decideMx, decideTargets, hopCountFailure, loopReason, type Candidate } from '../../rules/delivery-route.ts';

const self = {
  hostnames: ['mx.gateway.test'],
  localAddresses: ['127.0.0.1', '::1', '198.51.100.7'],
  listeners: [
    { host: '0.0.0.0', port: 25 },
    { host: '127.0.0.1', port: 2500 },
  ],
};
const found = (host: string, ...records: string[]): Candidate => ({ host, port: 25, configured: false, addresses: { ok: true, records } });
const named = (host: string, port: number, ...records: string[]): Candidate => ({ host, port, configured: true, addresses: { ok: true, records } });

describe('decideMx', () => {
  it.each([
    [
      'MX hosts, best first',
      {
        ok: true as const,
        records: [
          { exchange: 'b.test', priority: 20 },
          { exchange: 'a.test.', priority: 10 },
        ],
      },
      { ok: true, hosts: ['a.test', 'b.test'] },
    ],
    [
      'null MX (RFC 7505)',
      { ok: true as const, records: [{ exchange: '', priority: 0 }] },
      { ok: false, temporary: false, reason: '5.1.10 d.test does not accept mail (null MX)' },
    ],
    ['no MX: the domain itself', { ok: false as const, kind: 'nodata' as const, error: 'ENODATA' }, { ok: true, hosts: ['d.test'] }],
    [
      'NXDOMAIN: 5.1.2 at once',
      { ok: false as const, kind: 'nxdomain' as const, error: 'ENOTFOUND' },
      { ok: false, temporary: false, reason: '5.1.2 d.test: no such domain' },
    ],
    [
      'SERVFAIL or timeout: deferred',
      { ok: false as const, kind: 'temperror' as const, error: 'ETIMEOUT' },
      { ok: false, temporary: true, reason: '4.4.3 MX lookup for d.test failed: ETIMEOUT' },
    ],
  ])('%s', (_name, answer, expected) => {
    expect(decideMx('d.test', answer)).toEqual(expected);
  });
});

describe('addresses and loops', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['127.0.0.5', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['10.2.3.4', 'private'],
    ['172.20.0.1', 'private'],
    ['192.168.0.1', 'private'],
    ['fd00::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['0.0.0.0', 'reserved'],
    ['2001:db8::1', 'public'],
  ])('%s is %s', (ip, cls) => expect(classifyAddress(ip)).toBe(cls));

  it.each([
    ['an MX on loopback (ours, as we listen on every address)', found('mx.x.test', '127.0.0.1'), '127.0.0.1', /our own SMTP listener/],
    ['an MX on loopback, port not ours', { ...found('mx.x.test', '127.0.0.9'), port: 26 }, '127.0.0.9', /loopback address/],
    ['an MX on a private address', found('mx.x.test', '10.0.0.8'), '10.0.0.8', /private address, not in the transport map/],
    ['an MX on a cloud metadata address', found('mx.x.test', '169.254.169.254'), '169.254.169.254', /link-local/],
    ['an MX named like us', found('MX.gateway.test', '203.0.113.9'), '203.0.113.9', /our own name/],
    ['an MX on one of our addresses', found('mx.x.test', '198.51.100.7'), '198.51.100.7', /our own SMTP listener/],
    ['a configured host that is our own listener', named('self.internal', 2500, '127.0.0.1'), '127.0.0.1', /our own SMTP listener/],
  ])('%s is a loop', (_name, c, address, reason) => {
    expect(loopReason(c, address, self)).toMatch(reason);
  });

  it.each([
    ['a public MX', found('mx.x.test', '203.0.113.9'), '203.0.113.9'],
    ['a configured downstream on loopback (tests, demo)', named('127.0.0.1', 2525, '127.0.0.1'), '127.0.0.1'],
    ['a configured downstream on a private address', named('mailbox.internal', 25, '10.0.0.8'), '10.0.0.8'],
  ])('%s is fine', (_name, c, address) => {
    expect(loopReason(c, address, self)).toBeUndefined();
  });

  it('keeps the usable addresses and fails with 5.4.6 only when nothing but loops is left', () => {
    expect(decideTargets('x.test', [found('mx1.x.test', '127.0.0.1'), found('mx2.x.test', '203.0.113.9')], self)).toMatchObject({
      ok: true,
      targets: [{ host: 'mx2.x.test', address: '203.0.113.9' }],
    });
    expect(decideTargets('x.test', [found('mx1.x.test', '127.0.0.1')], self)).toMatchObject({
      ok: false,
      temporary: false,
      reason: expect.stringMatching(/^5\.4\.6 mail for x\.test loops back to myself/),
    });
  });
  it('defers when a lookup failed or a configured host is missing; fails when DNS names do not exist', () => {
    const temp: Candidate = { host: 'mx.x.test', port: 25, configured: false, addresses: { ok: false, kind: 'temperror', error: 'ETIMEOUT' } };
    const gone: Candidate = { host: 'mx.x.test', port: 25, configured: false, addresses: { ok: false, kind: 'nxdomain', error: 'ENOTFOUND' } };
    expect(decideTargets('x.test', [temp], self)).toMatchObject({ ok: false, temporary: true, reason: expect.stringMatching(/^4\.4\.4/) });
    expect(decideTargets('x.test', [gone], self)).toMatchObject({ ok: false, temporary: false, reason: expect.stringMatching(/^5\.4\.4/) });
    expect(decideTargets('x.test', [{ ...gone, configured: true }], self)).toMatchObject({ ok: false, temporary: true });
  });
});

describe('hop count', () => {
  it('counts Received fields in any case, folded or not', () => {
    expect(countReceived('Received: from a\r\n by b\r\nreceived:from c\r\nX-Received: no\r\nSubject: Received: no\r\n')).toBe(2);
  });
  it.each([
    [50, 50, undefined],
    [51, 50, '5.4.6 too many hops: 51 Received headers (limit 50), mail loop'],
  ])('%i Received headers with a limit of %i', (n, limit, expected) => {
    expect(hopCountFailure(n, limit)).toBe(expected);
  });
});
