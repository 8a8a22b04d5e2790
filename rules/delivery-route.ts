// Where a message may be delivered, decided from DNS answers and facts about ourselves: the MX
// answer of a recipient domain (RFC 5321 §5.1, RFC 7505 null MX), the addresses of each next-hop
// host, mail loops, and the hop count. Pure: the DNS answers and our own addresses come in as data.
//
// Mail loops (Postfix: "mail for X loops back to myself"): a hop whose address is ours (an address
// of this machine on the port we listen on) is never tried. A destination found in DNS (a domain's
// MX, or its address record) must also be a public address: an MX pointing at loopback, a private
// or link-local range is either a loop or an attempt to make us reach inside our own network. Hosts
// the operator named in the transport map (`downstream`, `delivery.relay`) may be anywhere but us.
import { BlockList, isIP } from 'node:net';

/** A DNS answer as the resolver gives it (structurally the gateway's DnsResult). */
export type Lookup<T> = { ok: true; records: T[] } | { ok: false; kind: 'nxdomain' | 'nodata' | 'temperror'; error: string };

/** Where the route failed: `temporary` defers the recipients, else they fail (and are bounced). */
export type RouteFailure = { ok: false; temporary: boolean; reason: string };

/** A domain's mail hosts from its MX answer, best first; with no MX, the domain itself (RFC 5321 §5.1). */
export function decideMx(domain: string, mx: Lookup<{ exchange: string; priority: number }>): { ok: true; hosts: string[] } | RouteFailure {
  if (mx.ok) {
    const hosts = [...mx.records].sort((a, b) => a.priority - b.priority).map((r) => r.exchange.replace(/\.$/, ''));
    // RFC 7505: a single MX with exchange "." says the domain takes no mail at all.
    if (hosts.length === 0) return { ok: true, hosts: [domain] };
    if (hosts.length === 1 && hosts[0] === '') return { ok: false, temporary: false, reason: `5.1.10 ${domain} does not accept mail (null MX)` };
    return { ok: true, hosts: hosts.filter((h) => h !== '') };
  }
  if (mx.kind === 'temperror') return { ok: false, temporary: true, reason: `4.4.3 MX lookup for ${domain} failed: ${mx.error}` };
  if (mx.kind === 'nodata') return { ok: true, hosts: [domain] };
  return { ok: false, temporary: false, reason: `5.1.2 ${domain}: no such domain` };
}

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved';

const ranges: [AddressClass, string, number, 'ipv4' | 'ipv6'][] = [
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['private', '100.64.0.0', 10, 'ipv4'], // RFC 6598 carrier-grade NAT
  ['private', 'fc00::', 7, 'ipv6'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['reserved', '0.0.0.0', 8, 'ipv4'],
  ['reserved', '224.0.0.0', 3, 'ipv4'], // multicast and class E
  ['reserved', '::', 128, 'ipv6'],
  ['reserved', 'ff00::', 8, 'ipv6'],
];
const lists = new Map<AddressClass, BlockList>();
for (const [cls, net, prefix, type] of ranges) {
  const list = lists.get(cls) ?? new BlockList();
  list.addSubnet(net, prefix, type);
  lists.set(cls, list);
}

/** An IPv4-mapped IPv6 address (::ffff:1.2.3.4) is judged as the IPv4 address it carries. */
function unmapped(ip: string): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;
}

export function classifyAddress(ip: string): AddressClass {
  const a = unmapped(ip);
  const type = isIP(a) === 6 ? 'ipv6' : 'ipv4';
  for (const [cls, list] of lists) if (list.check(a, type)) return cls;
  return 'public';
}

function sameAddress(a: string, b: string): boolean {
  const x = unmapped(a).toLowerCase();
  const y = unmapped(b).toLowerCase();
  if (x === y) return true;
  if (isIP(x) !== 6 || isIP(y) !== 6) return false;
  const list = new BlockList();
  list.addAddress(x, 'ipv6');
  return list.check(y, 'ipv6');
}

