import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../gateway/config/schema.ts';
import { createResolver } from '../../../gateway/dns/resolver.ts';
import { routeFor } from '../../../gateway/delivery/transport.ts';
import { DeliverySlots } from '../../../gateway/delivery/slots.ts';
import { startFakeDns, type FakeDns } from '../../support/fake-dns.ts';

describe('transport map', () => {
  let dns: FakeDns;
  beforeAll(async () => {
    dns = await startFakeDns();
    dns.set('customer.test', 'MX', [
      { exchange: 'mx2.customer.test', priority: 20 },
      { exchange: 'mx1.customer.test', priority: 10 },
    ]);
    dns.set('sender.test', 'MX', [{ exchange: 'in.sender.test', priority: 5 }]);
    dns.set('nomx.test', 'A', ['192.0.2.7']);
    dns.set('nullmx.test', 'MX', [{ exchange: '', priority: 0 }]);
    dns.servfail('broken.test');
    for (const name of ['a.internal', 'b.internal', 'mx1.customer.test', 'mx2.customer.test', 'smarthost.internal']) dns.set(name, 'A', ['10.1.0.1']);
    dns.set('in.sender.test', 'A', ['192.0.2.25']);
    dns.set('in.sender.test', 'AAAA', ['2001:db8::25']);
    dns.set('loopy.test', 'MX', [{ exchange: 'mx.loopy.test', priority: 10 }]);
    dns.set('mx.loopy.test', 'A', ['127.0.0.1']);
    dns.set('inside.test', 'MX', [{ exchange: 'mx.inside.test', priority: 10 }]);
    dns.set('mx.inside.test', 'A', ['192.168.1.10']);
    dns.set('self.test', 'MX', [{ exchange: 'mx.gateway.test', priority: 10 }]);
    dns.set('mx.gateway.test', 'A', ['192.0.2.99']);
    dns.set('deadmx.test', 'MX', [{ exchange: 'mx.nowhere.test', priority: 10 }]);
    dns.set('slowmx.test', 'MX', [{ exchange: 'mx.slow.test', priority: 10 }]);
    dns.hang('mx.slow.test');
  });
  afterAll(() => dns.close());

  const config = (extra: Record<string, unknown> = {}) =>
    configSchema.parse({
      hostname: 'mx.gateway.test',
      dataDir: '/tmp/x',
      domains: {
        'example.test': {
          downstream: [
            { host: 'b.internal', priority: 20 },
            { host: 'a.internal', port: 2525, priority: 10, tls: 'verified' },
          ],
        },
        'customer.test': { downstream: [{ mx: 'customer.test' }] },
      },
      ...extra,
    });
  const resolver = () => createResolver({ servers: [dns.address], timeoutMs: 300, tries: 1 });
  const self = { hostnames: ['mx.gateway.test'], localAddresses: ['127.0.0.1', '192.0.2.1'], listeners: [{ host: '0.0.0.0', port: 25 }] };
  const route = (domain: string, c = config()) => routeFor(domain, c, resolver(), self);

  it('orders configured hops by priority, keeps their settings, and resolves their names through our resolver', async () => {
    expect(await route('example.test')).toEqual({
      ok: true,
      targets: [
        { host: 'a.internal', address: '10.1.0.1', port: 2525, tls: 'verified', maxConnections: 5, maxPerMinute: 0, configured: true, lane: 'hosted' },
        { host: 'b.internal', address: '10.1.0.1', port: 25, tls: 'opportunistic', maxConnections: 5, maxPerMinute: 0, configured: true, lane: 'hosted' },
      ],
    });
    expect(dns.queries).toContainEqual({ name: 'a.internal', type: 'A' });
  });
  it('expands an mx next hop into its MX hosts by preference', async () => {
    const r = await route('customer.test');
    expect(r.ok && r.targets.map((h) => h.host)).toEqual(['mx1.customer.test', 'mx2.customer.test']);
  });
  it('sends other domains to the relay when one is configured, else to their MX hosts, IPv4 first', async () => {
    const relayed = await route('sender.test', config({ delivery: { relay: [{ host: 'smarthost.internal', port: 587 }] } }));
    expect(relayed.ok && relayed.targets.map((h) => `${h.host}:${h.port}:${h.lane}`)).toEqual(['smarthost.internal:587:external']);
    const direct = await route('sender.test');
    expect(direct.ok && direct.targets.map((h) => `${h.address}:${h.port}`)).toEqual(['192.0.2.25:25', '2001:db8::25:25']);
  });
  it('falls back to the address record without MX, and refuses null MX and unknown domains permanently', async () => {
    dns.set('nomx.test', 'A', ['192.0.2.7']);
    const noMx = await route('nomx.test');
    expect(noMx.ok && noMx.targets[0].address).toBe('192.0.2.7');
    expect(await route('nullmx.test')).toMatchObject({ ok: false, temporary: false, reason: expect.stringMatching(/^5\.1\.10 .*null MX/) });
    expect(await route('nosuch.test')).toMatchObject({ ok: false, temporary: false, reason: expect.stringMatching(/^5\.1\.2/) });
  });
  it('defers on DNS trouble instead of bouncing', async () => {
    expect(await route('broken.test')).toMatchObject({ ok: false, temporary: true, reason: expect.stringMatching(/^4\.4\.3/) });
    expect(await route('slowmx.test')).toMatchObject({ ok: false, temporary: true, reason: expect.stringMatching(/^4\.4\.4 .*mx\.slow\.test: lookup failed/) });
  });
  it('fails an MX host that does not exist (5.4.4), but defers a configured downstream name that does not', async () => {
    expect(await route('deadmx.test')).toMatchObject({
      ok: false,
      temporary: false,
      reason: expect.stringMatching(/^5\.4\.4 .*mx\.nowhere\.test: host not found/),
    });
    const c = config({ domains: { 'example.test': { downstream: [{ host: 'typo.internal' }] } } });
    expect(await route('example.test', c)).toMatchObject({
      ok: false,
      temporary: true,
      reason: expect.stringMatching(/^4\.4\.4 .*typo\.internal: host not found/),
    });
  });
  it('refuses MX hosts on loopback, private addresses, or ourselves as a mail loop (5.4.6)', async () => {
    expect(await route('loopy.test')).toMatchObject({
      ok: false,
      temporary: false,
      reason: expect.stringMatching(/^5\.4\.6 .*127\.0\.0\.1.*our own SMTP listener/),
    });
    expect(await route('inside.test')).toMatchObject({ ok: false, temporary: false, reason: expect.stringMatching(/^5\.4\.6 .*private address/) });
    expect(await route('self.test')).toMatchObject({ ok: false, temporary: false, reason: expect.stringMatching(/^5\.4\.6 .*our own name/) });
  });
});

