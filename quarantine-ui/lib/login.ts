// Who a username and password belong to: a local account's own password first, then the LDAP
// directory (when configured); and the account of a person who logged in through a directory or
// OIDC provider, created or brought up to date from their groups at every login (JIT).
//
// Order, and why:
//   - A local account of that name is checked against its own password only (except an end-user
//     account a digest link made, which has none: the directory's person of that name takes it). The directory is
//     not asked: a directory person cannot take over a local account by sharing its name, and a
//     local superadmin logs in while the directory is down (break-glass).
//   - An LDAP account (or an unknown name) is checked against the directory. A directory that
//     does not answer is "unavailable", not "wrong password": it is not counted as a failed login.
//   - An OIDC account has no password here.
// Group → role is rules/role-mapping.ts; a person whose groups map to nothing is refused.
import type { ConsoleAuthConfig } from '../../gateway/config/console-auth.ts';
import { dummyHash, verifyPassword } from '../../gateway/passwords.ts';
import { LINK_ONLY_PASSWORD, USERNAME, type Account, type AccountStore, type ExternalIdentity } from '../../gateway/store/accounts.ts';
import { grantFromGroups } from '../../rules/role-mapping.ts';
import type { Directory } from './ldap.ts';

export type LoginResult =
  | { ok: true; account: Account; detail: string }
  /** failure: counts towards the login throttle. */
  | { ok: false; message: string; detail: string; failure: boolean };

export const WRONG_PASSWORD = 'Wrong username or password.';
export const DIRECTORY_UNAVAILABLE =
  'The directory that checks your password is unavailable. Try again in a few minutes; if it persists, tell your administrator.';

/** What the login page says when a person's groups give no access (also for OIDC). */
export function noAccessMessage(reason: string): string {
  return `You are known to the directory, but ${reason}. Ask your administrator to add you to a group that has access.`;
}

export async function authenticate(
  o: { accounts: AccountStore; directory?: Directory; auth: ConsoleAuthConfig },
  username: string,
  password: string,
): Promise<LoginResult> {
  const account = await o.accounts.byName(username);
  const wrong = (detail: string): LoginResult => ({ ok: false, message: WRONG_PASSWORD, detail, failure: true });
  if (!account || account.authSource === 'ldap' || (o.directory && (await linkOnly(o.accounts, account)))) {
    if (o.directory) return fromDirectory(o, o.directory, username, password);
    if (account) return wrong('directory account, but no directory is configured');
  }
  // An unknown user costs the same scrypt time as a known one (the answer must not tell which).
  const hash = (account && account.authSource === 'local' && (await o.accounts.passwordHash(account.id))) || (await dummyHash());
  const ok = await verifyPassword(password, hash);
  if (!account) return wrong('unknown user');
  if (account.authSource !== 'local') return wrong(`${account.authSource} account: no password login`);
  if (!ok) return wrong('wrong password');
  if (account.disabled) return wrong('account disabled');
  return { ok: true, account, detail: 'local password' };
}

async function fromDirectory(
  o: { accounts: AccountStore; auth: ConsoleAuthConfig },
  directory: Directory,
  username: string,
  password: string,
): Promise<LoginResult> {
  // The scrypt time of a local login is spent here too, so that timing does not tell local names apart.
  const [answer] = await Promise.all([directory.authenticate(username, password), dummyHash().then((h) => verifyPassword(password, h))]);
  if (answer.kind === 'unavailable') return { ok: false, message: DIRECTORY_UNAVAILABLE, detail: `ldap unavailable: ${answer.detail}`, failure: false };
  if (answer.kind === 'invalid') return { ok: false, message: WRONG_PASSWORD, detail: `ldap: ${answer.detail}`, failure: true };
  return provision(o, { source: 'ldap', id: answer.dn.toLowerCase() }, username, answer.groups, answer.mail);
}

/**
 * The account of an externally authenticated person, created or updated from their groups.
 * Refused (not a throttled failure: the password was right) when no group maps to a role, when
 * the name is taken by an account not linked to this identity, or when the account is disabled.
 */
export async function provision(
  o: { accounts: AccountStore; auth: ConsoleAuthConfig },
  identity: ExternalIdentity,
  username: string,
  groups: string[],
  mail: string[],
): Promise<LoginResult> {
  const refuse = (message: string, detail: string): LoginResult => ({ ok: false, message, detail: `${identity.source}: ${detail}`, failure: false });
  const grant = grantFromGroups(groups, mail, o.auth.roleMapping);
  const groupList = groups.slice(0, 20).join('; ').slice(0, 500);
  if (!grant.ok) return refuse(noAccessMessage(grant.reason), `${grant.reason} (groups: ${groupList || 'none'})`);
  const wanted = { role: grant.role, domains: grant.domains, addresses: grant.addresses };
  const how = `${identity.source} as ${grant.role}${grant.domains.length ? ` of ${grant.domains.join(', ')}` : ''} (groups: ${grant.matched.join('; ')})`;
  const linked = await o.accounts.byExternal(identity);
  if (linked) {
    if (linked.disabled) return refuse('This account has been disabled. Ask your administrator.', 'account disabled');
    const same = linked.role === wanted.role && sameList(linked.domains, wanted.domains) && sameList(linked.addresses, wanted.addresses);
    if (same) return { ok: true, account: linked, detail: how };
    // Group changes in the directory take effect at the next login (and end the old sessions).
    await o.accounts.update(linked.id, wanted);
    return { ok: true, account: (await o.accounts.get(linked.id))!, detail: `${how}; role updated from ${linked.role}` };
  }
  const name = username.trim().toLowerCase();
  if (!USERNAME.test(name))
    return refuse(`Your login name "${name.slice(0, 64)}" cannot be used as a console username. Ask your administrator.`, 'unusable username');
  // A digest link made an end-user account of this name (login name = mail address): it becomes
  // this person's when the provider gives them that address too (a login name alone may be
  // chosen by its holder), with the role and addresses their groups give (its old sessions end).
  const ownsName = mail.some((m) => m.trim().toLowerCase() === name);
  if (ownsName && (await o.accounts.adoptLinkOnly(name, identity))) {
    const adopted = (await o.accounts.byExternal(identity))!;
    await o.accounts.update(adopted.id, wanted);
    return { ok: true, account: (await o.accounts.get(adopted.id))!, detail: `${how}; digest-link account taken over` };
  }
  if (await o.accounts.byName(name)) {
    return refuse(
      `An account named "${name}" exists already and is not linked to this login. Ask your administrator.`,
      'username taken by an unlinked account',
    );
  }
  try {
    return { ok: true, account: await o.accounts.createExternal({ username: name, ...wanted }, identity), detail: `${how}; account created` };
  } catch {
    // Two first logins at once: the other one created it.
    const again = await o.accounts.byExternal(identity);
    return again
      ? { ok: true, account: again, detail: how }
      : refuse(`An account named "${name}" exists already and is not linked to this login. Ask your administrator.`, 'username taken');
  }
}

/** A local end-user account that only digest links log into: the directory may check its name. */
async function linkOnly(accounts: AccountStore, account: Account): Promise<boolean> {
  return account.authSource === 'local' && account.role === 'user' && (await accounts.passwordHash(account.id)) === LINK_ONLY_PASSWORD;
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
