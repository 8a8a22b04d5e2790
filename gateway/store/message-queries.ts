// Read-only queries over the message metadata for the console: filtered and paged quarantine and
// message-log searches, and the dashboard's counts. Every query takes a RecipientScope and adds
// it to its WHERE clause, so rows outside a user's domains or addresses are never read out of the
// database in the first place (tenant isolation does not depend on each page filtering rows).
//
// Part of the node:sqlite MetadataStore adapter (metadata.ts wires these onto its connection).
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import type { MessageRecord, MessageStatus } from './metadata.ts';

/** Whose mail a query may see: everything, or the recipients in these domains or addresses. */
export type RecipientScope = { all: true } | { all?: false; domains: string[]; addresses: string[] };

export interface MessageSearch {
  scope: RecipientScope;
  statuses?: MessageStatus[];
  verdict?: string;
  /** A recipient domain (exact). */
  domain?: string;
  /** Part of a recipient address. */
  recipient?: string;
  /** Part of the envelope sender. */
  sender?: string;
  /** Client IP, exact or as a prefix ("192.0.2."). */
  clientIp?: string;
  /** Free text: part of the subject, sender, a recipient or the id. */
  q?: string;
  /** Exactly this message id (or "r<seq>" for a refusal in the log). */
  id?: string;
  /** received_at range, epoch ms, [from, to). */
  from?: number;
  to?: number;
  minScore?: number;
  maxScore?: number;
  limit: number;
  offset?: number;
}

export interface LogRow {
  kind: 'message' | 'refusal';
  at: number;
  /** Message id, or "r<seq>" for a refusal (refusals have no message id). */
  id: string;
  clientIp: string;
  helo: string;
  mailFrom: string;
  recipients: string[];
  /** Message status, or "refused" with the SMTP stage for a refusal. */
  status: string;
  verdict: string | null;
  /** The verdict's reason, or the SMTP reply a refused client got. */
  detail: string | null;
  subject: string | null;
  stage: string | null;
}

export type LogSearch = Omit<MessageSearch, 'statuses' | 'verdict' | 'minScore' | 'maxScore'> & {
  /** "refused" (at SMTP), or a message status. */
  status?: string;
};

export interface HourCount {
  /** Start of the hour, epoch ms. */
  hour: number;
  /** Verdict class, or "refused" for SMTP-time refusals, or the status of unscanned messages. */
  category: string;
  n: number;
}

export interface MessageQueries {
  searchMessages(s: MessageSearch): Promise<{ rows: MessageRecord[]; total: number }>;
  searchLog(s: LogSearch): Promise<{ rows: LogRow[]; total: number }>;
  hourlyCounts(scope: RecipientScope, since: number): Promise<HourCount[]>;
  topSenders(scope: RecipientScope, o: { since: number; verdicts: string[]; limit: number }): Promise<{ sender: string; n: number }[]>;
  topViruses(scope: RecipientScope, o: { since: number; limit: number }): Promise<{ name: string; n: number }[]>;
  statusCounts(scope: RecipientScope): Promise<Record<string, number>>;
}

/** SQLite function: the lower-cased domain of an address (after the last "@"). */
export function registerFunctions(db: DatabaseSync): void {
  db.function('mm_domain', { deterministic: true }, (a: SQLInputValue) => {
    if (typeof a !== 'string') return null;
    return a.slice(a.lastIndexOf('@') + 1).toLowerCase().replace(/\.$/, '');
  });
}

