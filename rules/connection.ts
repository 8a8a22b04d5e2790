// Connection-time decisions: HELO/EHLO, reverse DNS and DNSBL/DNSWL. Pure functions: the SMTP
// adapter gathers the facts (DNS answers through the resolver port of core/dns.ts, list results through
// scanners/dnsbl.ts), passes them in with the policy, and applies the decision. No sockets, no
// DNS, no clock in here.
//
// Fail closed: a DNS temperror is never "does not exist", "no PTR" or "not listed"; each check
// has its own explicit policy for it (see the defaults below and the reasons given there).
// When to apply a decision is the adapter's business; issue 4 asks for DNSBL rejects at RCPT
// time, so that postmaster@ stays reachable.
import type { DnsResult, MxRecord } from '../core/dns.ts';
import type { DnsblResult } from '../scanners/dnsbl.ts';
import { canonicalIp, parseIp, sameIp } from '../core/ip.ts';
import { replies, type SmtpReply } from './replies.ts';

/** What one failed check does. 'ignore' keeps a note for the log and moves on. */
export type CheckAction = 'reject' | 'tempfail' | 'score' | 'ignore';
export interface CheckPolicy<A extends CheckAction = CheckAction> {
  action: A;
  /** Added to the connection score when action is 'score'. Default 1. */
  score?: number;
}

export type Decision =
  | { action: 'accept'; notes?: string[]; allowlisted?: boolean }
  /** `check` is a stable id for metrics ("helo.nxdomain", "dnsbl.zen.spamhaus.org"); `reason` is for the log. */
  | { action: 'reject' | 'tempfail'; reply: SmtpReply; reason: string; check: string; notes?: string[] }
  | { action: 'score'; score: number; reason: string; check: string; notes?: string[] };

export const ACCEPT: Decision = { action: 'accept' };

/** The temporary twin of a permanent reply: same text, 4xx code, 4.x.x enhanced code. */
export function temporary(reply: SmtpReply): SmtpReply {
  if (reply.code < 500) return reply;
  return { code: reply.code === 554 ? 451 : 450, enhanced: `4${reply.enhanced.slice(1)}`, text: reply.text };
}

/** Turns one failed check into a decision according to its policy. */
export function applyCheck(policy: CheckPolicy, check: string, reply: SmtpReply, reason: string): Decision {
  switch (policy.action) {
    case 'reject':
      return { action: 'reject', reply, reason, check };
    case 'tempfail':
      return { action: 'tempfail', reply: temporary(reply), reason, check };
    case 'score':
      return { action: 'score', score: policy.score ?? 1, reason, check };
    case 'ignore':
      return { action: 'accept', notes: [`${check} ignored: ${reason}`] };
  }
}

/**
 * Several decisions into one: a reject wins (it is definitive), then a tempfail, then the sum of
 * the scores; notes are kept from all of them so the log shows everything that was seen.
 */
export function combineDecisions(decisions: Decision[]): Decision {
  const notes = decisions.flatMap((d) => d.notes ?? []);
  const withNotes = <D extends Decision>(d: D): D => (notes.length > 0 ? { ...d, notes } : d);
  const refusal = decisions.find((d) => d.action === 'reject') ?? decisions.find((d) => d.action === 'tempfail');
  if (refusal) return withNotes(refusal);
  const scores = decisions.filter((d) => d.action === 'score');
  if (scores.length > 0) {
    return withNotes({
      action: 'score',
      score: scores.reduce((sum, d) => sum + d.score, 0),
      reason: scores.map((d) => d.reason).join('; '),
      check: scores.map((d) => d.check).join(','),
    });
  }
  const allowlisted = decisions.some((d) => d.action === 'accept' && d.allowlisted);
  return withNotes(allowlisted ? { action: 'accept', allowlisted: true } : { action: 'accept' });
}

/** Runs checks in order and stops at the first that is not an accept; ignored checks leave notes. */
function firstFailure(steps: (() => Decision | undefined)[]): Decision {
  const notes: string[] = [];
  for (const step of steps) {
    const d = step();
    if (!d) continue;
    if (d.action !== 'accept') return notes.length > 0 ? { ...d, notes: [...notes, ...(d.notes ?? [])] } : d;
    notes.push(...(d.notes ?? []));
  }
  return notes.length > 0 ? { action: 'accept', notes } : ACCEPT;
}

