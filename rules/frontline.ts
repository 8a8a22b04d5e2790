// The front line's decisions, as pure functions over facts the SMTP adapter gathered (DNS answers,
// list results, the SPF result, counters) and the policy in force for one recipient domain.
// Building blocks (HELO, rDNS, DNSBL) are in rules/connection.ts; this file adds SPF, the
// per-domain policy, trust and exemptions, the score threshold, recipient existence and limits.
//
// When: every check is gathered once per session or transaction but applied at RCPT time (like
// Postfix's smtpd_delay_reject=yes), with the policy of the recipient's domain. That keeps
// postmaster@ reachable, lets domains differ, and tells the sender which recipient was refused.
import { matchesEntry, networkMatcher } from './lists.ts';
import {
  ACCEPT,
  applyCheck,
  combineDecisions,
  decideDnsbl,
  decideHelo,
  decideRdns,
  type CheckPolicy,
  type Decision,
  type DnsblFacts,
  type DnsblPolicy,
  type HeloFacts,
  type HeloPolicy,
  type RdnsFacts,
  type RdnsPolicy,
} from './connection.ts';
import { canonicalIp } from '../core/ip.ts';
import { replies } from './replies.ts';

// ---------------------------------------------------------------------------------------------
// Policy for one recipient domain

export type SpfResultName = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

export interface SpfPolicy {
  enabled: boolean;
  fail: CheckPolicy;
  softfail: CheckPolicy;
  neutral: CheckPolicy;
  none: CheckPolicy;
  permerror: CheckPolicy;
  temperror: CheckPolicy<'tempfail' | 'score' | 'ignore'>;
}

// ---------------------------------------------------------------------------------------------
// The settings these decisions read, as plain types. gateway/config/checks.ts validates the config
// file into this shape (tsc holds its schema's output to these types where the SMTP front passes
// it in), so the policy needs nothing from the config loader.

/** Names of the checks a trusted network or sender may skip. */
export const SKIPPABLE = ['helo', 'rdns', 'dnsbl', 'spf', 'limits', 'pipelining', 'bareLineEndings'] as const;
export type SkippableCheck = (typeof SKIPPABLE)[number];

/** What a DNS error does: "auto" (see dnsErrorAction) or an explicit policy, never a reject. */
export type DnsErrorSetting = 'auto' | CheckPolicy<'tempfail' | 'score' | 'ignore'>;
type HeloSettings = Omit<HeloPolicy, 'dnsError'> & { enabled: boolean; ourNames: string[]; dnsError: DnsErrorSetting };
type RdnsSettings = Omit<RdnsPolicy, 'dnsError'> & { enabled: boolean; dnsError: DnsErrorSetting };

/** `checks.trusted`: who skips which checks. */
export interface TrustSettings {
  networks: string[];
  senders: string[];
  skip: SkippableCheck[];
}

/** The global `checks` section, as far as the front line's decisions read it. */
export interface ChecksSettings {
  helo: HeloSettings;
  rdns: RdnsSettings;
  spf: SpfPolicy;
  dnsbl: DnsblPolicy;
  score: { rejectAt: number | null };
  exemptRecipients: string[];
  trusted: TrustSettings;
}

/** `domains.<d>.checks`: any key given replaces the global value for mail to that domain. */
export interface DomainChecksSettings {
  helo?: Partial<HeloSettings>;
  rdns?: Partial<RdnsSettings>;
  spf?: Partial<SpfPolicy>;
  dnsbl?: Partial<DnsblPolicy> & { enabled?: boolean };
  score?: { rejectAt?: number | null };
  exemptRecipients?: string[];
}

/** `domains.<d>.recipients`, as far as decideRecipientExists reads it. */
export interface RecipientSettings {
  mode: 'any' | 'list' | 'verify';
  list: string[];
  delimiter: string;
}

export interface FrontlinePolicy {
  helo: HeloPolicy & { enabled: boolean; ourNames: string[] };
  rdns: RdnsPolicy & { enabled: boolean };
  spf: SpfPolicy;
  dnsbl: DnsblPolicy & { enabled: boolean };
  rejectAt: number | null;
  exemptRecipients: string[];
}

/**
 * "auto" for a DNS error: tempfail when any check it protects would reject (we must not let
 * through what we would have refused), otherwise ignore (the worst it could cost is a score).
 */