const like = (s: string) => `%${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const placeholders = (n: number) => Array(n).fill('?').join(',');

/** The scope as SQL over one address expression; `none` when the scope can see nothing. */
function scopeOver(expr: string, scope: RecipientScope, args: SQLInputValue[]): string {
  if (scope.all) return '1';
  const parts: string[] = [];
  if (scope.domains.length) {
    parts.push(`mm_domain(${expr}) IN (${placeholders(scope.domains.length)})`);
    args.push(...scope.domains.map((d) => d.toLowerCase()));
  }
  if (scope.addresses.length) {
    parts.push(`lower(${expr}) IN (${placeholders(scope.addresses.length)})`);
    args.push(...scope.addresses.map((d) => d.toLowerCase()));
  }
  return parts.length ? `(${parts.join(' OR ')})` : '0';
}

function messageWhere(s: Omit<MessageSearch, 'limit' | 'offset'>, args: SQLInputValue[]): string {
  const w: string[] = [];
  if (!s.scope.all) w.push(`EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE ${scopeOver('r.value', s.scope, args)})`);
  if (s.statuses?.length) (w.push(`m.status IN (${placeholders(s.statuses.length)})`), args.push(...s.statuses));
  if (s.verdict) (w.push('m.verdict = ?'), args.push(s.verdict));
  if (s.domain) (w.push(`EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE mm_domain(r.value) = ?)`), args.push(s.domain.toLowerCase()));
  if (s.recipient) (w.push(`EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE lower(r.value) LIKE ? ESCAPE '\\')`), args.push(like(s.recipient)));
  if (s.sender) (w.push(`lower(m.mail_from) LIKE ? ESCAPE '\\'`), args.push(like(s.sender)));
  if (s.clientIp) (w.push('(m.client_ip = ? OR m.client_ip LIKE ?)'), args.push(s.clientIp, `${s.clientIp.replace(/[\\%_]/g, '')}%`));
  if (s.q) {
    w.push(`(lower(coalesce(m.subject, '')) LIKE ?1q OR lower(m.mail_from) LIKE ?1q OR lower(m.rcpt_to) LIKE ?1q OR lower(m.id) LIKE ?1q)`.replaceAll('?1q', `? ESCAPE '\\'`));
    args.push(like(s.q), like(s.q), like(s.q), like(s.q));
  }
  if (s.id) (w.push('m.id = ?'), args.push(s.id));
  if (s.from !== undefined) (w.push('m.received_at >= ?'), args.push(s.from));
  if (s.to !== undefined) (w.push('m.received_at < ?'), args.push(s.to));
  if (s.minScore !== undefined) (w.push(`json_extract(m.report, '$.spam.score') >= ?`), args.push(s.minScore));
  if (s.maxScore !== undefined) (w.push(`json_extract(m.report, '$.spam.score') <= ?`), args.push(s.maxScore));
  return w.length ? `WHERE ${w.join(' AND ')}` : '';
}

export function messageQueries(db: DatabaseSync, toRecord: (row: never) => MessageRecord): MessageQueries {
  return {
    searchMessages(s) {
      const args: SQLInputValue[] = [];
      const where = messageWhere(s, args);
      const total = (db.prepare(`SELECT count(*) AS n FROM messages m ${where}`).get(...args) as { n: number }).n;
      const rows = db
        .prepare(`SELECT m.* FROM messages m ${where} ORDER BY m.received_at DESC, m.id DESC LIMIT ? OFFSET ?`)
        .all(...args, s.limit, s.offset ?? 0);
      return { rows: (rows as never[]).map(toRecord), total };
    },

    searchLog(s) {
      const mArgs: SQLInputValue[] = [];
      const showMessages = s.status !== 'refused';
      const showRefusals = s.status === undefined || s.status === 'refused';
      const mWhere = messageWhere({ ...s, statuses: s.status && s.status !== 'refused' ? [s.status as MessageStatus] : undefined }, mArgs);
      const rArgs: SQLInputValue[] = [];
      const rw: string[] = [scopeOver('x.recipient', s.scope, rArgs)];
      if (!s.scope.all) rw.push('x.recipient IS NOT NULL');
      if (s.domain) (rw.push('mm_domain(x.recipient) = ?'), rArgs.push(s.domain.toLowerCase()));
      if (s.recipient) (rw.push(`lower(coalesce(x.recipient, '')) LIKE ? ESCAPE '\\'`), rArgs.push(like(s.recipient)));
      if (s.sender) (rw.push(`lower(coalesce(x.mail_from, '')) LIKE ? ESCAPE '\\'`), rArgs.push(like(s.sender)));
      if (s.clientIp) (rw.push('(x.client_ip = ? OR x.client_ip LIKE ?)'), rArgs.push(s.clientIp, `${s.clientIp.replace(/[\\%_]/g, '')}%`));
      if (s.q) {
        rw.push(`(lower(coalesce(x.mail_from, '')) LIKE ? ESCAPE '\\' OR lower(coalesce(x.recipient, '')) LIKE ? ESCAPE '\\' OR lower(x.reply) LIKE ? ESCAPE '\\' OR x.client_ip LIKE ? ESCAPE '\\')`);
        rArgs.push(like(s.q), like(s.q), like(s.q), like(s.q));
      }
      if (s.id) (rw.push(`'r' || x.seq = ?`), rArgs.push(s.id));
      if (s.from !== undefined) (rw.push('x.at >= ?'), rArgs.push(s.from));
      if (s.to !== undefined) (rw.push('x.at < ?'), rArgs.push(s.to));
      const parts: string[] = [];
      const args: SQLInputValue[] = [];
      if (showMessages) {
        parts.push(`SELECT 'message' AS kind, m.received_at AS at, m.id AS id, m.client_ip AS client_ip, m.helo AS helo, m.mail_from AS mail_from,
          m.rcpt_to AS rcpts, m.status AS status, m.verdict AS verdict, coalesce(m.reason, m.last_reply) AS detail, m.subject AS subject, NULL AS stage
          FROM messages m ${mWhere}`);
        args.push(...mArgs);
      }
      if (showRefusals) {
        parts.push(`SELECT 'refusal', x.at, 'r' || x.seq, x.client_ip, x.helo, coalesce(x.mail_from, ''),
          CASE WHEN x.recipient IS NULL THEN '[]' ELSE json_array(x.recipient) END, 'refused', NULL, x.reply, NULL, x.stage
          FROM smtp_refusals x WHERE ${rw.join(' AND ')}`);
        args.push(...rArgs);
      }
      const union = parts.join(' UNION ALL ');
      const total = (db.prepare(`SELECT count(*) AS n FROM (${union})`).get(...args) as { n: number }).n;
      const rows = db.prepare(`SELECT * FROM (${union}) ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`).all(...args, s.limit, s.offset ?? 0) as {
        kind: 'message' | 'refusal';
        at: number;
        id: string;
        client_ip: string;
        helo: string;
        mail_from: string;
        rcpts: string;
        status: string;
        verdict: string | null;
        detail: string | null;
        subject: string | null;
        stage: string | null;
      }[];
      return {
        total,
        rows: rows.map((r) => ({
          kind: r.kind,
          at: r.at,
          id: r.id,
          clientIp: r.client_ip,
          helo: r.helo,
          mailFrom: r.mail_from,
          recipients: JSON.parse(r.rcpts) as string[],
          status: r.status,
          verdict: r.verdict,
          detail: r.detail,
          subject: r.subject,
          stage: r.stage,
        })),
      };
    },

    hourlyCounts(scope, since) {
      const mArgs: SQLInputValue[] = [since];
      const mScope = scope.all ? '' : `AND EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE ${scopeOver('r.value', scope, mArgs)})`;
      const rArgs: SQLInputValue[] = [since];
      const rScope = scope.all ? '' : `AND x.recipient IS NOT NULL AND ${scopeOver('x.recipient', scope, rArgs)}`;
      return db
        .prepare(
          `SELECT hour, category, sum(n) AS n FROM (
             SELECT (m.received_at / 3600000) * 3600000 AS hour, coalesce(m.verdict, m.status) AS category, count(*) AS n
               FROM messages m WHERE m.received_at >= ? ${mScope} GROUP BY 1, 2
             UNION ALL
             SELECT (x.at / 3600000) * 3600000, 'refused', count(*) FROM smtp_refusals x WHERE x.at >= ? ${rScope} GROUP BY 1
           ) GROUP BY hour, category ORDER BY hour`,
        )
        .all(...mArgs, ...rArgs) as unknown as HourCount[];
    },

    topSenders(scope, o) {
      const args: SQLInputValue[] = [o.since, ...o.verdicts];
      const sc = scope.all ? '' : `AND EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE ${scopeOver('r.value', scope, args)})`;
      return db
        .prepare(
          `SELECT lower(m.mail_from) AS sender, count(*) AS n FROM messages m
           WHERE m.received_at >= ? AND m.verdict IN (${placeholders(o.verdicts.length)}) ${sc}
           GROUP BY 1 ORDER BY n DESC, sender LIMIT ?`,
        )
        .all(...args, o.limit) as unknown as { sender: string; n: number }[];
    },

    topViruses(scope, o) {
      const args: SQLInputValue[] = [o.since];
      const sc = scope.all ? '' : `AND EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE ${scopeOver('r.value', scope, args)})`;
      return db
        .prepare(
          `SELECT v.value AS name, count(*) AS n FROM messages m, json_each(m.report, '$.virus.viruses') v
           WHERE m.received_at >= ? AND m.verdict = 'virus' ${sc}
           GROUP BY 1 ORDER BY n DESC, name LIMIT ?`,
        )
        .all(...args, o.limit) as unknown as { name: string; n: number }[];
    },

    statusCounts(scope) {
      const args: SQLInputValue[] = [];
      const sc = scope.all ? '' : `WHERE EXISTS (SELECT 1 FROM json_each(m.rcpt_to) r WHERE ${scopeOver('r.value', scope, args)})`;
      const rows = db.prepare(`SELECT m.status AS status, count(*) AS n FROM messages m ${sc} GROUP BY 1`).all(...args) as { status: string; n: number }[];
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },
  };
}
