// Allow and block lists: parsing (validation) of list entries and the pure matcher that the
// console, the scan pipeline and the SMTP front share. Facts in (sender address, client IP),
// decision out; no DNS, no disk.
//
// Entry forms (MailWatch / Proxmox conventions):
//   user@example.com    that exact sender address (case-insensitive)
//   *@example.com       any sender at exactly that domain (not its subdomains)
//   example.com         any sender at that domain or any of its subdomains
//   192.0.2.7, 2001:db8::1            that client IP
//   192.0.2.0/24, 2001:db8::/32      any client IP in that network
//
// Precedence (decideLists): the most specific scope wins — a recipient's own entries, then its
// domain's, then global ones. Within one scope a block entry beats an allow entry (fail closed:
// a sender both allowed and blocked by the same person is blocked).
//
// What "allow" means is the caller's policy, not this file's: the pipeline must never let an
// allow entry skip the virus scan or the banned-attachment rules (MailScanner's rule: a
// whitelist only affects the spam verdict).

export type ListKind = 'allow' | 'block';
export type ListScope = 'user' | 'domain' | 'global';

export type ListEntry =
  | { type: 'address'; value: string }
  | { type: 'domain-exact'; value: string }
  | { type: 'domain'; value: string }
  | { type: 'ip'; value: string }
  | { type: 'cidr'; value: string };

export type ParsedEntry = { ok: true; entry: ListEntry } | { ok: false; error: string };

/** A stored entry as the matcher sees it. */
export interface ScopedEntry {
  kind: ListKind;
  scope: ListScope;
  /** The entry text as parseListEntry normalised it (`entry.value` plus `*@` for domain-exact). */
  text: string;
}

export interface ListFacts {
  /** The envelope sender (MAIL FROM), "" for the null sender. */
  sender: string;
  /** The SMTP client's IP address. */
  clientIp: string;
}

export interface ListDecision {
  kind: ListKind;
  scope: ListScope;
  /** The entry that decided, as stored. */
  entry: string;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const MAX_ENTRY = 320;

function validDomain(d: string): boolean {
  if (d.length === 0 || d.length > 253 || !d.includes('.')) return false;
  const labels = d.split('.');
  // a numeric last label is an IP address typed as a domain
  if (/^\d+$/.test(labels.at(-1)!)) return false;
  return labels.every((l) => LABEL.test(l));
}

// RFC 5322 atext and dots; quoted local parts are not accepted in list entries.
const LOCAL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** Validates and normalises (lower case, trimmed) one entry typed by a person. */
export function parseListEntry(input: string): ParsedEntry {
  const text = input.trim().toLowerCase();
  if (text.length === 0) return { ok: false, error: 'empty entry' };
  if (text.length > MAX_ENTRY) return { ok: false, error: 'entry is too long' };
  if (/[\s\x00-\x1f\x7f]/.test(text)) return { ok: false, error: 'entry contains spaces or control characters' };
  if (text.includes('/')) {
    const cidr = parseCidr(text);
    return cidr ? { ok: true, entry: { type: 'cidr', value: cidr.text } } : { ok: false, error: `not a valid network: ${input.trim()}` };
  }
  const ip = parseIp(text);
  if (ip) return { ok: true, entry: { type: 'ip', value: formatIp(ip) } };
  const at = text.lastIndexOf('@');
  if (at === -1) {
    return validDomain(text)
      ? { ok: true, entry: { type: 'domain', value: text } }
      : { ok: false, error: `not a valid domain, address or IP: ${input.trim()}` };
  }
  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (!validDomain(domain)) return { ok: false, error: `not a valid domain after @: ${domain}` };
  if (local === '*') return { ok: true, entry: { type: 'domain-exact', value: domain } };
  if (local.length > 64 || !LOCAL.test(local)) return { ok: false, error: `not a valid address: ${input.trim()}` };
  return { ok: true, entry: { type: 'address', value: `${local}@${domain}` } };
}

/** The canonical text of a parsed entry (what is stored and shown). */
export function entryText(e: ListEntry): string {
  return e.type === 'domain-exact' ? `*@${e.value}` : e.value;
}

/** Whether one entry matches the facts. A text that does not parse matches nothing. */
export function matchesEntry(text: string, facts: ListFacts): boolean {
  const parsed = parseListEntry(text);
  if (!parsed.ok) return false;
  const e = parsed.entry;
  const sender = facts.sender.toLowerCase();
  const at = sender.lastIndexOf('@');
  const senderDomain = at === -1 ? '' : sender.slice(at + 1).replace(/\.$/, '');
  switch (e.type) {
    case 'address':
      return sender === e.value;
    case 'domain-exact':
      return senderDomain === e.value;
    case 'domain':
      return senderDomain === e.value || senderDomain.endsWith(`.${e.value}`);
    case 'ip': {
      const ip = parseIp(facts.clientIp.toLowerCase());
      return ip !== undefined && formatIp(ip) === e.value;
    }
    case 'cidr': {
      const net = parseCidr(e.value);
      const ip = parseIp(facts.clientIp.toLowerCase());
      return net !== undefined && ip !== undefined && inNetwork(ip, net);
    }
  }
}

const SCOPE_ORDER: ListScope[] = ['user', 'domain', 'global'];

/** The list decision for one recipient's entries (user, domain and global scopes), or null. */
export function decideLists(entries: readonly ScopedEntry[], facts: ListFacts): ListDecision | null {
  for (const scope of SCOPE_ORDER) {
    const hits = entries.filter((e) => e.scope === scope && matchesEntry(e.text, facts));
    const hit = hits.find((e) => e.kind === 'block') ?? hits.find((e) => e.kind === 'allow');
    if (hit) return { kind: hit.kind, scope, entry: hit.text };
  }
  return null;
}

// ---- IP addresses, as 4 or 16 bytes ----

type Ip = { v: 4 | 6; bytes: number[] };

function parseIpv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^(0|[1-9]\d{0,2})$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : undefined;
}

