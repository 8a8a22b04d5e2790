import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createResolver } from '../../../gateway/dns/resolver.ts';
import type { DnsResolver } from '../../../core/dns.ts';
import { canonicalIp, ptrName, reversedLabels, sameIp } from '../../../core/ip.ts';
import { startFakeDns, type FakeDns } from '../../support/fake-dns.ts';
import { spf } from 'mailauth/lib/spf/index.js';

let dns: FakeDns;
let clock = 1_000_000;
const now = () => clock;
const fresh = (extra: Partial<Parameters<typeof createResolver>[0]> = {}): DnsResolver =>
  createResolver({ servers: [dns.address], timeoutMs: 150, tries: 1, now, ...extra });
const countQueries = (name: string, type: string) => dns.queries.filter((q) => q.name === name && q.type === type).length;

beforeAll(async () => {
  dns = await startFakeDns({
    'mx1.example.test': { A: ['192.0.2.10', '192.0.2.11'], AAAA: ['2001:db8::10'] },
    'example.test': {
      MX: [{ exchange: 'mx1.example.test', priority: 10 }],
      TXT: [['v=spf1 ip4:192.0.2.0/24 ', '-all'], 'google-site-verification=x'],
    },
    '10.2.0.192.in-addr.arpa': { PTR: ['mx1.example.test'] },
    'alias.example.test': { CNAME: ['mx1.example.test'] },
  });
  dns.set('0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa', 'PTR', ['v6.example.test']);
  dns.servfail('broken.example.test');
  dns.hang('slow.example.test');
});
afterAll(() => dns.close());
beforeEach(() => {
  dns.queries.length = 0;
});

describe('answers', () => {
  it('resolves A, AAAA, MX, TXT (chunks joined) and PTR for IPv4 and IPv6', async () => {
    const r = fresh();
    expect(await r.a('MX1.example.test.')).toEqual({ ok: true, records: ['192.0.2.10', '192.0.2.11'], ttl: 300 });
    expect(await r.aaaa('mx1.example.test')).toEqual({ ok: true, records: ['2001:db8::10'], ttl: 300 });
    expect(await r.mx('example.test')).toEqual({
      ok: true,
      records: [{ exchange: 'mx1.example.test', priority: 10 }],
      ttl: 60,
    });
    const txt = await r.txt('example.test');
    expect(txt.ok && [...txt.records].sort()).toEqual(['google-site-verification=x', 'v=spf1 ip4:192.0.2.0/24 -all']);
    expect(await r.ptr('192.0.2.10')).toMatchObject({ ok: true, records: ['mx1.example.test'] });
    expect(await r.ptr('::ffff:192.0.2.10')).toMatchObject({ ok: true, records: ['mx1.example.test'] });
    expect(await r.ptr('2001:db8::10')).toMatchObject({ ok: true, records: ['v6.example.test'] });
  });

  it.each([
    ['nxdomain for an unknown name', 'nope.example.test', 'nxdomain', 'ENOTFOUND'],
    ['nodata for a known name without that type', 'example.test', 'nodata', 'ENODATA'],
    ['temperror on SERVFAIL', 'broken.example.test', 'temperror', 'ESERVFAIL'],
    ['temperror on timeout (hung server)', 'slow.example.test', 'temperror', 'ETIMEOUT'],
  ])('%s', async (_label, name, kind, code) => {
    expect(await fresh().a(name)).toMatchObject({ ok: false, kind, code });
  });

  it('temperror when no server answers at all (connection refused)', async () => {
    const r = createResolver({ servers: ['127.0.0.1:1'], timeoutMs: 100, tries: 1 });
    expect(await r.a('example.test')).toMatchObject({ ok: false, kind: 'temperror' });
  });

  it('answers a hung lookup as ETIMEOUT within timeoutMs (the deadline covers all tries)', async () => {
    const started = Date.now();
    const result = await fresh({ timeoutMs: 300, tries: 2 }).txt('slow.example.test');
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ ok: false, kind: 'temperror', code: 'ETIMEOUT' });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 + 150);
  });

  it('long TXT strings are split into 255-byte chunks by the fake and joined again', async () => {
    const dkim = `v=DKIM1; k=rsa; p=${'A'.repeat(392)}`;
    dns.set('sel._domainkey.example.test', 'TXT', [dkim]);
    expect(await fresh().txt('sel._domainkey.example.test')).toMatchObject({ ok: true, records: [dkim] });
  });

  it('follows a CNAME to the address; a dangling CNAME is nxdomain', async () => {
    expect(await fresh().a('alias.example.test')).toMatchObject({ ok: true, records: ['192.0.2.10', '192.0.2.11'] });
    dns.set('dangling.example.test', 'CNAME', ['gone.example.test']);
    expect(await fresh().a('dangling.example.test')).toMatchObject({ ok: false, kind: 'nxdomain' });
  });

  it('a PTR lookup of something that is not an address is a temperror, never a silent pass', async () => {
    expect(await fresh().ptr('not-an-ip')).toMatchObject({ ok: false, kind: 'temperror', code: 'EBADIP' });
  });
});