// ---------------------------------------------------------------------------------------------
// HELO / EHLO

export interface HeloPolicy {
  /** Not a host name or address literal (bad characters, underscore, bare IP, empty label). */
  invalidSyntax: CheckPolicy;
  /** A single label such as "server1": RFC 5321 §4.1.1.1 wants the primary host name. */
  notFqdn: CheckPolicy;
  /** localhost, or a name under one of `reservedSuffixes`. */
  reservedName: CheckPolicy;
  reservedSuffixes: string[];
  /** An address literal that is not the client's own address. */
  literalMismatch: CheckPolicy;
  /** Our own host name or address, given by someone else. */
  forgedSelf: CheckPolicy;
  /** The name does not exist (NXDOMAIN) or has no A/AAAA/MX record (NODATA). */
  unresolvable: CheckPolicy;
  /** The lookup failed (timeout, SERVFAIL): we do not know, so never a reject. */
  dnsError: CheckPolicy<'tempfail' | 'score' | 'ignore'>;
}

/**
 * Defaults for a public MX: each rule here is one that legitimate MTAs meet (RFC 5321 §4.1.1.1,
 * §4.1.3) and that the hosting providers in issue 4 publish. `.test` is deliberately not reserved
 * by default although RFC 6761 reserves it: test suites and staging use it, and on the public
 * Internet such a name fails the "must resolve" check anyway. Add it in production config if wanted.
 */
export const DEFAULT_HELO_POLICY: HeloPolicy = {
  invalidSyntax: { action: 'reject' },
  notFqdn: { action: 'reject' },
  reservedName: { action: 'reject' },
  reservedSuffixes: ['localhost', 'localdomain', 'local', 'invalid', 'example', 'internal', 'home.arpa', 'lan', 'home', 'corp', 'onion'],
  literalMismatch: { action: 'reject' },
  forgedSelf: { action: 'reject' },
  unresolvable: { action: 'reject' },
  dnsError: { action: 'tempfail' },
};

export interface HeloFacts {
  /** The EHLO/HELO argument as sent. */
  helo: string;
  clientIp: string;
  /** Names this gateway answers as (and, if wanted, hosted domains nobody else may claim). */
  ourHostnames: string[];
  ourIps: string[];
  /** Lookups of heloLookupName(); required when it returns a name, MX optional (Postfix counts it too). */
  dns?: { a: DnsResult<string>; aaaa: DnsResult<string>; mx?: DnsResult<MxRecord> };
}

export type ParsedHelo = { kind: 'name'; name: string } | { kind: 'literal'; address: string } | { kind: 'invalid'; why: string };

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** RFC 5321 §4.1.2 Domain / §4.1.3 address-literal syntax, with the reason when it fails. */
export function parseHelo(helo: string): ParsedHelo {
  const text = helo.trim().replace(/\.$/, '');
  if (text.startsWith('[')) {
    const m = /^\[(?:IPv6:([0-9a-f:.]+)|(\d+\.\d+\.\d+\.\d+))\]$/i.exec(text);
    const address = m?.[1] ?? m?.[2];
    // "[IPv6:…]" must hold an IPv6 address, "[…]" without the tag an IPv4 one.
    const valid = address !== undefined && parseIp(address) !== undefined && (m?.[1] === undefined || address.includes(':'));
    return valid ? { kind: 'literal', address } : { kind: 'invalid', why: 'invalid address literal' };
  }
  if (text === '') return { kind: 'invalid', why: 'empty host name' };
  if (parseIp(text)) return { kind: 'invalid', why: 'an address must be given as a literal in brackets, e.g. [192.0.2.1]' };
  if (text.length > 253) return { kind: 'invalid', why: 'host name longer than 253 characters' };
  const labels = text.split('.');
  if (labels.some((l) => l.includes('_'))) return { kind: 'invalid', why: 'underscore is not allowed in a host name' };
  if (!labels.every((l) => LABEL.test(l))) return { kind: 'invalid', why: 'not a valid host name' };
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return { kind: 'invalid', why: 'top-level domain is numeric' };
  return { kind: 'name', name: text.toLowerCase() };
}

const isUnder = (name: string, suffix: string): boolean => {
  const s = suffix.toLowerCase().replace(/^\.|\.$/g, '');
  return name === s || name.endsWith(`.${s}`);
};

