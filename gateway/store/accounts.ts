// AccountStore: the console's local users, their server-side sessions and their failed logins.
// Contract: usernames are unique (case-insensitive, stored lower case); a session is valid only
// while its row exists and has not expired, so logging out, disabling a user or changing a
// password revokes at once (the encrypted cookie alone is not enough to be logged in).
// Passwords are never stored here in clear: only the scrypt hash string (gateway/passwords.ts).
import { randomBytes } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';

/**
 * superadmin: everything, including domains, users, global lists and the audit log.
 * domainadmin: the quarantine, lists and log of a set of domains.
 * user: the quarantine and lists of their own addresses.
 */
export type Role = 'superadmin' | 'domainadmin' | 'user';
export const ROLES: readonly Role[] = ['superadmin', 'domainadmin', 'user'];

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
}

export interface NewAccount {
  username: string;
  role: Role;
  domains?: string[];
  addresses?: string[];
  passwordHash: string;
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
  createSession(accountId: number, ttlMs: number): Promise<Session>;
  /** The session if it exists and has not expired. */
  getSession(id: string): Promise<Session | undefined>;
  deleteSession(id: string): Promise<void>;
  deleteSessionsOf(accountId: number): Promise<void>;
  recordLoginFailure(username: string): Promise<void>;
  loginFailuresSince(username: string, since: number): Promise<number>;
  clearLoginFailures(username: string): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS console_accounts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  domains TEXT NOT NULL DEFAULT '[]',
  addresses TEXT NOT NULL DEFAULT '[]',
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
  id TEXT PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_account ON console_sessions (account_id);
CREATE TABLE IF NOT EXISTS console_login_failures (
  username TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_login_failures_name ON console_login_failures (username, at);
`;

interface Row {
  id: number;
  username: string;
  role: Role;
  domains: string;
  addresses: string;
  disabled: number;
  created_at: number;
}

const toAccount = (r: Row): Account => ({
  id: r.id,
  username: r.username,
  role: r.role,
  domains: JSON.parse(r.domains) as string[],
  addresses: JSON.parse(r.addresses) as string[],
  disabled: r.disabled === 1,
  createdAt: r.created_at,
});

export const USERNAME = /^[a-z0-9][a-z0-9._@+-]{0,63}$/;

const lower = (xs: string[] | undefined) => [...new Set((xs ?? []).map((x) => x.trim().toLowerCase()).filter(Boolean))].sort();

export function openAccountStore(db: DatabaseSync, now: () => number = Date.now): AccountStore {
  db.exec(SCHEMA);
  const cols = 'id, username, role, domains, addresses, disabled, created_at';
  const byId = db.prepare(`SELECT ${cols} FROM console_accounts WHERE id = ?`);
  const byName = db.prepare(`SELECT ${cols} FROM console_accounts WHERE username = ?`);
  const endSessions = db.prepare('DELETE FROM console_sessions WHERE account_id = ?');
  return {
    create(a) {
      const username = a.username.trim().toLowerCase();
      if (!USERNAME.test(username)) throw new Error(`invalid username: ${JSON.stringify(a.username)}`);
      const r = db
        .prepare('INSERT INTO console_accounts (username, role, domains, addresses, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(username, a.role, JSON.stringify(lower(a.domains)), JSON.stringify(lower(a.addresses)), a.passwordHash, now());
      return this.get(Number(r.lastInsertRowid))!;
    },
    get(id) {
      const r = byId.get(id) as Row | undefined;
      return r && toAccount(r);
    },
    byName(username) {
      const r = byName.get(username.trim().toLowerCase()) as Row | undefined;
      return r && toAccount(r);
    },
    list() {
      return (db.prepare(`SELECT ${cols} FROM console_accounts ORDER BY username`).all() as unknown as Row[]).map(toAccount);
    },
    count() {
      return (db.prepare('SELECT count(*) AS n FROM console_accounts').get() as { n: number }).n;
    },
    passwordHash(id) {
      return (db.prepare('SELECT password_hash FROM console_accounts WHERE id = ?').get(id) as { password_hash: string } | undefined)?.password_hash;
    },
    setPasswordHash(id, hash) {
      db.prepare('UPDATE console_accounts SET password_hash = ? WHERE id = ?').run(hash, id);
      endSessions.run(id);
    },
    update(id, c) {
      const current = this.get(id);
      if (!current) return;
      db.prepare('UPDATE console_accounts SET role = ?, domains = ?, addresses = ?, disabled = ? WHERE id = ?').run(
        c.role ?? current.role,
        JSON.stringify(c.domains ? lower(c.domains) : current.domains),
        JSON.stringify(c.addresses ? lower(c.addresses) : current.addresses),
        (c.disabled ?? current.disabled) ? 1 : 0,
        id,
      );
      // A changed role or scope must not linger in a live session either.
      endSessions.run(id);
    },
    createSession(accountId, ttlMs) {
      const at = now();
      const s: Session = { id: randomBytes(32).toString('base64url'), accountId, createdAt: at, expiresAt: at + ttlMs };
      db.prepare('DELETE FROM console_sessions WHERE expires_at <= ?').run(at);
      db.prepare('INSERT INTO console_sessions (id, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(s.id, accountId, s.createdAt, s.expiresAt);
      return s;
    },
    getSession(id) {
      const r = db.prepare('SELECT id, account_id, created_at, expires_at FROM console_sessions WHERE id = ? AND expires_at > ?').get(id, now()) as
        | { id: string; account_id: number; created_at: number; expires_at: number }
        | undefined;
      return r && { id: r.id, accountId: r.account_id, createdAt: r.created_at, expiresAt: r.expires_at };
    },
    deleteSession(id) {
      db.prepare('DELETE FROM console_sessions WHERE id = ?').run(id);
    },
    deleteSessionsOf(accountId) {
      endSessions.run(accountId);
    },
    recordLoginFailure(username) {
      const at = now();
      db.prepare('DELETE FROM console_login_failures WHERE at < ?').run(at - 24 * 3600_000);
      db.prepare('INSERT INTO console_login_failures (username, at) VALUES (?, ?)').run(username.trim().toLowerCase().slice(0, 100), at);
    },
    loginFailuresSince(username, since) {
      return (
        db.prepare('SELECT count(*) AS n FROM console_login_failures WHERE username = ? AND at >= ?').get(username.trim().toLowerCase().slice(0, 100), since) as {
          n: number;
        }
      ).n;
    },
    clearLoginFailures(username) {
      db.prepare('DELETE FROM console_login_failures WHERE username = ?').run(username.trim().toLowerCase());
    },
  };
}
