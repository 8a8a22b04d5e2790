// AccountStore: the console's local users, their server-side sessions and their failed logins.
// Contract: usernames are unique (case-insensitive, stored lower case); a session is valid only
// while its row exists and has not expired, so logging out, disabling a user or changing a
// password revokes at once (the encrypted cookie alone is not enough to be logged in).
// Passwords are never stored here in clear: only the scrypt hash string (gateway/passwords.ts).
// The tables are in migrations.ts; the queries run on SQLite or PostgreSQL (sql.ts).
import { randomBytes } from 'node:crypto';
import { q, type Sql } from './sql.ts';

/**
 * superadmin: everything, including domains, users, global lists and the audit log.
 * domainadmin: the quarantine, lists and log of a set of domains.
 * user: the quarantine and lists of their own addresses.
 */
export type Role = 'superadmin' | 'domainadmin' | 'user';
export const ROLES: readonly Role[] = ['superadmin', 'domainadmin', 'user'];

/** Where an account logs in: its own password here, an LDAP directory, or an OpenID Connect provider. */
export type AuthSource = 'local' | 'ldap' | 'oidc';

/** The directory's name for the person behind an external account. */
export interface ExternalIdentity {
  source: Exclude<AuthSource, 'local'>;
  /** LDAP: the entry's DN (lower case); OIDC: the subject. */
  id: string;
}

export interface Account {
  id: number;
  username: string;
  role: Role;
  /** Lower case; meaningful for domain admins. */
  domains: string[];
  /** Lower case; meaningful for end users (their own mailboxes). */
  addresses: string[];
  disabled: boolean;
  createdAt: number;
  authSource: AuthSource;
}

export interface NewAccount {
  username: string;
  role: Role;
  domains?: string[];
  addresses?: string[];
  passwordHash: string;
}

export interface FailureCount {
  count: number;
  last: number | null;
}

export interface Session {
  id: string;
  accountId: number;
  createdAt: number;
  expiresAt: number;
}

