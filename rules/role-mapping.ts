// What an external login (LDAP/AD, OpenID Connect) may do in the console, from the person's groups
// and the configured group → role rules (console.auth.roleMapping). Pure: facts in, grant out.
//
// The highest role wins (superadmin > domainadmin > user), so adding someone to an admin group
// is enough to promote them; a domain admin gets the union of the domains of every domainadmin
// rule they match (belonging to the a.test and b.test admin groups means both). A person no rule
// matches is refused: being in the directory is not by itself a reason to see anyone's mail.

export type MappedRole = 'superadmin' | 'domainadmin' | 'user';

export interface RoleRule {
  group: string;
  role: MappedRole;
  domains: string[];
}

export type RoleGrant = { ok: true; role: MappedRole; domains: string[]; addresses: string[]; matched: string[] } | { ok: false; reason: string };

const RANK: Record<MappedRole, number> = { user: 1, domainadmin: 2, superadmin: 3 };

/**
 * A group name as compared: case-insensitive (LDAP DNs and AD group names are), and without the
 * optional spaces around "," "=" and "+" of a DN ("CN=Mail Admins, OU=Groups" is the same group
 * as "cn=mail admins,ou=groups").
 */
export function normalizeGroup(group: string): string {
  return group
    .trim()
    .toLowerCase()
    .replace(/\s*([,=+])\s*/g, '$1');
}

const ADDRESS = /^[^\s@<>(),;:"]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/;

export function grantFromGroups(groups: readonly string[], mailAddresses: readonly string[], rules: readonly RoleRule[]): RoleGrant {
  const mine = new Set(groups.map(normalizeGroup));
  const matched = rules.filter((r) => mine.has(normalizeGroup(r.group)));
  if (matched.length === 0) {
    return { ok: false, reason: 'none of your groups gives access to this console' };
  }
  const role = matched.reduce<MappedRole>((best, r) => (RANK[r.role] > RANK[best] ? r.role : best), 'user');
  const domains =
    role === 'domainadmin' ? [...new Set(matched.filter((r) => r.role === 'domainadmin').flatMap((r) => r.domains.map((d) => d.toLowerCase())))].sort() : [];
  const addresses = [...new Set(mailAddresses.map((a) => a.trim().toLowerCase()).filter((a) => ADDRESS.test(a)))].sort();
  // A user sees the mail of their own addresses only: with none, there is nothing to show.
  if (role === 'user' && addresses.length === 0) {
    return { ok: false, reason: 'your directory entry has no mail address' };
  }
  return { ok: true, role, domains, addresses: role === 'user' ? addresses : [], matched: matched.map((r) => r.group) };
}
