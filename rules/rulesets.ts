// First-match rulesets (MailScanner's rulesets, in one list): each rule names who it is for and
// sets part of the content policy (rules/policy.ts). Pure: envelope facts in, policy out.
//
// Matching: a rule's `match` fields must all match (AND); each field is a list of patterns, any
// of which may match (OR). Patterns are those of the allow/block lists (rules/lists.ts):
//   user@example.com   exactly that address          *@example.com   any address at exactly that domain
//   example.com        that domain or a subdomain    192.0.2.7, 192.0.2.0/24, 2001:db8::/32   client address
// Fields: `from` (envelope sender), `to` (the recipient being decided for), `fromOrTo` (either),
// `client` (the SMTP client's address).
//
// "First match" is per setting, as with MailScanner's one-ruleset-per-setting files: rules are read
// in order, and each setting (a threshold, one class's action, a tag, a check) takes its value from
// the first matching rule that sets it; settings no rule sets come from the domain's policy, then
// the global policy, then the defaults. A recipient domain's own rules come before the global ones.
import { matchesEntry } from './lists.ts';
import { layerPolicy, type Policy, type PolicyPatch } from './policy.ts';

export interface RuleMatch {
  from?: string[];
  to?: string[];
  fromOrTo?: string[];
  client?: string[];
}

export interface PolicyRule {
  /** Shown in the scan report when the rule applied. */
  name?: string;
  match: RuleMatch;
  set: PolicyPatch;
}

export interface RecipientFacts {
  /** Envelope sender, "" for the null sender (matches no `from` pattern). */
  sender: string;
  recipient: string;
  clientIp: string;
}

const addressMatches = (patterns: string[], address: string): boolean =>
  address !== '' && patterns.some((p) => matchesEntry(p, { sender: address, clientIp: '' }));

export function ruleMatches(m: RuleMatch, f: RecipientFacts): boolean {
  if (m.from && !addressMatches(m.from, f.sender)) return false;
  if (m.to && !addressMatches(m.to, f.recipient)) return false;
  if (m.fromOrTo && !addressMatches(m.fromOrTo, f.sender) && !addressMatches(m.fromOrTo, f.recipient)) return false;
  if (m.client && !m.client.some((p) => matchesEntry(p, { sender: '', clientIp: f.clientIp }))) return false;
  return Object.values(m).some((v) => v !== undefined);
}

export interface PolicySources {
  /** Defaults with the global `policy` applied. */
  base: Policy;
  /** The recipient domain's `policy`, if any. */
  domainPolicy?: PolicyPatch;
  /** The recipient domain's rules, then the global rules, in order. */
  rules: readonly PolicyRule[];
}

export interface ResolvedPolicy {
  policy: Policy;
  /** Names (or "#index") of the rules that matched, in order. */
  rules: string[];
}

/**
 * Layered policies by the rules that matched, for one set of sources: the layering is pure, so a
 * gateway keeps one per recipient domain and config generation and every message shares it.
 */
export type LayerMemo = Map<string, Policy>;

/** Distinct rule combinations a memo keeps; past it a layering is made afresh (same result). */
export const LAYER_MEMO_MAX = 256;

export function resolvePolicy(src: PolicySources, f: RecipientFacts, memo?: LayerMemo): ResolvedPolicy {
  const matched = src.rules.map((r, i) => ({ r, i })).filter(({ r }) => ruleMatches(r.match, f));
  const rules = matched.map(({ r, i }) => r.name ?? `#${i + 1}`);
  const key = matched.map(({ i }) => i).join(',');
  const known = memo?.get(key);
  if (known) return { policy: known, rules };
  // Applied last-to-first so that, per setting, the first matching rule's value is the one left.
  const patches = [src.domainPolicy, ...matched.map(({ r }) => r.set).reverse()];
  const policy = layerPolicy(src.base, patches);
  if (memo && memo.size < LAYER_MEMO_MAX) memo.set(key, policy);
  return { policy, rules };
}