export interface AccountStore {
  create(a: NewAccount): Promise<Account>;
  get(id: number): Promise<Account | undefined>;
  byName(username: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  count(): Promise<number>;
  passwordHash(id: number): Promise<string | undefined>;
  /** Also ends every session of the account. */
  setPasswordHash(id: number, hash: string): Promise<void>;
  /** Disabling also ends every session of the account. */
  update(id: number, changes: { role?: Role; domains?: string[]; addresses?: string[]; disabled?: boolean }): Promise<void>;
  /** The account linked to an external identity. */
  byExternal(identity: ExternalIdentity): Promise<Account | undefined>;
  /** An account that logs in only through the identity's source: it has no usable password. */
  createExternal(a: Omit<NewAccount, 'passwordHash'>, identity: ExternalIdentity): Promise<Account>;
  /**
   * Links a local end-user account that only digest links log into (LINK_ONLY_PASSWORD) to an
   * external identity of the same name, ending its sessions; false when there is no such account
   * (or it is disabled: an administrator's "no" stands).
   */
  adoptLinkOnly(username: string, identity: ExternalIdentity): Promise<boolean>;
  createSession(accountId: number, ttlMs: number): Promise<Session>;
  /** The session if it exists and has not expired. */
  getSession(id: string): Promise<Session | undefined>;
  deleteSession(id: string): Promise<void>;
  deleteSessionsOf(accountId: number): Promise<void>;
  /** `ip`: the client address the attempt came from ('' when unknown). */
  recordLoginFailure(username: string, ip?: string): Promise<void>;
  loginFailuresSince(username: string, since: number): Promise<number>;
  /** Failures since `since` from this address and from all, each with the newest one's time (rules/login-throttle.ts). */
  loginFailureStats(username: string, ip: string, since: number): Promise<{ fromAddress: FailureCount; total: FailureCount }>;
  /** All failures of the username, or only those from one address. */
  clearLoginFailures(username: string, ip?: string): Promise<void>;
}

interface Row {
  id: number;
  username: string;
  role: Role;
  domains: string;
  addresses: string;
  disabled: number;
  created_at: number;
  auth_source: AuthSource;
}

const toAccount = (r: Row): Account => ({
  id: r.id,
  username: r.username,
  role: r.role,
  domains: JSON.parse(r.domains) as string[],
  addresses: JSON.parse(r.addresses) as string[],
  disabled: r.disabled === 1,
  createdAt: r.created_at,
  authSource: r.auth_source,
});

/** No scrypt hash has this form, so verifyPassword() refuses every password for it. */
const NO_PASSWORD = '!external';
/** The end-user account a digest link created on first use: no password, the link is the way in. */
export const LINK_ONLY_PASSWORD = '!digest-link-only';

export const USERNAME = /^[a-z0-9][a-z0-9._@+-]{0,63}$/;

const lower = (xs: string[] | undefined) => [...new Set((xs ?? []).map((x) => x.trim().toLowerCase()).filter(Boolean))].sort();

/** The key of a login-failure row: the name as typed, normalised and bounded (it need not exist). */
const failureKey = (username: string) => username.trim().toLowerCase().slice(0, 100);

export function openAccountStore(sql: Sql, now: () => number = Date.now): AccountStore {
  const cols = q`id, username, role, domains, addresses, disabled, created_at, auth_source`;
  const endSessions = (db: Sql, id: number) => db.run(q`DELETE FROM console_sessions WHERE account_id = ${id}`);
  // ON CONFLICT without a target: a taken username and an identity linked already both refuse.
  const insert = async (a: Omit<NewAccount, 'passwordHash'>, passwordHash: string, identity: ExternalIdentity | null) => {
    const username = a.username.trim().toLowerCase();
    if (!USERNAME.test(username)) throw new Error(`invalid username: ${JSON.stringify(a.username)}`);
    const r = await sql.one<Row>(
      q`INSERT INTO console_accounts (username, role, domains, addresses, password_hash, created_at, auth_source, external_id)
        VALUES (${username}, ${a.role}, ${JSON.stringify(lower(a.domains))}, ${JSON.stringify(lower(a.addresses))}, ${passwordHash}, ${now()}, ${identity?.source ?? 'local'}, ${identity?.id ?? null})
        ON CONFLICT DO NOTHING
        RETURNING ${cols}`,
    );
    if (!r) throw new Error(`username ${username} exists already`);
    return toAccount(r);
  };
  return {
    create(a) {
      return insert(a, a.passwordHash, null);
    },
    createExternal(a, identity) {
      return insert(a, NO_PASSWORD, identity);
    },
    async adoptLinkOnly(username, identity) {
      return sql.transaction(async (tx) => {
        const r = await tx.one<{ id: number }>(
          q`UPDATE console_accounts SET auth_source = ${identity.source}, external_id = ${identity.id}, password_hash = ${NO_PASSWORD}
            WHERE username = ${username.trim().toLowerCase()} AND auth_source = 'local' AND role = 'user' AND disabled = 0 AND password_hash = ${LINK_ONLY_PASSWORD}
            RETURNING id`,
        );
        if (r) await endSessions(tx, r.id);
        return Boolean(r);
      });
    },
    async byExternal(identity) {
      const r = await sql.one<Row>(q`SELECT ${cols} FROM console_accounts WHERE auth_source = ${identity.source} AND external_id = ${identity.id}`);
      return r && toAccount(r);
    },
    async get(id) {
      const r = await sql.one<Row>(q`SELECT ${cols} FROM console_accounts WHERE id = ${id}`);
      return r && toAccount(r);
    },
    async byName(username) {
      const r = await sql.one<Row>(q`SELECT ${cols} FROM console_accounts WHERE username = ${username.trim().toLowerCase()}`);
      return r && toAccount(r);
    },
    async list() {
      // Byte order, as SQLite sorts, whatever the PostgreSQL database's collation.
      const order = sql.dialect === 'postgres' ? q`username COLLATE "C"` : q`username`;
      return (await sql.all<Row>(q`SELECT ${cols} FROM console_accounts ORDER BY ${order}`)).map(toAccount);
    },
    async count() {
      return Number((await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM console_accounts`))?.n ?? 0);
    },
    async passwordHash(id) {
      return (await sql.one<{ password_hash: string }>(q`SELECT password_hash FROM console_accounts WHERE id = ${id}`))?.password_hash;
    },
    async setPasswordHash(id, hash) {
      await sql.transaction(async (tx) => {
        await tx.run(q`UPDATE console_accounts SET password_hash = ${hash} WHERE id = ${id}`);
        await endSessions(tx, id);
      });
    },
    async update(id, c) {
      // One UPDATE (unchanged fields keep their stored value), so that two concurrent updates of
      // different fields cannot undo each other.
      const domains = c.domains ? JSON.stringify(lower(c.domains)) : null;
      const addresses = c.addresses ? JSON.stringify(lower(c.addresses)) : null;
      const disabled = c.disabled === undefined ? null : c.disabled ? 1 : 0;
      await sql.transaction(async (tx) => {
        const changed = await tx.run(
          q`UPDATE console_accounts SET
              role = coalesce(${c.role ?? null}, role),
              domains = coalesce(${domains}, domains),
              addresses = coalesce(${addresses}, addresses),
              disabled = coalesce(${disabled}, disabled)
            WHERE id = ${id}`,
        );
        // A changed role or scope must not linger in a live session either.
        if (changed > 0) await endSessions(tx, id);
      });
    },
    async createSession(accountId, ttlMs) {
      const at = now();
      const s: Session = { id: randomBytes(32).toString('base64url'), accountId, createdAt: at, expiresAt: at + ttlMs };
      await sql.run(q`DELETE FROM console_sessions WHERE expires_at <= ${at}`);
      await sql.run(q`INSERT INTO console_sessions (id, account_id, created_at, expires_at) VALUES (${s.id}, ${accountId}, ${s.createdAt}, ${s.expiresAt})`);
      return s;
    },
    async getSession(id) {
      const r = await sql.one<{ id: string; account_id: number; created_at: number; expires_at: number }>(
        q`SELECT id, account_id, created_at, expires_at FROM console_sessions WHERE id = ${id} AND expires_at > ${now()}`,
      );
      return r && { id: r.id, accountId: r.account_id, createdAt: r.created_at, expiresAt: r.expires_at };
    },
    async deleteSession(id) {
      await sql.run(q`DELETE FROM console_sessions WHERE id = ${id}`);
    },
    async deleteSessionsOf(accountId) {
      await endSessions(sql, accountId);
    },
    async recordLoginFailure(username, ip = '') {
      const at = now();
      await sql.run(q`DELETE FROM console_login_failures WHERE at < ${at - 24 * 3600_000}`);
      await sql.run(q`INSERT INTO console_login_failures (username, at, ip) VALUES (${failureKey(username)}, ${at}, ${ip})`);
    },
    async loginFailureStats(username, ip, since) {
      const count = async (address: string | null): Promise<FailureCount> => {
        const where = address === null ? q`1 = 1` : q`ip = ${address}`;
        const r = await sql.one<{ n: number; last: number | null }>(
          q`SELECT count(*) AS n, max(at) AS last FROM console_login_failures WHERE username = ${failureKey(username)} AND at >= ${since} AND ${where}`,
        );
        return { count: Number(r?.n ?? 0), last: r?.last === null || r?.last === undefined ? null : Number(r.last) };
      };
      return { fromAddress: await count(ip), total: await count(null) };
    },
    async loginFailuresSince(username, since) {
      const r = await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM console_login_failures WHERE username = ${failureKey(username)} AND at >= ${since}`);
      return Number(r?.n ?? 0);
    },
    async clearLoginFailures(username, ip) {
      const where = ip === undefined ? q`1 = 1` : q`ip = ${ip}`;
      await sql.run(q`DELETE FROM console_login_failures WHERE username = ${failureKey(username)} AND ${where}`);
    },
  };
}
