// The transport map: which hosts a recipient domain's mail goes to, in which order, and how.
// Hosted domains go to their configured downstream hops; other domains (bounces to senders) go
// to the configured relay, else to their MX records (RFC 5321 §5.1: no MX → the domain's own
// address). Every DNS lookup goes through the gateway's one resolver.
import type { Config, NextHop, TlsMode } from '../config/schema.ts';
import type { DnsResolver } from '../dns/resolver.ts';

export interface Hop {
  host: string;
  port: number;
  tls: TlsMode;
  maxConnections: number;
  maxPerMinute: number;
  /** Also takes what the hop before refused with a 5xx. */
  backup?: boolean;
}

export type Route = { ok: true; hops: Hop[] } | { ok: false; temporary: boolean; reason: string };

const DEFAULT_HOP = { tls: 'opportunistic' as const, maxConnections: 10, maxPerMinute: 0 };

export async function routeFor(domain: string, config: Config, resolver: DnsResolver): Promise<Route> {
  const hosted = config.domains[domain];
  const configured = hosted ? hosted.downstream : config.delivery.relay;
  if (configured.length > 0) return expandHops(configured, resolver);
  if (hosted) return { ok: false, temporary: true, reason: `no downstream configured for ${domain}` };
  return mxRoute(domain, resolver);
}

/** Configured hops by priority (stable), with `mx` entries replaced by the hosts of those MX records. */
async function expandHops(configured: NextHop[], resolver: DnsResolver): Promise<Route> {
  const ordered = configured.map((h, i) => ({ h, i })).sort((a, b) => a.h.priority - b.h.priority || a.i - b.i);
  const hops: Hop[] = [];
  const problems: string[] = [];
  for (const { h } of ordered) {
    const settings = { tls: h.tls, maxConnections: h.maxConnections, maxPerMinute: h.maxPerMinute, ...(h.backup ? { backup: true } : {}) };
    if (h.host) {
      hops.push({ host: h.host, port: h.port, ...settings });
      continue;
    }
    const mx = await mxHosts(h.mx!, resolver);
    if (mx.ok) hops.push(...mx.hosts.map((host) => ({ host, port: h.port, ...settings })));
    else problems.push(mx.reason);
  }
  if (hops.length > 0) return { ok: true, hops };
  return { ok: false, temporary: true, reason: problems.join('; ') || 'no next hop' };
}

async function mxRoute(domain: string, resolver: DnsResolver): Promise<Route> {
  const mx = await mxHosts(domain, resolver);
  if (mx.ok) return { ok: true, hops: mx.hosts.map((host) => ({ host, port: 25, ...DEFAULT_HOP })) };
  return { ok: false, temporary: mx.temporary, reason: mx.reason };
}

type MxHosts = { ok: true; hosts: string[] } | { ok: false; temporary: boolean; reason: string };

async function mxHosts(name: string, resolver: DnsResolver): Promise<MxHosts> {
  const mx = await resolver.mx(name);
  if (mx.ok) {
    const hosts = [...mx.records].sort((a, b) => a.priority - b.priority).map((r) => r.exchange);
    // A "null MX" (RFC 7505: one record, exchange ".") means the domain takes no mail.
    if (hosts.length === 1 && (hosts[0] === '' || hosts[0] === '.')) {
      return { ok: false, temporary: false, reason: `5.1.10 ${name} does not accept mail (null MX)` };
    }
    return { ok: true, hosts };
  }
  if (mx.kind === 'temperror') return { ok: false, temporary: true, reason: `4.4.3 MX lookup for ${name} failed: ${mx.error}` };
  if (mx.kind === 'nodata') {
    const a = await resolver.a(name);
    if (a.ok) return { ok: true, hosts: [name] };
    if (a.kind === 'temperror') return { ok: false, temporary: true, reason: `4.4.3 address lookup for ${name} failed: ${a.error}` };
  }
  return { ok: false, temporary: false, reason: `5.1.2 ${name}: no such domain or no mail server` };
}

/**
 * Per-host connection and rate limits for this process. `acquire` waits for a free connection
 * slot and for the per-minute budget, up to `maxWaitMs`; it returns a release function, or
 * undefined when the wait timed out (the caller defers those recipients).
 */
export class HostLimiter {
  private readonly active = new Map<string, number>();
  private readonly sent = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async acquire(hop: Hop, maxWaitMs: number): Promise<(() => void) | undefined> {
    const key = `${hop.host}:${hop.port}`;
    const deadline = this.now() + maxWaitMs;
    for (;;) {
      const recent = (this.sent.get(key) ?? []).filter((t) => t > this.now() - 60_000);
      this.sent.set(key, recent);
      const connections = this.active.get(key) ?? 0;
      const rateOk = hop.maxPerMinute === 0 || recent.length < hop.maxPerMinute;
      if (connections < hop.maxConnections && rateOk) {
        this.active.set(key, connections + 1);
        recent.push(this.now());
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.active.set(key, (this.active.get(key) ?? 1) - 1);
        };
      }
      if (this.now() >= deadline) return undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