describe('DeliverySlots', () => {
  const hop = { host: 'h', port: 25, lane: 'hosted' as const, maxConnections: 2, maxPerMinute: 3 };
  it('holds connections to the per-host limit and gives a slot back on release', () => {
    const slots = new DeliverySlots({ externalConcurrency: 5 });
    const a = slots.tryAcquire(hop);
    const b = slots.tryAcquire(hop);
    expect(a.ok && b.ok).toBe(true);
    expect(slots.tryAcquire(hop)).toMatchObject({ ok: false, reason: expect.stringContaining('h:25 has 2 connections') });
    if (a.ok) {
      a.release();
      a.release(); // releasing twice must not free two slots
    }
    expect(slots.tryAcquire(hop).ok).toBe(true);
    expect(slots.tryAcquire(hop).ok).toBe(false);
  });
  it('keeps to the per-minute budget and says when it frees', () => {
    let now = 0;
    const slots = new DeliverySlots({ externalConcurrency: 5 }, () => now);
    const wide = { ...hop, maxConnections: 10 };
    for (let i = 0; i < 3; i++) {
      const s = slots.tryAcquire(wide);
      if (s.ok) s.release();
    }
    expect(slots.tryAcquire(wide)).toMatchObject({ ok: false, retryInMs: 60_050 });
    now = 60_001;
    expect(slots.tryAcquire(wide).ok).toBe(true);
  });
  it('caps outside destinations as a whole, never the hosted lane', () => {
    const slots = new DeliverySlots({ externalConcurrency: 2 });
    const outside = (host: string) => ({ ...hop, host, lane: 'external' as const });
    expect(slots.tryAcquire(outside('a')).ok).toBe(true);
    expect(slots.tryAcquire(outside('b')).ok).toBe(true);
    expect(slots.tryAcquire(outside('c'))).toMatchObject({ ok: false, reason: expect.stringContaining('outside destinations') });
    expect(slots.tryAcquire({ ...hop, host: 'mailbox.customer' }).ok).toBe(true);
  });
});

describe('DeliverySlots backoff', () => {
  it('spreads the retries of many waiters for one host over more time, up to 31 s', () => {
    const slots = new DeliverySlots({ externalConcurrency: 5 });
    const hop = { host: 'slow', port: 25, lane: 'hosted' as const, maxConnections: 1, maxPerMinute: 0 };
    expect(slots.tryAcquire(hop).ok).toBe(true);
    const delays = Array.from({ length: 200 }, () => {
      const r = slots.tryAcquire(hop);
      return r.ok ? -1 : r.retryInMs;
    });
    expect(Math.max(...delays.slice(0, 1))).toBeLessThan(2_000);
    expect(Math.max(...delays.slice(100))).toBeGreaterThan(2_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(31_000);
  });
});
