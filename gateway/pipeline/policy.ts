// Each recipient's effective content policy, from the config (global policy and rules, the
// recipient domain's policy and rules) and the allow/block lists in the metadata store.
import type { Config } from '../config/schema.ts';
import type { Envelope } from '../spool/spool.ts';
import { DEFAULT_POLICY, layerPolicy, type Policy } from '../../rules/policy.ts';
import { resolvePolicy, type LayerMemo, type PolicyRule } from '../../rules/rulesets.ts';
import { decideLists, type ScopedEntry } from '../../rules/lists.ts';
import { domainOf } from '../../rules/envelope.ts';
import { submittedPolicy } from '../../rules/submission.ts';
import type { ListMatch } from '../../scanners/types.ts';

/** What the pipeline reads from the allow/block lists (gateway/store/lists.ts ListStore). */
export interface ListSource {
  forRecipient(address: string): Promise<ScopedEntry[]>;
}

export interface RecipientPolicy {
  recipient: string;
  policy: Policy;
  rules: string[];
  list: ListMatch | null;
}

/** Defaults, then the top-level `spam` section (thresholds and tag), then the global `policy`. */
export function basePolicy(config: Config): Policy {
  const { threshold, highThreshold, subjectTag } = config.spam;
  return layerPolicy(DEFAULT_POLICY, [{ spam: { threshold, highThreshold }, tags: { spam: subjectTag, 'high-spam': subjectTag } }, config.policy]);
}

function named(rules: readonly PolicyRule[], where: string): PolicyRule[] {
  return rules.map((r, i) => ({ ...r, name: r.name ?? `${where}[${i}]` }));
}

/** A recipient domain's rules (its own, then the global ones) and the policies layered from them so far. */
interface DomainLayers {
  rules: PolicyRule[];
  memo: LayerMemo;
}

/**
 * What a config generation's policies are made of, made once: a config is never changed in
 * place (a reload is a new object), and the layering is pure. Per message it was ~15 KB of
 * objects rebuilt from the same config. Domains not hosted share one entry: they have the same
 * sources (no domain policy, the global rules).
 */
interface ConfigLayers {
  base: Policy;
  domains: Map<string, DomainLayers>;
}

const layersByConfig = new WeakMap<Config, ConfigLayers>();

function domainLayers(config: Config, domain: string): { base: Policy; domain: DomainLayers } {
  let c = layersByConfig.get(config);
  if (!c) {
    c = { base: basePolicy(config), domains: new Map() };
    layersByConfig.set(config, c);
  }
  const hosted = config.domains[domain];
  const key = hosted ? `domain ${domain}` : 'not hosted';
  let d = c.domains.get(key);
  if (!d) {
    d = { rules: [...(hosted ? named(hosted.rules, `domains["${domain}"].rules`) : []), ...named(config.rules, 'rules')], memo: new Map() };
    c.domains.set(key, d);
  }
  return { base: c.base, domain: d };
}

export async function recipientPolicies(
  config: Config,
  envelope: Pick<Envelope, 'mailFrom' | 'clientIp' | 'rcptTo' | 'submitted'>,
  lists: ListSource | undefined,
): Promise<RecipientPolicy[]> {
  const policies: RecipientPolicy[] = [];
  for (const recipient of envelope.rcptTo) {
    const domain = domainOf(recipient);
    const hosted = config.domains[domain];
    const { base, domain: layers } = domainLayers(config, domain);
    const resolved = resolvePolicy(
      { base, domainPolicy: hosted?.policy, rules: layers.rules },
      { sender: envelope.mailFrom, recipient, clientIp: envelope.clientIp },
      layers.memo,
    );
    // Issue 15: an authenticated sender is told in session about what it can fix.
    const policy = envelope.submitted?.user !== undefined ? submittedPolicy(resolved.policy, config.submission.refuse) : resolved.policy;
    const decision =
      policy.checks.lists && lists ? decideLists(await lists.forRecipient(recipient), { sender: envelope.mailFrom, clientIp: envelope.clientIp }) : null;
    policies.push({ recipient, policy, rules: resolved.rules, list: decision && { kind: decision.kind, scope: decision.scope, entry: decision.entry } });
  }
  return policies;
}