// A client connecting from one of our own addresses (a local monitor, a second role on the same
// host) may rightly use our name; the forged-self check is for strangers claiming it.
const fromUs = (facts: HeloFacts): boolean => facts.ourIps.some((ip) => sameIp(ip, facts.clientIp));

function literalChecks(address: string, facts: HeloFacts, policy: HeloPolicy): Decision {
  const { helo, clientIp } = facts;
  return firstFailure([
    () => {
      if (sameIp(address, clientIp)) return undefined;
      const reply = replies.heloLiteralMismatch(helo, canonicalIp(clientIp) ?? clientIp);
      return applyCheck(policy.literalMismatch, 'helo.literal', reply, `HELO literal ${helo} from ${clientIp}`);
    },
    () => {
      if (fromUs(facts) || !facts.ourIps.some((ip) => sameIp(ip, address))) return undefined;
      return applyCheck(policy.forgedSelf, 'helo.self', replies.heloForgedSelf(helo), `HELO ${helo} claims our address`);
    },
  ]);
}

function nameChecks(name: string, facts: HeloFacts, policy: HeloPolicy): Decision {
  const { helo } = facts;
  const ours = facts.ourHostnames.some((h) => h.toLowerCase().replace(/\.$/, '') === name);
  return firstFailure([
    // before the FQDN check, so that "localhost" is told it is reserved, not merely short
    () =>
      policy.reservedSuffixes.some((s) => isUnder(name, s))
        ? applyCheck(policy.reservedName, 'helo.reserved', replies.heloReserved(helo), `HELO ${helo} is a reserved name`)
        : undefined,
    () => (name.includes('.') ? undefined : applyCheck(policy.notFqdn, 'helo.fqdn', replies.heloNotFqdn(helo), `HELO ${helo} is a single label`)),
    () => (ours && !fromUs(facts) ? applyCheck(policy.forgedSelf, 'helo.self', replies.heloForgedSelf(helo), `HELO ${helo} claims our name`) : undefined),
  ]);
}

/** Checks that need no DNS; `lookup` is the name to resolve when all of them passed. */
function heloStaticChecks(facts: HeloFacts, policy: HeloPolicy): { decision: Decision; lookup?: string } {
  const parsed = parseHelo(facts.helo);
  if (parsed.kind === 'invalid') {
    const reply = replies.heloSyntax(facts.helo, parsed.why);
    return { decision: applyCheck(policy.invalidSyntax, 'helo.syntax', reply, `HELO ${facts.helo}: ${parsed.why}`) };
  }
  if (parsed.kind === 'literal') return { decision: literalChecks(parsed.address, facts, policy) };
  const decision = nameChecks(parsed.name, facts, policy);
  const needsDns = policy.unresolvable.action !== 'ignore' || policy.dnsError.action !== 'ignore';
  return decision.action === 'accept' && needsDns ? { decision, lookup: parsed.name } : { decision };
}
/** The name the adapter must look up (A, AAAA, optionally MX) before decideHelo, if any. */
export function heloLookupName(facts: Omit<HeloFacts, 'dns'>, policy: HeloPolicy = DEFAULT_HELO_POLICY): string | undefined {
  return heloStaticChecks(facts, policy).lookup;
}

function heloDnsCheck(name: string, facts: HeloFacts, policy: HeloPolicy): Decision {
  const answers = facts.dns ? [facts.dns.a, facts.dns.aaaa, ...(facts.dns.mx ? [facts.dns.mx] : [])] : [];
  if (answers.some((r) => r.ok)) return ACCEPT;
  // NXDOMAIN is about the name, whatever the type: one is enough to know it does not exist.
  if (answers.some((r) => !r.ok && r.kind === 'nxdomain')) {
    return applyCheck(policy.unresolvable, 'helo.nxdomain', replies.heloUnknown(name), `HELO ${name}: NXDOMAIN`);
  }
  const errors = answers.flatMap((r) => (!r.ok && r.kind === 'temperror' ? [r.error] : []));
  if (errors.length > 0 || answers.length === 0) {
    const why = answers.length === 0 ? 'HELO name was not looked up' : errors.join('; ');
    return applyCheck(policy.dnsError, 'helo.dns', replies.heloDnsTempfail(name), `HELO ${name}: ${why}`);
  }
  return applyCheck(policy.unresolvable, 'helo.nodata', replies.heloNoAddress(name), `HELO ${name}: no A/AAAA/MX`);
}

