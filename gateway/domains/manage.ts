// Changing hosted domains kept in the database: one place for the console pages, the API and
// `mailmoat domain`, so that each path validates the same way (the file's schema, through
// gateway/config/hosted-domains.ts) and a domain admin is held to the same bounds
// (rules/policy-bounds.ts). Callers audit the outcome; nothing here knows who is asking beyond
// the role it is given.
import { checkHostedDomain } from '../config/hosted-domains.ts';
import { policyPatchSchema } from '../config/policy.ts';
import type { HostedDomain } from '../config/schema.ts';
import type { DomainStore, StoredDomain } from '../store/domains.ts';
import { decidePolicyChange } from '../../rules/policy-bounds.ts';

export type ChangeResult = { ok: true; name: string; detail: string } | { ok: false; errors: string[]; status: 400 | 403 | 404 };

const POLICY_KEYS = new Set(Object.keys(policyPatchSchema.shape));

/** The keys a superadmin may hand to domain admins: dotted names under the policy section. */
export function checkAdminMay(keys: readonly string[]): string[] {
  return keys
    .filter((k) => !POLICY_KEYS.has(k.split('.')[0]!))
    .map((k) => `adminMay: "${k}" is not a key of the policy section (${[...POLICY_KEYS].join(', ')})`);
}

/** Where a domain's settings come from now: the database row, else the file (as running). */
export interface DomainView {
  name: string;
  source: 'database' | 'file';
  settings: Record<string, unknown>;
  adminMay: string[];
  /** The file also has this domain (a database copy replaces it while it exists). */
  inFile: boolean;
}

export async function viewDomains(store: DomainStore, fileDomains: Record<string, HostedDomain>): Promise<DomainView[]> {
  const stored = new Map((await store.list()).map((d) => [d.name, d] as const));
  const names = [...new Set([...stored.keys(), ...Object.keys(fileDomains)])].sort();
  return names.map((name) => view(name, stored.get(name), fileDomains));
}

export async function viewDomain(store: DomainStore, fileDomains: Record<string, HostedDomain>, name: string): Promise<DomainView | undefined> {
  const n = name.toLowerCase();
  const stored = await store.get(n);
  return stored || fileDomains[n] ? view(n, stored, fileDomains) : undefined;
}

function view(name: string, stored: StoredDomain | undefined, fileDomains: Record<string, HostedDomain>): DomainView {
  const inFile = Object.hasOwn(fileDomains, name);
  if (stored) return { name, source: 'database', settings: stored.settings, adminMay: stored.adminMay, inFile };
  return { name, source: 'file', settings: JSON.parse(JSON.stringify(fileDomains[name])) as Record<string, unknown>, adminMay: [], inFile };
}

/** Adds or replaces a domain (superadmin): settings as in the file's domains.<name>. */
export async function saveDomain(store: DomainStore, name: string, settings: unknown, adminMay: readonly string[], by: string): Promise<ChangeResult> {
  const check = checkHostedDomain(name, settings);
  const errors = [...(check.ok ? [] : check.errors), ...checkAdminMay(adminMay)];
  if (!check.ok || errors.length > 0) return { ok: false, errors, status: 400 };
  await store.put({ name: check.name, settings: settings as Record<string, unknown>, adminMay: [...adminMay], by });
  return { ok: true, name: check.name, detail: `adminMay: ${adminMay.join(', ') || '(none)'}` };
}

/**
 * Replaces a domain's `policy` section. A domain admin may change only what the domain's
 * adminMay names (compared after validation, so "quarantine" and { do: quarantine } are equal).
 */
export async function savePolicy(
  store: DomainStore,
  current: DomainView,
  policy: unknown,
  role: 'superadmin' | 'domainadmin',
  by: string,
): Promise<ChangeResult> {
  const settings: Record<string, unknown> = { ...current.settings, policy: policy ?? {} };
  const next = checkHostedDomain(current.name, settings);
  if (!next.ok) return { ok: false, errors: next.errors, status: 400 };
  const before = checkHostedDomain(current.name, current.settings);
  let detail = 'policy replaced';
  if (role === 'domainadmin') {
    const d = decidePolicyChange(before.ok ? before.domain.policy : undefined, next.domain.policy, current.adminMay);
    if (!d.allowed) return { ok: false, errors: [d.reason], status: 403 };
    detail = `changed: ${d.changed.join(', ') || 'nothing'}`;
  }
  await store.put({ name: current.name, settings, adminMay: current.adminMay, by });
  return { ok: true, name: current.name, detail };
}

/** Removes a domain's database copy; a domain of the config file stays (as the file has it). */
export async function removeDomain(store: DomainStore, name: string, fileDomains: Record<string, HostedDomain>): Promise<ChangeResult> {
  const removed = await store.remove(name);
  if (!removed)
    return {
      ok: false,
      errors: [Object.hasOwn(fileDomains, name.toLowerCase()) ? `${name} is defined in the config file; remove it there` : `no such domain: ${name}`],
      status: 404,
    };
  const back = Object.hasOwn(fileDomains, name.toLowerCase()) ? '; the config file’s settings of this domain apply again' : '';
  return { ok: true, name: name.toLowerCase(), detail: `removed from the database${back}` };
}
