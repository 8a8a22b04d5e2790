// IP address helpers: canonical forms, reverse (in-addr.arpa / ip6.arpa) labels for PTR and DNSBL
// queries. Pure functions over strings, no I/O, on the bottom floor so every other floor may use them.
import { isIPv4, isIPv6 } from 'node:net';

export type ParsedIp = { version: 4; bytes: number[] } | { version: 6; bytes: number[] };

/**
 * Parses an address as a socket reports it. An IPv4-mapped IPv6 address (::ffff:1.2.3.4, what a
 * dual-stack listener reports for IPv4 clients) is returned as the IPv4 address it carries:
 * DNSBLs, PTR zones and HELO literals all know that client by its IPv4 form.
 */
export function parseIp(input: string): ParsedIp | undefined {
  const ip = input.trim();
  if (isIPv4(ip)) return { version: 4, bytes: ip.split('.').map(Number) };
  if (!isIPv6(ip)) return undefined;
  const bytes = ipv6Bytes(ip.replace(/%.*$/, ''));
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? { version: 4, bytes: bytes.slice(12) } : { version: 6, bytes };
}

/** 16 bytes of an address node:net already accepted as IPv6 (handles "::" and a dotted IPv4 tail). */
function ipv6Bytes(ip: string): number[] {
  let text = ip;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1]) {
    const [a, b, c, d] = tail[1].split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -tail[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/** Canonical text: dotted quad for IPv4 (also for mapped addresses), RFC 5952 compressed IPv6. */
export function canonicalIp(input: string): string | undefined {
  const parsed = parseIp(input);
  if (!parsed) return undefined;
  if (parsed.version === 4) return parsed.bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((parsed.bytes[i] ?? 0) << 8) | (parsed.bytes[i + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run (of at least two) of zero groups, the first one on a tie.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.len < 2) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** True when both strings are the same address (mapped IPv4 equals IPv4; IPv6 spelling ignored). */
export function sameIp(a: string, b: string): boolean {
  const ca = canonicalIp(a);
  return ca !== undefined && ca === canonicalIp(b);
}

/**
 * The reversed labels used by PTR and DNSBL queries, without the suffix: "4.3.2.1" for 1.2.3.4, and
 * the 32 nibbles in reverse for IPv6 (RFC 3596 §2.5, RFC 5782 §2.4).
 */
export function reversedLabels(input: string): string | undefined {
  const parsed = parseIp(input);
  if (!parsed) return undefined;
  if (parsed.version === 4) return [...parsed.bytes].reverse().join('.');
  const nibbles = parsed.bytes.flatMap((b) => [(b >> 4).toString(16), (b & 0xf).toString(16)]);
  return nibbles.reverse().join('.');
}

/** The PTR query name: 4.3.2.1.in-addr.arpa or <32 nibbles>.ip6.arpa. */
export function ptrName(input: string): string | undefined {
  const parsed = parseIp(input);
  const labels = reversedLabels(input);
  if (!parsed || labels === undefined) return undefined;
  return `${labels}.${parsed.version === 4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}