export function decideHelo(facts: HeloFacts, policy: HeloPolicy = DEFAULT_HELO_POLICY): Decision {
  const { decision, lookup } = heloStaticChecks(facts, policy);
  if (lookup === undefined) return decision;
  return combineDecisions([decision, heloDnsCheck(lookup, facts, policy)]);
}

// ---------------------------------------------------------------------------------------------
// Reverse DNS (PTR, and forward-confirmed reverse DNS)

export interface RdnsPolicy {
  /** No PTR record (NXDOMAIN or NODATA for the in-addr.arpa / ip6.arpa name). */
  missingPtr: CheckPolicy;
  /** PTR names exist, but none of them resolves back to the client address (FCrDNS). */
  notConfirmed: CheckPolicy;
  /** The PTR or forward lookup failed: we do not know, so never a reject. */
  dnsError: CheckPolicy<'tempfail' | 'score' | 'ignore'>;
  /** At most this many PTR names are checked forward (RFC 7208 §5.5 uses 10 for the same reason). */
  maxPtrNames: number;
}

/**
 * Missing PTR is refused by default: every legitimate mail server has one, and the big mailbox
 * providers refuse mail without it (550 5.7.25) since 2024. A PTR that does not confirm forward
 * only scores by default: stale or CDN-style reverse zones are common among small legitimate
 * senders, so refusing on it is a policy choice (one config line: action 'reject').
 */
export const DEFAULT_RDNS_POLICY: RdnsPolicy = {
  missingPtr: { action: 'reject' },
  notConfirmed: { action: 'score', score: 1 },
  dnsError: { action: 'tempfail' },
  maxPtrNames: 10,
};

export interface RdnsFacts {
  clientIp: string;
  ptr: DnsResult<string>;
  /** Forward lookups of the names from rdnsForwardLookups(): PTR name → its A (IPv4 client) or AAAA answer. */
  forward: Record<string, DnsResult<string>>;
}

/** What the adapter must look up after the PTR: each name with A for IPv4 clients, AAAA for IPv6. */
export function rdnsForwardLookups(clientIp: string, ptr: DnsResult<string>, policy: RdnsPolicy = DEFAULT_RDNS_POLICY): { name: string; type: 'a' | 'aaaa' }[] {
  if (!ptr.ok) return [];
  const type = parseIp(clientIp)?.version === 6 ? 'aaaa' : 'a';
  return ptr.records.slice(0, policy.maxPtrNames).map((name) => ({ name, type }));
}

/** The first PTR name that resolves back to the client: the verified client host name, if any. */
export function confirmedPtrName(facts: RdnsFacts, policy: RdnsPolicy = DEFAULT_RDNS_POLICY): string | undefined {
  if (!facts.ptr.ok) return undefined;
  return facts.ptr.records.slice(0, policy.maxPtrNames).find((name) => {
    const fwd = facts.forward[name];
    return fwd?.ok === true && fwd.records.some((addr) => sameIp(addr, facts.clientIp));
  });
}

export function decideRdns(facts: RdnsFacts, policy: RdnsPolicy = DEFAULT_RDNS_POLICY): Decision {
  const ip = canonicalIp(facts.clientIp) ?? facts.clientIp;
  const { ptr } = facts;
  if (!ptr.ok && ptr.kind === 'temperror') {
    return applyCheck(policy.dnsError, 'rdns.dns', replies.rdnsTempfail(ip), `PTR of ${ip}: ${ptr.error}`);
  }
  if (!ptr.ok || ptr.records.length === 0) {
    return applyCheck(policy.missingPtr, 'rdns.missing', replies.rdnsMissing(ip), `no PTR for ${ip}`);
  }
  if (policy.notConfirmed.action === 'ignore' || confirmedPtrName(facts, policy) !== undefined) return ACCEPT;
  const names = ptr.records.slice(0, policy.maxPtrNames);
  // A forward lookup we could not do (or that was not done) might have confirmed: not a mismatch.
  const unknown = names.filter((n) => {
    const fwd = facts.forward[n];
    return fwd === undefined || (!fwd.ok && fwd.kind === 'temperror');
  });
  if (unknown.length > 0) {
    return applyCheck(policy.dnsError, 'rdns.dns', replies.rdnsTempfail(ip), `forward lookup of ${unknown.join(', ')} failed`);
  }
  const first = names[0] ?? '';
  return applyCheck(policy.notConfirmed, 'rdns.fcrdns', replies.rdnsNotConfirmed(ip, first), `PTR ${names.join(', ')} does not resolve to ${ip}`);
}