export interface SelfFacts {
  /** Our names (config hostname). */
  hostnames: string[];
  /** Addresses of this machine's interfaces. */
  localAddresses: string[];
  /** Where our SMTP listeners are bound ("0.0.0.0" / "::" = every local address); port 0 is unknown and skipped. */
  listeners: { host: string; port: number }[];
}

export interface Candidate {
  host: string;
  port: number;
  /** Named by the operator in the transport map (downstream or relay), not found in DNS. */
  configured: boolean;
  /** The addresses of `host` (an IP literal host has itself). */
  addresses: Lookup<string>;
}

export type Targets<C extends Candidate> = { ok: true; targets: (C & { address: string })[] } | RouteFailure;

function isOurListener(address: string, port: number, self: SelfFacts): boolean {
  return self.listeners.some((l) => {
    if (l.port === 0 || l.port !== port) return false;
    if (l.host === '0.0.0.0' || l.host === '::' || l.host === '') {
      return classifyAddress(address) === 'loopback' || self.localAddresses.some((a) => sameAddress(a, address));
    }
    return sameAddress(l.host, address);
  });
}

/** Why delivering to this address would be a loop or a reach inside, or undefined when it is fine. */
export function loopReason(c: Candidate, address: string, self: SelfFacts): string | undefined {
  const host = c.host === address ? address : `${c.host}[${address}]`;
  if (isOurListener(address, c.port, self)) return `${host}:${c.port} is our own SMTP listener`;
  if (c.configured) return undefined;
  if (self.hostnames.some((n) => n.toLowerCase() === c.host.toLowerCase())) return `${c.host} is our own name`;
  if (self.localAddresses.some((a) => sameAddress(a, address))) return `${host} is an address of this machine`;
  const cls = classifyAddress(address);
  if (cls !== 'public') return `${host} is a ${cls} address, not in the transport map`;
  return undefined;
}

/**
 * The addresses to try, in order, from the candidates' lookups. Fails when none is left: 5.4.6
 * when every usable address was a loop; deferred when a lookup failed temporarily or a configured
 * host did not resolve (our own configuration, never a reason to bounce a customer's mail); else
 * 5.4.4 (the domain's mail hosts do not exist).
 */
export function decideTargets<C extends Candidate>(domain: string, candidates: C[], self: SelfFacts): Targets<C> {
  const targets: (C & { address: string })[] = [];
  const loops: string[] = [];
  const problems: string[] = [];
  let temporary = false;
  for (const c of candidates) {
    if (!c.addresses.ok) {
      temporary ||= c.addresses.kind === 'temperror' || c.configured;
      const what = c.addresses.kind === 'temperror' ? `lookup failed: ${c.addresses.error}` : 'host not found';
      problems.push(`${c.host}: ${what}`);
      continue;
    }
    for (const address of c.addresses.records) {
      const loop = loopReason(c, address, self);
      if (loop) loops.push(loop);
      else targets.push({ ...c, address });
    }
  }
  if (targets.length > 0) return { ok: true, targets };
  if (loops.length > 0 && !temporary) return { ok: false, temporary: false, reason: `5.4.6 mail for ${domain} loops back to myself: ${loops.join('; ')}` };
  if (candidates.length === 0) return { ok: false, temporary: true, reason: `4.4.4 no next hop for ${domain}` };
  const code = temporary ? '4.4.4' : '5.4.4';
  return { ok: false, temporary, reason: `${code} no usable address for ${domain}: ${[...problems, ...loops].join('; ')}` };
}

/** Counts the Received header fields of a header block. */
export function countReceived(headerBlock: string): number {
  return headerBlock.match(/^received[ \t]*:/gim)?.length ?? 0;
}

/** RFC 5321 §6.3: too many Received fields means the message is looping; it is returned to its sender. */
export function hopCountFailure(received: number, limit: number): string | undefined {
  if (received <= limit) return undefined;
  return `5.4.6 too many hops: ${received} Received headers (limit ${limit}), mail loop`;
}
