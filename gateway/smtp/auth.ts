// AUTH on the submission listeners, by backend (submission.backend): the console's local accounts
// (gateway/store/accounts.ts, scrypt hashes) or mailbox credentials through Dovecot's auth socket.
// An unknown or disabled console user costs the same hash time as a wrong password, so timing
// does not tell which usernames exist. A backend error rejects (server.ts answers 454 4.7.0):
// never a pass.
import { createHash } from 'node:crypto';
import type { AccountStore } from '../store/accounts.ts';
import type { SubmissionConfig } from '../config/submission.ts';
import { dummyHash, verifyPassword } from '../passwords.ts';
import type { SubmissionUser } from '../../rules/frontline.ts';
import { dovecotAuthenticate } from './dovecot-auth.ts';

export interface SubmissionAuth {
  /** The account if the credentials are right and it is enabled, else undefined; rejects when the backend fails. */
  authenticate(username: string, password: string, client?: { ip?: string; secured?: boolean }): Promise<SubmissionUser | undefined>;
}

export function accountAuthenticator(accounts: AccountStore): SubmissionAuth {
  return {
    async authenticate(username, password) {
      const account = await accounts.byName(username);
      const hash = (account && !account.disabled && (await accounts.passwordHash(account.id))) || (await dummyHash());
      const ok = await verifyPassword(password, hash);
      if (!ok || !account || account.disabled) return undefined;
      return { username: account.username, role: account.role, domains: account.domains, addresses: account.addresses };
    },
  };
}

/** A mailbox login: it owns its own address, and (with senders.ownership: domain) its domain. */
export function dovecotAuthenticator(o: { socket: string; service: string; timeoutMs: number }): SubmissionAuth {
  return {
    async authenticate(username, password, client) {
      const answer = await dovecotAuthenticate(o, username, password, client);
      if (!answer.ok) return undefined;
      const user = answer.user.toLowerCase();
      const at = user.lastIndexOf('@');
      return { username: user, role: 'user', domains: at > 0 ? [user.slice(at + 1)] : [], addresses: at > 0 ? [user] : [] };
    },
  };
}

/**
 * Successful logins remembered for `ttlSec` by a hash of the credentials, so that a client sending
 * many messages does not cost a backend round trip (or an scrypt) each. Failures are not cached:
 * a corrected password works at once, and the lockout counts every failure.
 */
export function cachedAuthenticator(inner: SubmissionAuth, ttlSec: number, o: { now?: () => number; maxEntries?: number } = {}): SubmissionAuth {
  if (ttlSec <= 0) return inner;
  const now = o.now ?? Date.now;
  const maxEntries = o.maxEntries ?? 10_000;
  const cache = new Map<string, { user: SubmissionUser; until: number }>();
  return {
    async authenticate(username, password, client) {
      const key = createHash('sha256').update(username).update('\0').update(password).digest('hex');
      const hit = cache.get(key);
      if (hit && hit.until > now()) return hit.user;
      cache.delete(key);
      const user = await inner.authenticate(username, password, client);
      if (user) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
        cache.set(key, { user, until: now() + ttlSec * 1000 });
      }
      return user;
    },
  };
}

/** The authenticator the config asks for (the composition root picks it). */
export function submissionAuthenticator(cfg: SubmissionConfig['backend'], accounts: () => AccountStore): SubmissionAuth {
  const inner =
    cfg.type === 'dovecot' ? dovecotAuthenticator({ socket: cfg.socket!, service: cfg.service, timeoutMs: cfg.timeoutMs }) : accountAuthenticator(accounts());
  return cachedAuthenticator(inner, cfg.cacheTtlSec);
}