describe('cache', () => {
  it('serves a second lookup within the TTL from the cache, with the remaining TTL', async () => {
    dns.set('cached.example.test', 'A', ['192.0.2.20'], 30);
    const r = fresh();
    await r.a('cached.example.test');
    clock += 10_000;
    expect(await r.a('Cached.Example.Test')).toEqual({ ok: true, records: ['192.0.2.20'], ttl: 20 });
    expect(countQueries('cached.example.test', 'A')).toBe(1);
  });

  it('asks again once the TTL has passed', async () => {
    dns.set('expiring.example.test', 'A', ['192.0.2.21'], 30);
    const r = fresh();
    await r.a('expiring.example.test');
    dns.set('expiring.example.test', 'A', ['192.0.2.22'], 30);
    clock += 30_001;
    expect(await r.a('expiring.example.test')).toMatchObject({ ok: true, records: ['192.0.2.22'] });
    expect(countQueries('expiring.example.test', 'A')).toBe(2);
  });

  it('keeps negative answers only for negativeTtlSec', async () => {
    const r = fresh({ negativeTtlSec: 5 });
    expect(await r.a('later.example.test')).toMatchObject({ kind: 'nxdomain' });
    dns.set('later.example.test', 'A', ['192.0.2.23']);
    clock += 4_000;
    expect(await r.a('later.example.test')).toMatchObject({ kind: 'nxdomain' });
    clock += 1_001;
    expect(await r.a('later.example.test')).toMatchObject({ ok: true, records: ['192.0.2.23'] });
    expect(countQueries('later.example.test', 'A')).toBe(2);
  });

  it('never caches a temperror', async () => {
    const r = fresh();
    dns.servfail('flaky.example.test');
    expect(await r.a('flaky.example.test')).toMatchObject({ kind: 'temperror' });
    dns.remove('flaky.example.test');
    dns.set('flaky.example.test', 'A', ['192.0.2.24']);
    expect(await r.a('flaky.example.test')).toMatchObject({ ok: true, records: ['192.0.2.24'] });
  });

  it('caps TTLs at maxTtlSec and answers TXT/MX with unknownTtlSec', async () => {
    dns.set('long.example.test', 'A', ['192.0.2.25'], 86_400);
    const r = fresh({ maxTtlSec: 600, unknownTtlSec: 45 });
    expect(await r.a('long.example.test')).toMatchObject({ ttl: 600 });
    expect(await r.txt('example.test')).toMatchObject({ ttl: 45 });
  });

  it('shares one query between concurrent identical lookups', async () => {
    dns.set('burst.example.test', 'A', ['192.0.2.26']);
    const r = fresh();
    await Promise.all([r.a('burst.example.test'), r.a('burst.example.test'), r.a('BURST.example.test')]);
    expect(countQueries('burst.example.test', 'A')).toBe(1);
  });

  it('evicts the least recently used entry beyond cacheMaxEntries', async () => {
    for (const n of ['e1', 'e2', 'e3']) dns.set(`${n}.example.test`, 'A', ['192.0.2.30']);
    const r = fresh({ cacheMaxEntries: 2 });
    await r.a('e1.example.test');
    await r.a('e2.example.test');
    await r.a('e1.example.test'); // e1 is now the most recently used
    await r.a('e3.example.test'); // evicts e2
    await r.a('e1.example.test');
    await r.a('e2.example.test');
    expect(countQueries('e1.example.test', 'A')).toBe(1);
    expect(countQueries('e2.example.test', 'A')).toBe(2);
  });
});