function parseIpv6(s: string): number[] | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-f]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

function parseIp(s: string): Ip | undefined {
  const v4 = parseIpv4(s);
  if (v4) return { v: 4, bytes: v4 };
  if (!s.includes(':')) return undefined;
  const v6 = parseIpv6(s);
  if (!v6) return undefined;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as dual-stack sockets report) is that IPv4 address.
  if (v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) return { v: 4, bytes: v6.slice(12) };
  return { v: 6, bytes: v6 };
}

function formatIp(ip: Ip): string {
  if (ip.v === 4) return ip.bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function parseCidr(s: string): { ip: Ip; prefix: number; text: string } | undefined {
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined || addr === undefined || len === undefined || !/^\d{1,3}$/.test(len)) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const prefix = Number(len);
  if (prefix > (ip.v === 4 ? 32 : 128)) return undefined;
  // The network address: host bits cleared, so "192.0.2.7/24" is stored as "192.0.2.0/24".
  const bytes = ip.bytes.map((b, i) => {
    const bits = Math.min(8, Math.max(0, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
  const net = { v: ip.v, bytes };
  return { ip: net, prefix, text: `${formatIp(net)}/${prefix}` };
}

function inNetwork(ip: Ip, net: { ip: Ip; prefix: number }): boolean {
  if (ip.v !== net.ip.v) return false;
  for (let i = 0; i * 8 < net.prefix; i++) {
    const bits = Math.min(8, net.prefix - i * 8);
    const mask = (0xff << (8 - bits)) & 0xff;
    if ((ip.bytes[i]! & mask) !== net.ip.bytes[i]) return false;
  }
  return true;
}

/** Whether `ip` is in any of the networks or addresses in `entries` (e.g. a monitoring allow list). */
export function ipInAny(ip: string, entries: readonly string[]): boolean {
  return networkMatcher(entries)(ip) !== undefined;
}

/**
 * The first of `entries` (IP addresses and networks; other entries never match an address) that
 * holds a client address, with the entries parsed once: a check that runs on every connection
 * (trusted networks) compiles its list once per config instead of re-parsing it each time.
 */
export function networkMatcher(entries: readonly string[]): (clientIp: string) => string | undefined {
  const nets: { text: string; ip?: string; net?: { ip: Ip; prefix: number } }[] = [];
  for (const text of entries) {
    const p = parseListEntry(text);
    if (!p.ok) continue;
    if (p.entry.type === 'ip') nets.push({ text, ip: p.entry.value });
    else if (p.entry.type === 'cidr') {
      const net = parseCidr(p.entry.value);
      if (net) nets.push({ text, net });
    }
  }
  return (clientIp) => {
    const ip = parseIp(clientIp.toLowerCase());
    if (ip === undefined) return undefined;
    let text: string | undefined;
    for (const n of nets) if (n.net ? inNetwork(ip, n.net) : n.ip === (text ??= formatIp(ip))) return n.text;
    return undefined;
  };
}
