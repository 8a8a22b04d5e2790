// AuditStore: who did what to which message, when, from where, and whether it was allowed.
// Append-only: the console never updates or deletes a row. Denied attempts (a wrong password, a
// message id outside the user's domains, a missing CSRF token) are recorded as well as actions.
import type { DatabaseSync } from 'node:sqlite';

export type AuditOutcome = 'ok' | 'denied' | 'failed';

export interface AuditEntry {
  at: number;
  /** Username, or "-" when nobody is logged in, or "digest:<address>" for a digest link. */
  actor: string;
  /** e.g. login, logout, view, download, preview, release, delete, learn-spam, list-add. */
  action: string;
  messageId: string | null;
  /** What else the action was about: a list entry, a username, a domain. */
  target: string | null;
  ip: string;
  outcome: AuditOutcome;
  detail: string;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  messageId?: string;
  limit: number;
  offset?: number;
}

export interface AuditStore {
  record(e: Omit<AuditEntry, 'at'> & { at?: number }): Promise<void>;
  list(f: AuditFilter): Promise<{ rows: (AuditEntry & { seq: number })[]; total: number }>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS console_audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  message_id TEXT,
  target TEXT,
  ip TEXT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_audit_message ON console_audit (message_id, seq);
CREATE INDEX IF NOT EXISTS console_audit_actor ON console_audit (actor, seq);
`;

const clip = (s: string | null, n: number) => (s === null ? null : s.length > n ? `${s.slice(0, n)}…` : s);

export function openAuditStore(db: DatabaseSync, now: () => number = Date.now): AuditStore {
  db.exec(SCHEMA);
  const insert = db.prepare(
    'INSERT INTO console_audit (at, actor, action, message_id, target, ip, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  return {
    record(e) {
      insert.run(e.at ?? now(), clip(e.actor, 200), e.action, clip(e.messageId, 100), clip(e.target, 500), e.ip, e.outcome, clip(e.detail, 2000));
    },
    list(f) {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (f.actor) (where.push('actor = ?'), args.push(f.actor));
      if (f.action) (where.push('action = ?'), args.push(f.action));
      if (f.messageId) (where.push('message_id = ?'), args.push(f.messageId));
      const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const total = (db.prepare(`SELECT count(*) AS n FROM console_audit ${w}`).get(...args) as { n: number }).n;
      const rows = db
        .prepare(
          `SELECT seq, at, actor, action, message_id AS messageId, target, ip, outcome, detail FROM console_audit ${w} ORDER BY seq DESC LIMIT ? OFFSET ?`,
        )
        .all(...args, f.limit, f.offset ?? 0) as unknown as (AuditEntry & { seq: number })[];
      return { rows, total };
    },
  };
}