function dnsErrorAction(p: DnsErrorSetting, guarded: CheckPolicy[]): CheckPolicy<'tempfail' | 'score' | 'ignore'> {
  if (p !== 'auto') return p;
  return guarded.some((g) => g.action === 'reject' || g.action === 'tempfail') ? { action: 'tempfail' } : { action: 'ignore' };
}

/** The global checks with a domain's overrides on top (any key given for the domain wins). */
export function policyFor(global: ChecksSettings, domain?: DomainChecksSettings): FrontlinePolicy {
  const o = domain ?? {};
  const helo = { ...global.helo, ...defined(o.helo ?? {}) };
  const rdns = { ...global.rdns, ...defined(o.rdns ?? {}) };
  const spf = { ...global.spf, ...defined(o.spf ?? {}) };
  return {
    helo: { ...helo, dnsError: dnsErrorAction(helo.dnsError, [helo.unresolvable]) },
    rdns: { ...rdns, dnsError: dnsErrorAction(rdns.dnsError, [rdns.missingPtr, rdns.notConfirmed]) },
    spf,
    dnsbl: {
      enabled: o.dnsbl?.enabled ?? true,
      onError: o.dnsbl?.onError ?? global.dnsbl.onError,
      defaultAction: o.dnsbl?.defaultAction ?? global.dnsbl.defaultAction,
    },
    rejectAt: o.score?.rejectAt !== undefined ? o.score.rejectAt : global.score.rejectAt,
    exemptRecipients: o.exemptRecipients ?? global.exemptRecipients,
  };
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

// ---------------------------------------------------------------------------------------------
// Trust and exemptions

export interface Trust {
  skip: ReadonlySet<SkippableCheck>;
  /** What earned it, for the log: "network 10.0.0.0/8", "sender *@partner.test". */
  by: string;
}

/** Trust by client network (known at connect). */
export function trustByNetwork(clientIp: string, trusted: TrustSettings): Trust | null {
  return networkTrust(trusted)(clientIp);
}

/** trustByNetwork with the networks parsed once (per config): it runs on every connection. */
export function networkTrust(trusted: TrustSettings): (clientIp: string) => Trust | null {
  const match = networkMatcher(trusted.networks);
  return (clientIp) => {
    const hit = match(clientIp);
    return hit === undefined ? null : { skip: new Set(trusted.skip), by: `network ${hit}` };
  };
}

/**
 * Trust by envelope sender. MAIL FROM is whatever the client typed, so a sender entry counts only
 * when SPF says the client may send for that domain (RFC 7208 "pass").
 */
export function trustBySender(sender: string, spf: SpfResultName | undefined, trusted: TrustSettings): Trust | null {
  if (spf !== 'pass' || sender === '') return null;
  const hit = trusted.senders.find((e) => matchesEntry(e, { sender, clientIp: '' }));
  return hit === undefined ? null : { skip: new Set(trusted.skip), by: `sender ${hit} (SPF pass)` };
}

/** Whether the connection checks leave this recipient alone (postmaster@, abuse@ …). */
export function isExemptRecipient(recipient: string, exempt: readonly string[]): boolean {
  const r = recipient.toLowerCase();
  const local = r.slice(0, Math.max(r.lastIndexOf('@'), 0)) || r;
  return exempt.some((e) => (e.includes('@') ? e.toLowerCase() === r : e.toLowerCase() === local));
}

// ---------------------------------------------------------------------------------------------
// SPF

export interface SpfFacts {
  result: SpfResultName;
  /** The domain checked (MAIL FROM domain, or the HELO name for the null sender). */
  domain: string;
  clientIp: string;
  /** The domain's "exp=" explanation (only for fail): third-party text, cleaned by the reply builder. */
  explanation?: string;
  /** mailauth's comment, for the log. */
  comment?: string;
}

export function decideSpf(facts: SpfFacts, policy: SpfPolicy): Decision {
  const ip = canonicalIp(facts.clientIp) ?? facts.clientIp;
  const why = `SPF ${facts.result} for ${facts.domain} from ${ip}${facts.comment ? ` (${facts.comment})` : ''}`;
  switch (facts.result) {
    case 'pass':
      return ACCEPT;
    case 'temperror': {
      const p = policy.temperror;
      if (p.action === 'tempfail') return { action: 'tempfail', reply: replies.spfError(facts.domain, 'temperror'), reason: why, check: 'spf.temperror' };
      return applyCheck(p, 'spf.temperror', replies.spfError(facts.domain, 'temperror'), why);
    }
    case 'permerror':
      return applyCheck(policy.permerror, 'spf.permerror', replies.spfError(facts.domain, 'permerror'), why);
    default: {
      const explanation = facts.result === 'fail' ? facts.explanation : undefined;
      return applyCheck(policy[facts.result], `spf.${facts.result}`, replies.spfFail(facts.result, facts.domain, ip, explanation), why);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Everything at RCPT time

export interface FrontlineFacts {
  clientIp: string;
  /** Undefined when the check was not gathered (disabled everywhere, or skipped by trust). */
  helo?: HeloFacts;
  rdns?: RdnsFacts;
  /** One entry per subject looked up (client address, HELO name, sender domain). */
  dnsbl: DnsblFacts[];
  spf?: SpfFacts;
}

export interface CheckOutcome {
  /** helo, rdns, dnsbl, spf, score. */
  name: string;
  decision: Decision;
}

export interface FrontlineDecision {
  decision: Decision;
  /** Each check's own decision, for logging and counting. */
  checks: CheckOutcome[];
}

/**
 * The connection checks for one recipient: each enabled, not skipped, gathered check decides; a
 * reject wins, then a tempfail, then the summed scores against rejectAt. An exempt recipient gets
 * the checks' notes but never their refusal.
 */
export function decideFrontline(facts: FrontlineFacts, policy: FrontlinePolicy, o: { skip: ReadonlySet<SkippableCheck>; exempt: boolean }): FrontlineDecision {
  const checks: CheckOutcome[] = [];
  const run = (name: SkippableCheck, enabled: boolean, decide: () => Decision | undefined) => {
    if (!enabled || o.skip.has(name)) return;
    const decision = decide();
    if (decision) checks.push({ name, decision });
  };
  run('helo', policy.helo.enabled, () => (facts.helo ? decideHelo(facts.helo, policy.helo) : undefined));
  run('rdns', policy.rdns.enabled, () => (facts.rdns ? decideRdns(facts.rdns, policy.rdns) : undefined));
  run('dnsbl', policy.dnsbl.enabled, () => (facts.dnsbl.length > 0 ? combineDecisions(facts.dnsbl.map((f) => decideDnsbl(f, policy.dnsbl))) : undefined));
  run('spf', policy.spf.enabled, () => (facts.spf ? decideSpf(facts.spf, policy.spf) : undefined));
  let decision = combineDecisions(checks.map((c) => c.decision));
  if (decision.action === 'score' && policy.rejectAt !== null && decision.score >= policy.rejectAt) {
    const ip = canonicalIp(facts.clientIp) ?? facts.clientIp;
    const over: Decision = {
      action: 'reject',
      reply: replies.scoreTooHigh(`client [${ip}]`, decision.reason),
      reason: `score ${decision.score} >= ${policy.rejectAt}: ${decision.reason}`,
      check: 'score',
      ...(decision.notes ? { notes: decision.notes } : {}),
    };
    checks.push({ name: 'score', decision: over });
    decision = over;
  }
  if (o.exempt && (decision.action === 'reject' || decision.action === 'tempfail')) {
    decision = { action: 'accept', notes: [...(decision.notes ?? []), `exempt recipient: ${decision.check} not applied (${decision.reason})`] };
  }
  return { decision, checks };
}

// ---------------------------------------------------------------------------------------------
// Recipient existence

/** What a downstream RCPT probe found out; `reply` is the downstream's own words. */
export type ProbeResult = { status: 'exists' } | { status: 'unknown'; reply: string } | { status: 'failed'; reason: string };

/** The address a recipient list is checked by: lower case, "alice+tag" → "alice". */
export function baseAddress(recipient: string, delimiter: string): string {
  const r = recipient.toLowerCase();
  const at = r.lastIndexOf('@');
  const local = r.slice(0, at);
  const cut = delimiter ? local.indexOf(delimiter) : -1;
  return `${cut > 0 ? local.slice(0, cut) : local}${r.slice(at)}`;
}

export function decideRecipientExists(recipient: string, cfg: RecipientSettings, probe?: ProbeResult): Decision {
  if (cfg.mode === 'any') return ACCEPT;
  if (cfg.mode === 'list') {
    const base = baseAddress(recipient, cfg.delimiter);
    const local = base.slice(0, base.lastIndexOf('@'));
    const known = cfg.list.some((e) => (e.includes('@') ? e.toLowerCase() === base : e.toLowerCase() === local));
    return known
      ? ACCEPT
      : { action: 'reject', reply: replies.userUnknown(recipient), reason: `${recipient} not in the recipient list`, check: 'recipient.list' };
  }
  if (!probe || probe.status === 'failed') {
    const why = probe ? probe.reason : 'not verified';
    return {
      action: 'tempfail',
      reply: replies.recipientUnverified(recipient, why),
      reason: `probe for ${recipient} failed: ${why}`,
      check: 'recipient.verify',
    };
  }
  if (probe.status === 'exists') return ACCEPT;
  return {
    action: 'reject',
    reply: replies.userUnknown(recipient, `the domain's server said: ${probe.reply}`),
    reason: `downstream refused ${recipient}: ${probe.reply}`,
    check: 'recipient.verify',
  };
}

// ---------------------------------------------------------------------------------------------
// Limits

export interface RateLimit {
  max: number;
  windowSec: number;
}

/** `count` includes the event being decided on. */
export function decideRate(kind: 'connection' | 'message' | 'recipient', clientIp: string, count: number, limit: RateLimit | null): Decision {
  if (!limit || count <= limit.max) return ACCEPT;
  const ip = canonicalIp(clientIp) ?? clientIp;
  const reply =
    kind === 'connection'
      ? replies.connectionRate(ip, limit.max, limit.windowSec)
      : kind === 'message'
        ? replies.messageRate(ip, limit.max, limit.windowSec)
        : replies.recipientRate(ip, limit.max, limit.windowSec);
  return { action: 'tempfail', reply, reason: `${count} ${kind}s from ${ip} in ${limit.windowSec} s (max ${limit.max})`, check: `limits.${kind}Rate` };
}

/** `current` includes the connection being decided on; max 0 means no limit. */
export function decideConnections(clientIp: string, current: number, max: number): Decision {
  if (max === 0 || current <= max) return ACCEPT;
  const ip = canonicalIp(clientIp) ?? clientIp;
  return {
    action: 'tempfail',
    reply: replies.tooManyConnections(ip, max),
    reason: `${current} connections from ${ip} (max ${max})`,
    check: 'limits.connections',
  };
}

/**
 * The key a client is counted under: its IPv4 address, or the /64 of an IPv6 address (one
 * subscriber usually gets a whole /64, so counting single IPv6 addresses counts nothing).
 */
export function clientKey(clientIp: string): string {
  const ip = canonicalIp(clientIp) ?? clientIp;
  if (!ip.includes(':')) return ip;
  const full = expandV6(ip);
  return `${full.slice(0, 4).join(':')}::/64`;
}

function expandV6(ip: string): string[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  return tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
}

// ---------------------------------------------------------------------------------------------
// Submission: who may use which envelope sender

export interface SubmissionUser {
  username: string;
  role: 'superadmin' | 'domainadmin' | 'user';
  domains: string[];
  addresses: string[];
}

export interface SenderOwnership {
  /** address: the account's own addresses; domain: any address of the account's domains. */
  ownership: 'address' | 'domain';
  /** Whether a superadmin may send as anyone. */
  superadminAnySender: boolean;
}

/**
 * Like Postfix reject_sender_login_mismatch: a user sends as its own addresses, a domain admin (or,
 * by option, any account) as its domains. A superadmin is exempt only when configured: a stolen
 * superadmin login must not become an open relay for any sender address.
 */
export function decideSubmissionSender(
  sender: string,
  user: SubmissionUser,
  o: SenderOwnership = { ownership: 'address', superadminAnySender: false },
): Decision {
  if (sender === '' || (user.role === 'superadmin' && o.superadminAnySender)) return ACCEPT;
  const s = sender.toLowerCase();
  const domain = s.slice(s.lastIndexOf('@') + 1);
  const ownDomain = user.domains.includes(domain) && (user.role === 'domainadmin' || o.ownership === 'domain');
  const owned = user.addresses.includes(s) || user.username.toLowerCase() === s || ownDomain;
  return owned
    ? ACCEPT
    : {
        action: 'reject',
        reply: replies.senderNotOwned(sender, user.username),
        reason: `${user.username} may not send as ${sender}`,
        check: 'submission.sender',
      };
}
