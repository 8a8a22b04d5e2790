// AuditStore: who did what to which message, when, from where, and whether it was allowed.
// Append-only: the console never updates or deletes a row. Denied attempts (a wrong password, a
// message id outside the user's domains, a missing CSRF token) are recorded as well as actions.
// The table is in migrations.ts; the queries run on SQLite or PostgreSQL (sql.ts).
import { q, type Query, type Sql } from './sql.ts';

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

const clip = (s: string | null, n: number) => (s === null ? null : s.length > n ? `${s.slice(0, n)}…` : s);

export function openAuditStore(sql: Sql, now: () => number = Date.now): AuditStore {
  return {
    async record(e) {
      await sql.run(
        q`INSERT INTO console_audit (at, actor, action, message_id, target, ip, outcome, detail)
          VALUES (${e.at ?? now()}, ${clip(e.actor, 200)}, ${e.action}, ${clip(e.messageId, 100)}, ${clip(e.target, 500)}, ${e.ip}, ${e.outcome}, ${clip(e.detail, 2000)})`,
      );
    },
    async list(f) {
      const where: Query[] = [];
      if (f.actor) where.push(q`actor = ${f.actor}`);
      if (f.action) where.push(q`action = ${f.action}`);
      if (f.messageId) where.push(q`message_id = ${f.messageId}`);
      const w = where.length ? q`WHERE ${q.join(where, q` AND `)}` : q``;
      const total = Number((await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM console_audit ${w}`))?.n ?? 0);
      const rows = await sql.all<AuditEntry & { seq: number }>(
        q`SELECT seq, at, actor, action, message_id AS "messageId", target, ip, outcome, detail
          FROM console_audit ${w} ORDER BY seq DESC LIMIT ${f.limit} OFFSET ${f.offset ?? 0}`,
      );
      return { rows, total };
    },
  };
}
