// What a domain admin may change in their own domain's policy: the superadmin gives each domain a
// list of policy keys (dotted prefixes of the `policy` section: "spam", "spam.threshold",
// "actions.spam", "checks.spam"); a change is allowed when every value that differs lies under
// one of them. A list, not ranges: it is easy to read on the domain's page, easy to audit, and it
// never lets a domain admin switch off what the provider did not name (virus checks stay on).
import { isDeepStrictEqual } from 'node:util';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The dotted paths of the values that differ between `a` and `b` (objects compared key by key, lists and values whole). */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  if (isDeepStrictEqual(a, b)) return [];
  if ((isObject(a) || a === undefined) && (isObject(b) || b === undefined) && (isObject(a) || isObject(b))) {
    const keys = [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])].sort();
    return keys.flatMap((k) =>
      changedPaths((a as Record<string, unknown> | undefined)?.[k], (b as Record<string, unknown> | undefined)?.[k], prefix ? `${prefix}.${k}` : k),
    );
  }
  return [prefix || '(all)'];
}

export type BoundsDecision = { allowed: true; changed: string[] } | { allowed: false; key: string; reason: string };

/** May a domain admin turn policy `before` into `after`, given the keys the superadmin allowed? */
export function decidePolicyChange(before: unknown, after: unknown, adminMay: readonly string[]): BoundsDecision {
  const changed = changedPaths(before ?? {}, after ?? {});
  const covered = (path: string) => adminMay.some((k) => path === k || path.startsWith(`${k}.`));
  const refused = changed.find((p) => !covered(p));
  if (refused === undefined) return { allowed: true, changed };
  return {
    allowed: false,
    key: `policy.${refused}`,
    reason:
      adminMay.length === 0
        ? `policy.${refused}: the superadmin has not let domain admins change this domain's policy`
        : `policy.${refused}: domain admins may change only ${adminMay.map((k) => `policy.${k}`).join(', ')}`,
  };
}

/** An entry of the allowed-keys list: dotted names of letters, digits and dashes. */
export function parseAdminMay(text: string): { ok: true; keys: string[] } | { ok: false; error: string } {
  const keys = [
    ...new Set(
      text
        .split(/[\s,]+/)
        .map((k) => k.trim().replace(/^policy\./, ''))
        .filter(Boolean),
    ),
  ];
  const bad = keys.find((k) => !/^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*$/.test(k));
  return bad === undefined ? { ok: true, keys } : { ok: false, error: `"${bad}" is not a policy key (e.g. spam.threshold, actions.spam)` };
}