describe('forMailauth', () => {
  it('returns node-shaped answers: TXT as chunk arrays, MX objects, PTR by arpa name, CNAME', async () => {
    const resolve = fresh().forMailauth();
    expect(await resolve('example.test', 'TXT')).toContainEqual(['v=spf1 ip4:192.0.2.0/24 -all']);
    expect(await resolve('example.test', 'MX')).toEqual([{ exchange: 'mx1.example.test', priority: 10 }]);
    expect(await resolve('mx1.example.test', 'A')).toEqual(['192.0.2.10', '192.0.2.11']);
    expect(await resolve('10.2.0.192.in-addr.arpa', 'PTR')).toEqual(['mx1.example.test']);
    expect(await resolve('alias.example.test', 'CNAME')).toEqual(['mx1.example.test']);
  });

  it.each([
    ['nope.example.test', 'TXT', 'ENOTFOUND'],
    ['mx1.example.test', 'TXT', 'ENODATA'],
    ['broken.example.test', 'TXT', 'ESERVFAIL'],
    ['slow.example.test', 'A', 'ETIMEOUT'],
    ['example.test', 'SRV', 'ENOTIMP'],
  ])('%s %s rejects with code %s', async (name, type, code) => {
    await expect(fresh().forMailauth()(name, type)).rejects.toMatchObject({ code });
  });
});

describe('mailauth through the adapter', () => {
  // example.test publishes "v=spf1 ip4:192.0.2.0/24 -all" (in two TXT chunks, see beforeAll).
  it.each([
    ['pass', 'user@example.test', '192.0.2.10'],
    ['fail', 'user@example.test', '198.51.100.1'],
    ['none', 'user@nope.example.test', '192.0.2.10'],
    ['temperror', 'user@broken.example.test', '192.0.2.10'],
    ['temperror', 'user@slow.example.test', '192.0.2.10'],
  ])('SPF %s for %s from %s', async (expected, sender, ip) => {
    const result = await spf({ sender, ip, helo: 'mx1.example.test', mta: 'mx.mailmoat.test', resolver: fresh().forMailauth() });
    expect(result.status.result).toBe(expected);
  });
});

describe('ip helpers', () => {
  it.each([
    ['192.0.2.1', '1.2.0.192', '1.2.0.192.in-addr.arpa', '192.0.2.1'],
    ['::ffff:192.0.2.1', '1.2.0.192', '1.2.0.192.in-addr.arpa', '192.0.2.1'],
    [
      '2001:db8::1',
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2',
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
      '2001:db8::1',
    ],
    [
      '2001:DB8:0:0:1:0:0:1',
      '1.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2',
      '1.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
      '2001:db8::1:0:0:1',
    ],
  ])('%s → %s', (ip, labels, ptr, canonical) => {
    expect(reversedLabels(ip)).toBe(labels);
    expect(ptrName(ip)).toBe(ptr);
    expect(canonicalIp(ip)).toBe(canonical);
  });

  it('compares addresses by value', () => {
    expect(sameIp('::ffff:192.0.2.1', '192.0.2.1')).toBe(true);
    expect(sameIp('2001:db8:0::1', '2001:DB8::0:1')).toBe(true);
    expect(sameIp('192.0.2.1', '192.0.2.2')).toBe(false);
    expect(sameIp('x', 'x')).toBe(false);
    expect(canonicalIp('::')).toBe('::');
    expect(canonicalIp('1::')).toBe('1::');
  });
});
