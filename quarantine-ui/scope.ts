// Tenant isolation: what a console user may see and act on. A message is visible when at least
// one of its recipients is in the user's scope (or, submitted by an authenticated user, its sender); acting on it (release, delete, learn, block)
// needs every recipient in scope, because a release or delete acts on the whole message and one
// tenant must never decide for another's mailbox.
import type { Account } from '../gateway/store/accounts.ts';
import type { MessageRecord, RecipientScope } from '../gateway/store/metadata.ts';
import { domainOf } from '../rules/envelope.ts';

export function scopeOf(a: Account): RecipientScope {
  if (a.role === 'superadmin') return { all: true };
  if (a.role === 'domainadmin') return { domains: a.domains, addresses: [] };
  return { domains: [], addresses: a.addresses };
}

export function recipientInScope(address: string, scope: RecipientScope): boolean {
  if (scope.all) return true;
  const a = address.toLowerCase();
  return scope.domains.includes(domainOf(a)) || scope.addresses.includes(a);
}

/**
 * Issue 15: outbound holds belong to the sender's domain. Mail an authenticated user submitted is
 * also visible from its sender's side (the listener only lets an account send as addresses it
 * owns); the recipients shown stay those in scope, and acting still needs them all (canActOn).
 */
export function submittedFromScope(m: Pick<MessageRecord, 'mailFrom' | 'submittedBy'>, scope: RecipientScope): boolean {
  return m.submittedBy !== null && m.mailFrom !== '' && recipientInScope(m.mailFrom, scope);
}

export function canSee(m: Pick<MessageRecord, 'rcptTo' | 'mailFrom' | 'submittedBy'>, scope: RecipientScope): boolean {
  return m.rcptTo.some((r) => recipientInScope(r, scope)) || submittedFromScope(m, scope);
}

export function canActOn(m: Pick<MessageRecord, 'rcptTo'>, scope: RecipientScope): boolean {
  return m.rcptTo.length > 0 && m.rcptTo.every((r) => recipientInScope(r, scope));
}

/** The list owners (domains or addresses) a user may manage; superadmins also "global" ("*"). */
export function manageableOwners(a: Account, hostedDomains: string[]): string[] {
  if (a.role === 'superadmin') return ['*', ...hostedDomains];
  if (a.role === 'domainadmin') return [...a.domains];
  return [...a.addresses];
}

/** Whether the user may manage entries of this owner ("*" global, a domain, or an address). */
export function mayManageOwner(a: Account, owner: string): boolean {
  if (a.role === 'superadmin') return true;
  const o = owner.toLowerCase();
  if (o === '*' || o === '') return false;
  if (a.role === 'domainadmin') return a.domains.includes(o.includes('@') ? domainOf(o) : o);
  return o.includes('@') && a.addresses.includes(o);
}

const ADDRESS = /[^\s<>(),;:"']+@[^\s<>(),;:"']+/g;

/**
 * A text about a message (an event, a delivery reply, an audit detail) as a user may see it: a
 * "<recipient>: …" part about a recipient outside the scope is left out (another tenant's mail
 * server replies are theirs), and such an address elsewhere becomes "another recipient".
 */
export function redactForScope(text: string, m: Pick<MessageRecord, 'rcptTo'>, scope: RecipientScope): string {
  if (scope.all) return text;
  const hidden = new Set(m.rcptTo.filter((r) => !recipientInScope(r, scope)).map((r) => r.toLowerCase()));
  if (hidden.size === 0) return text;
  const isHidden = (a: string) => hidden.has(a.toLowerCase().replace(/[.>]+$/, ''));
  return text
    .split('; ')
    .filter((part) => {
      const lead = /^\s*<?([^\s<>:]+@[^\s<>:]+?)>?:/.exec(part);
      return !(lead && isHidden(lead[1]!));
    })
    .map((part) => part.replace(ADDRESS, (a) => (isHidden(a) ? 'another recipient' : a)))
    .join('; ');
}