// ---------------------------------------------------------------------------------------------
// DNSBL / DNSWL

export interface DnsblPolicy {
  /**
   * What a lookup error on a block list does when the list sets no `onError`. Default 'ignore'
   * (logged as a note and counted): a DNSBL is one signal among several, lists go down or rate-limit
   * often, and tempfailing all inbound mail whenever one does would turn a list outage into a mail
   * outage, while the content scanners still fail closed on every accepted message. This is the
   * one place where a DNS error lets mail pass, and only by this explicit option; set 'tempfail'
   * (451 4.7.1) to refuse mail that could not be checked.
   */
  onError: 'ignore' | 'tempfail';
  /** Action of a block list that sets none. Default 'reject'. */
  defaultAction: 'reject' | 'score';
}

export const DEFAULT_DNSBL_POLICY: DnsblPolicy = { onError: 'ignore', defaultAction: 'reject' };

export interface DnsblFacts {
  /** The address or domain that was checked. */
  subject: string;
  /** What it is, for the reply text: "client [1.2.3.4]", "HELO name x", "sender domain x". */
  role: 'client' | 'helo' | 'sender';
  results: DnsblResult[];
}

const subjectText = (facts: DnsblFacts): string =>
  facts.role === 'client'
    ? `client [${canonicalIp(facts.subject) ?? facts.subject}]`
    : `${facts.role === 'helo' ? 'HELO name' : 'sender domain'} ${facts.subject}`;

function blockListDecision(r: DnsblResult, facts: DnsblFacts, policy: DnsblPolicy): Decision {
  const zone = r.list.zone;
  const check = `dnsbl.${zone}`;
  switch (r.status) {
    case 'listed': {
      const reason = `${subjectText(facts)} listed in ${zone} (${r.codes.map((c, i) => `${c} ${r.meanings[i] ?? ''}`.trim()).join(', ')})`;
      if ((r.list.action ?? policy.defaultAction) === 'score') {
        return { action: 'score', score: r.list.weight ?? 1, reason, check };
      }
      return { action: 'reject', reply: replies.dnsblBlocked(subjectText(facts), zone, r.reason), reason, check };
    }
    case 'not-listed':
      return ACCEPT;
    case 'refused':
      // The list refuses us (e.g. Spamhaus via a public resolver): an operator problem that a retry
      // by the sender cannot fix, so it is never a tempfail; the note makes it visible.
      return { action: 'accept', notes: [`${check} refused our query (${r.codes.join(', ')}): check the resolver setup`] };
    case 'error': {
      const reason = `${zone} lookup failed for ${facts.subject}: ${r.error}`;
      if ((r.list.onError ?? policy.onError) === 'ignore') return { action: 'accept', notes: [`${check} error ignored: ${reason}`] };
      return { action: 'tempfail', reply: replies.dnsblTempfail(subjectText(facts), zone), reason, check };
    }
  }
}

/** A hit on an allow list (DNSWL) skips the block lists entirely; otherwise see combineDecisions. */
export function decideDnsbl(facts: DnsblFacts, policy: DnsblPolicy = DEFAULT_DNSBL_POLICY): Decision {
  const allow = facts.results.filter((r) => r.list.type === 'allow');
  const hit = allow.find((r) => r.status === 'listed');
  const allowNotes = allow
    .filter((r) => r.status === 'error' || r.status === 'refused')
    .map((r) => `dnsbl.${r.list.zone} (allow list) ${r.status}: ${r.status === 'error' ? r.error : r.codes.join(', ')}`);
  if (hit?.status === 'listed') {
    return { action: 'accept', allowlisted: true, notes: [...allowNotes, `allowlisted by ${hit.list.zone} (${hit.codes.join(', ')})`] };
  }
  const blocks = facts.results.filter((r) => r.list.type === 'block').map((r) => blockListDecision(r, facts, policy));
  return combineDecisions([...(allowNotes.length > 0 ? [{ action: 'accept' as const, notes: allowNotes }] : []), ...blocks]);
}
