// The transport map: which hosts a recipient domain's mail goes to, in which order, and how.
// Hosted domains go to their configured downstream hops; other domains (bounces to senders) go
// to the configured relay, else to their MX records (RFC 5321 §5.1: no MX → the domain's own
// address). Every name — MX, the MX hosts, named downstream and relay hosts — is looked up through
// the gateway's one resolver with its deadline, and nodemailer is handed addresses only: its own
// lookups use the system resolver without our timeouts. The decisions (null MX, loops, which
// failure bounces) are rules/delivery-route.ts.
import os from 'node:os';
import { isIP } from 'node:net';
import type { Config, NextHop, TlsMode } from '../config/schema.ts';
import type { DnsResolver } from '../../core/dns.ts';
import { decideMx, decideTargets, type Candidate, type Lookup, type RouteFailure, type SelfFacts } from '../../rules/delivery-route.ts';
import { applyStsPolicy } from '../../rules/mta-sts.ts';
import { stsPolicyFor } from './mta-sts.ts';

export interface Hop {
  /** The host name (for TLS SNI and certificate checks, and in replies), or an IP literal. */
  host: string;
  port: number;
  tls: TlsMode;
  maxConnections: number;
  maxPerMinute: number;
  /** Named in the transport map (downstream or relay) rather than found in DNS. */
  configured: boolean;
  /** The lane whose slots it uses: the hosted domains' downstreams, or everything else. */
  lane: Lane;
  /** Also takes what the hop before refused with a 5xx. */
  backup?: boolean;
}

export type Lane = 'hosted' | 'external';

/** One address of a hop: what a connection is made to. */
export type Target = Hop & { address: string };

/** `notes`: what the log should say about the route (an MTA-STS policy in testing mode that would refuse a host, a fetch that failed). */
export type Route = { ok: true; targets: Target[]; notes?: string[] } | RouteFailure;

/** Connections tried per domain at most (Postfix smtp_mx_address_limit), so a long MX list cannot hold a slot for long. */
const MAX_TARGETS = 5;
/** Per-destination limits for domains reached by MX (Postfix: default_destination_concurrency_limit). */
const MX_HOP = { tls: 'opportunistic' as const, maxPerMinute: 0 };

export async function routeFor(domain: string, config: Config, resolver: DnsResolver, self: SelfFacts = selfFacts(config)): Promise<Route> {
  const hosted = config.domains[domain];
  const lane: Lane = hosted ? 'hosted' : 'external';
  const configured = hosted ? hosted.downstream : config.delivery.relay;
  let hops: Hop[];
  const notes: string[] = [];
  if (configured.length > 0) {
    const expanded = await expandHops(configured, resolver, lane);
    if (!expanded.ok) return expanded;
    hops = expanded.hops;
  } else if (hosted) {
    return { ok: false, temporary: true, reason: `4.4.4 no downstream configured for ${domain}` };
  } else {
    const mx = decideMx(domain, await resolver.mx(domain));
    if (!mx.ok) return mx;
    hops = mx.hosts.map((host) => ({ host, port: 25, ...MX_HOP, maxConnections: config.delivery.maxConnectionsPerDestination, configured: false, lane }));
    const sts = await stsPolicyFor(domain, resolver, config.delivery.mtaSts);
    const stsDecision = applyStsPolicy(domain, sts.policy, hops);
    if (!stsDecision.ok) return stsDecision;
    hops = stsDecision.hops;
    if (sts.note) notes.push(sts.note);
    if (stsDecision.wouldRefuse.length > 0)
      notes.push(`MTA-STS policy of ${domain} (testing) does not name ${stsDecision.wouldRefuse.join(', ')}; delivered anyway`);
  }
  const candidates: (Hop & Candidate)[] = await Promise.all(hops.map(async (h) => ({ ...h, addresses: await addressesOf(h.host, resolver) })));
  const decided = decideTargets(domain, candidates, self);
  if (!decided.ok) return decided;
  return { ok: true, targets: decided.targets.slice(0, MAX_TARGETS).map(({ addresses: _, ...t }) => t), ...(notes.length > 0 ? { notes } : {}) };
}

/** Configured hops by priority (stable), with `mx` entries replaced by the hosts of those MX records. */
async function expandHops(configured: NextHop[], resolver: DnsResolver, lane: Lane): Promise<{ ok: true; hops: Hop[] } | RouteFailure> {
  const ordered = configured.map((h, i) => ({ h, i })).sort((a, b) => a.h.priority - b.h.priority || a.i - b.i);
  const hops: Hop[] = [];
  const problems: string[] = [];
  for (const { h } of ordered) {
    const settings = {
      port: h.port,
      tls: h.tls,
      maxConnections: h.maxConnections,
      maxPerMinute: h.maxPerMinute,
      configured: true,
      lane,
      ...(h.backup ? { backup: true } : {}),
    };
    if (h.host) {
      hops.push({ host: h.host, ...settings });
      continue;
    }
    const mx = decideMx(h.mx!, await resolver.mx(h.mx!));
    if (mx.ok) hops.push(...mx.hosts.map((host) => ({ host, ...settings })));
    else problems.push(mx.reason.replace(/^5\./, '4.'));
  }
  if (hops.length > 0) return { ok: true, hops };
  // The operator's own next hops: trouble finding them defers, it never bounces customers' mail.
  return { ok: false, temporary: true, reason: problems.join('; ') || '4.4.4 no next hop' };
}

/** A host's addresses: IPv4 first (the more likely to work from a container), then IPv6. */
async function addressesOf(host: string, resolver: DnsResolver): Promise<Lookup<string>> {
  if (isIP(host)) return { ok: true, records: [host] };
  const [a, aaaa] = await Promise.all([resolver.a(host), resolver.aaaa(host)]);
  const records = [...(a.ok ? a.records : []), ...(aaaa.ok ? aaaa.records : [])];
  if (records.length > 0) return { ok: true, records };
  if (!a.ok && a.kind === 'temperror') return a;
  if (!aaaa.ok && aaaa.kind === 'temperror') return aaaa;
  return a.ok ? { ok: false, kind: 'nodata', error: 'no address records' } : a;
}

/**
 * Our own names and addresses, for loop detection. Read again at most every SELF_FACTS_MS: the
 * interface list costs a netlink round trip per call, and every delivery asks for it.
 */
export function selfFacts(config: Config, now = Date.now()): SelfFacts {
  const cached = selfFactsCache.get(config);
  if (cached && now - cached.at < SELF_FACTS_MS) return cached.facts;
  const facts = readSelfFacts(config);
  selfFactsCache.set(config, { at: now, facts });
  return facts;
}

/** Long enough to spare the delivery path, short enough that an address added to the machine counts within seconds. */
const SELF_FACTS_MS = 5_000;
const selfFactsCache = new WeakMap<Config, { at: number; facts: SelfFacts }>();

function readSelfFacts(config: Config): SelfFacts {
  const localAddresses = Object.values(os.networkInterfaces())
    .flat()
    .flatMap((i) => (i ? [i.address] : []));
  const listeners = [config.smtp.listen, ...(config.submission.enabled ? [config.submission.listen] : [])].map((l) => ({ host: l.host, port: l.port }));
  return { hostnames: [config.hostname], localAddresses, listeners };
}

/** How a target is named in replies and logs: "name[address]:port", or "address:port" for an IP literal. */
export function describeTarget(t: Target): string {
  return isIP(t.host) ? `${t.host}:${t.port}` : `${t.host}[${t.address}]:${t.port}`;
}
