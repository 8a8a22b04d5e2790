import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../gateway/config/schema.ts';
import { createResolver } from '../../../gateway/dns/resolver.ts';
import { HostLimiter, routeFor } from '../../../gateway/delivery/transport.ts';
import { startFakeDns, type FakeDns } from '../../support/fake-dns.ts';

describe('transport map', () => {
  let dns: FakeDns;
  beforeAll(async () => {
    dns = await startFakeDns();
    dns.set('customer.test', 'MX', [{ exchange: 'mx2.customer.test', priority: 20 }, { exchange: 'mx1.customer.test', priority: 10 }]);
    dns.set('sender.test', 'MX', [{ exchange: 'in.sender.test', priority: 5 }]);
    dns.set('nomx.test', 'A', ['192.0.2.7']);
    dns.set('nullmx.test', 'MX', [{ exchange: '', priority: 0 }]);
    dns.servfail('broken.test');
  });
  afterAll(() => dns.close());

  const config = (extra: Record<string, unknown> = {}) =>
    configSchema.parse({
      hostname: 'mx.gateway.test',
      dataDir: '/tmp/x',
      domains: {
        'example.test': { downstream: [{ host: 'b.internal', priority: 20 }, { host: 'a.internal', port: 2525, priority: 10, tls: 'verified' }] },
        'customer.test': { downstream: [{ mx: 'customer.test' }] },
      },
      ...extra,
    });
  const resolver = () => createResolver({ servers: [dns.address], timeoutMs: 500, tries: 1 });

  it('orders configured hops by priority and keeps their settings', async () => {
    const route = await routeFor('example.test', config(), resolver());
    expect(route).toEqual({
      ok: true,
      hops: [
        { host: 'a.internal', port: 2525, tls: 'verified', maxConnections: 10, maxPerMinute: 0 },
        { host: 'b.internal', port: 25, tls: 'opportunistic', maxConnections: 10, maxPerMinute: 0 },
      ],
    });
  });
  it('expands an mx next hop into its MX hosts by preference', async () => {
    const route = await routeFor('customer.test', config(), resolver());
    expect(route.ok && route.hops.map((h) => h.host)).toEqual(['mx1.customer.test', 'mx2.customer.test']);
  });
  it('sends other domains to the relay when one is configured, else to their MX', async () => {
    const relayed = await routeFor('sender.test', config({ delivery: { relay: [{ host: 'smarthost.internal', port: 587 }] } }), resolver());
    expect(relayed.ok && relayed.hops.map((h) => `${h.host}:${h.port}`)).toEqual(['smarthost.internal:587']);
    const direct = await routeFor('sender.test', config(), resolver());
    expect(direct.ok && direct.hops.map((h) => `${h.host}:${h.port}`)).toEqual(['in.sender.test:25']);
  });
  it('falls back to the address record without MX, and refuses null MX and unknown domains permanently', async () => {
    const noMx = await routeFor('nomx.test', config(), resolver());
    expect(noMx.ok && noMx.hops[0].host).toBe('nomx.test');
    expect(await routeFor('nullmx.test', config(), resolver())).toMatchObject({ ok: false, temporary: false, reason: expect.stringContaining('null MX') });
    expect(await routeFor('nosuch.test', config(), resolver())).toMatchObject({ ok: false, temporary: false, reason: expect.stringMatching(/^5\.1\.2/) });
  });
  it('defers on DNS trouble instead of bouncing', async () => {
    expect(await routeFor('broken.test', config(), resolver())).toMatchObject({ ok: false, temporary: true, reason: expect.stringMatching(/^4\.4\.3/) });
  });
});

describe('HostLimiter', () => {
  const hop = { host: 'h', port: 25, tls: 'none' as const, maxConnections: 2, maxPerMinute: 3 };
  it('holds connections to the limit and gives a slot back on release', async () => {
    const limiter = new HostLimiter();
    const a = await limiter.acquire(hop, 0);
    const b = await limiter.acquire(hop, 0);
    expect(a && b).toBeTruthy();
    expect(await limiter.acquire(hop, 100)).toBeUndefined();
    a!();
    a!(); // releasing twice must not free two slots
    const c = await limiter.acquire(hop, 0);
    expect(c).toBeTruthy();
    expect(await limiter.acquire(hop, 0)).toBeUndefined();
  });
  it('keeps to the per-minute budget', async () => {
    let now = 0;
    const limiter = new HostLimiter(() => now);
    const wide = { ...hop, maxConnections: 10 };
    for (let i = 0; i < 3; i++) (await limiter.acquire(wide, 0))!();
    expect(await limiter.acquire(wide, 0)).toBeUndefined();
    now = 60_001;
    expect(await limiter.acquire(wide, 0)).toBeTruthy();
  });
});
