// Read-only queries over the message metadata for the console: filtered and paged quarantine and
// message-log searches, and the dashboard's counts. Every query takes a RecipientScope and adds
// it to its WHERE clause, so rows outside a user's domains or addresses are never read out of the
// database in the first place (tenant isolation does not depend on each page filtering rows).
//
// Part of the MetadataStore (metadata.ts), on either SQL dialect: the JSON columns (recipients, the
// scan report) are read with each dialect's JSON functions (`jsonOf` below), everything else is
// common SQL. mm_domain() is the address-domain function both databases have (sql.ts, migrations.ts).
import type { MessageRecord, MessageStatus } from './message-record.ts';
import { q, type Dialect, type Query, type Sql } from './sql.ts';

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
  topSenders(scope: RecipientScope, o: { since: number; until?: number; verdicts: string[]; limit: number }): Promise<{ sender: string; n: number }[]>;
  topViruses(scope: RecipientScope, o: { since: number; limit: number }): Promise<{ name: string; n: number }[]>;
  statusCounts(scope: RecipientScope): Promise<Record<string, number>>;
}

const like = (s: string) => `%${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const TRUE = q`1 = 1`;
const FALSE = q`1 = 0`;
const and = (parts: Query[]) => (parts.length ? q.join(parts, q` AND `) : TRUE);

/** The places where SQLite's and PostgreSQL's JSON functions differ. */
function jsonOf(dialect: Dialect) {
  return dialect === 'postgres'
    ? {
        /** A FROM item with one row per recipient address, as r.value. */
        recipients: (expr: Query) => q`jsonb_array_elements_text(${expr}::jsonb) AS r(value)`,
        spamScore: q`(m.report::jsonb #>> '{spam,score}')::float8`,
        /** A FROM item with one row per virus name of m's report, as v.value. */
        virusNames: q`jsonb_array_elements_text(coalesce(m.report::jsonb #> '{virus,viruses}', '[]'::jsonb)) AS v(value)`,
      }
    : {
        recipients: (expr: Query) => q`json_each(${expr}) r`,
        spamScore: q`json_extract(m.report, '$.spam.score')`,
        virusNames: q`json_each(m.report, '$.virus.viruses') v`,
      };
}

/** The scope as SQL over one address expression; false when the scope can see nothing. */
function scopeOver(expr: Query, scope: RecipientScope): Query {
  if (scope.all) return TRUE;
  const parts: Query[] = [];
  if (scope.domains.length) parts.push(q`mm_domain(${expr}) IN (${q.join(scope.domains.map((d) => d.toLowerCase()))})`);
  if (scope.addresses.length) parts.push(q`lower(${expr}) IN (${q.join(scope.addresses.map((d) => d.toLowerCase()))})`);
  return parts.length ? q`(${q.join(parts, q` OR `)})` : FALSE;
}

export function messageQueries(sql: Sql, toRecord: (row: never) => MessageRecord): MessageQueries {
  const json = jsonOf(sql.dialect);
  /** m has a recipient for which `cond` (over r.value) holds. */
  const anyRecipient = (cond: Query) => q`EXISTS (SELECT 1 FROM ${json.recipients(q`m.rcpt_to`)} WHERE ${cond})`;
  // Issue 15: outbound holds belong to the sender's domain. Mail an authenticated user submitted
  // is also seen from its sender's side (the envelope sender is one the account owns: rules/
  // frontline.ts decideSubmissionSender); an unauthenticated sender address proves nothing.
  const submittedFrom = (scope: RecipientScope) => q`(m.submitted_by IS NOT NULL AND ${scopeOver(q`m.mail_from`, scope)})`;
  const inScope = (scope: RecipientScope) => (scope.all ? TRUE : q`(${anyRecipient(scopeOver(q`r.value`, scope))} OR ${submittedFrom(scope)})`);

  function messageWhere(s: Omit<MessageSearch, 'limit' | 'offset'>): Query {
    const w: Query[] = [];
    // Recipient searches match only the user's own recipients: matching another tenant's hidden
    // recipient of a shared message would tell that it exists (an oracle).
    const ownRecipient = (cond: Query) => anyRecipient(s.scope.all ? cond : q`${cond} AND ${scopeOver(q`r.value`, s.scope)}`);
    if (!s.scope.all) w.push(inScope(s.scope));
    if (s.statuses?.length) w.push(q`m.status IN (${q.join(s.statuses)})`);
    if (s.verdict) w.push(q`m.verdict = ${s.verdict}`);
    if (s.domain) w.push(ownRecipient(q`mm_domain(r.value) = ${s.domain.toLowerCase()}`));
    if (s.recipient) w.push(ownRecipient(q`lower(r.value) LIKE ${like(s.recipient)} ESCAPE '\\'`));
    if (s.sender) w.push(q`lower(m.mail_from) LIKE ${like(s.sender)} ESCAPE '\\'`);
    if (s.clientIp) w.push(q`(m.client_ip = ${s.clientIp} OR m.client_ip LIKE ${`${s.clientIp.replace(/[\\%_]/g, '')}%`})`);
    if (s.q) {
      const p = like(s.q);
      w.push(
        q`(lower(coalesce(m.subject, '')) LIKE ${p} ESCAPE '\\' OR lower(m.mail_from) LIKE ${p} ESCAPE '\\' OR ${ownRecipient(q`lower(r.value) LIKE ${p} ESCAPE '\\'`)} OR lower(m.id) LIKE ${p} ESCAPE '\\')`,
      );
    }
    if (s.id) w.push(q`m.id = ${s.id}`);
    if (s.from !== undefined) w.push(q`m.received_at >= ${s.from}`);
    if (s.to !== undefined) w.push(q`m.received_at < ${s.to}`);
    if (s.minScore !== undefined) w.push(q`${json.spamScore} >= ${s.minScore}`);
    if (s.maxScore !== undefined) w.push(q`${json.spamScore} <= ${s.maxScore}`);
    return and(w);
  }

  return {
    async searchMessages(s) {
      const where = messageWhere(s);
      const total = (await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM messages m WHERE ${where}`))!.n;
      const rows = await sql.all<never>(
        q`SELECT m.* FROM messages m WHERE ${where} ORDER BY m.received_at DESC, m.id DESC LIMIT ${s.limit} OFFSET ${s.offset ?? 0}`,
      );
      return { rows: rows.map(toRecord), total };
    },

    async searchLog(s) {
      const showMessages = s.status !== 'refused';
      const showRefusals = s.status === undefined || s.status === 'refused';
      const mWhere = messageWhere({ ...s, statuses: s.status && s.status !== 'refused' ? [s.status as MessageStatus] : undefined });
      const rw: Query[] = [scopeOver(q`x.recipient`, s.scope)];
      if (!s.scope.all) rw.push(q`x.recipient IS NOT NULL`);
      if (s.domain) rw.push(q`mm_domain(x.recipient) = ${s.domain.toLowerCase()}`);
      if (s.recipient) rw.push(q`lower(coalesce(x.recipient, '')) LIKE ${like(s.recipient)} ESCAPE '\\'`);
      if (s.sender) rw.push(q`lower(coalesce(x.mail_from, '')) LIKE ${like(s.sender)} ESCAPE '\\'`);
      if (s.clientIp) rw.push(q`(x.client_ip = ${s.clientIp} OR x.client_ip LIKE ${`${s.clientIp.replace(/[\\%_]/g, '')}%`})`);
      if (s.q) {
        const p = like(s.q);
        rw.push(
          q`(lower(coalesce(x.mail_from, '')) LIKE ${p} ESCAPE '\\' OR lower(coalesce(x.recipient, '')) LIKE ${p} ESCAPE '\\' OR lower(x.reply) LIKE ${p} ESCAPE '\\' OR x.client_ip LIKE ${p} ESCAPE '\\')`,
        );
      }
      if (s.id) rw.push(q`'r' || x.seq = ${s.id}`);
      if (s.from !== undefined) rw.push(q`x.at >= ${s.from}`);
      if (s.to !== undefined) rw.push(q`x.at < ${s.to}`);
      // A message row carries its recipients as the JSON array column; a refusal its one recipient (or none).
      const parts: Query[] = [];
      if (showMessages) {
        parts.push(q`SELECT 'message' AS kind, m.received_at AS at, m.id AS id, m.client_ip AS client_ip, m.helo AS helo, m.mail_from AS mail_from,
          m.rcpt_to AS rcpts, m.status AS status, m.verdict AS verdict, coalesce(m.reason, m.last_reply) AS detail, m.subject AS subject, NULL AS stage
          FROM messages m WHERE ${mWhere}`);
      }
      if (showRefusals) {
        parts.push(q`SELECT 'refusal' AS kind, x.at AS at, 'r' || x.seq AS id, x.client_ip AS client_ip, x.helo AS helo, coalesce(x.mail_from, '') AS mail_from,
          x.recipient AS rcpts, 'refused' AS status, NULL AS verdict, x.reply AS detail, NULL AS subject, x.stage AS stage
          FROM smtp_refusals x WHERE ${and(rw)}`);
      }
      const union = q.join(parts, q` UNION ALL `);
      const total = (await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM (${union}) u`))!.n;
      const rows = await sql.all<{
        kind: 'message' | 'refusal';
        at: number;
        id: string;
        client_ip: string;
        helo: string;
        mail_from: string;
        rcpts: string | null;
        status: string;
        verdict: string | null;
        detail: string | null;
        subject: string | null;
        stage: string | null;
      }>(q`SELECT * FROM (${union}) u ORDER BY at DESC, id DESC LIMIT ${s.limit} OFFSET ${s.offset ?? 0}`);
      return {
        total,
        rows: rows.map((r) => ({
          kind: r.kind,
          at: r.at,
          id: r.id,
          clientIp: r.client_ip,
          helo: r.helo,
          mailFrom: r.mail_from,
          recipients: r.kind === 'message' ? (JSON.parse(r.rcpts ?? '[]') as string[]) : r.rcpts ? [r.rcpts] : [],
          status: r.status,
          verdict: r.verdict,
          detail: r.detail,
          subject: r.subject,
          stage: r.stage,
        })),
      };
    },

    hourlyCounts(scope, since) {
      const rScope = scope.all ? TRUE : q`x.recipient IS NOT NULL AND ${scopeOver(q`x.recipient`, scope)}`;
      return sql.all<HourCount>(q`SELECT hour, category, CAST(sum(n) AS BIGINT) AS n FROM (
           SELECT (m.received_at / 3600000) * 3600000 AS hour, coalesce(m.verdict, m.status) AS category, count(*) AS n
             FROM messages m WHERE m.received_at >= ${since} AND ${inScope(scope)} GROUP BY 1, 2
           UNION ALL
           SELECT (x.at / 3600000) * 3600000, 'refused', count(*) FROM smtp_refusals x WHERE x.at >= ${since} AND ${rScope} GROUP BY 1
         ) h GROUP BY hour, category ORDER BY hour`);
    },

    async topSenders(scope, o) {
      if (o.verdicts.length === 0) return [];
      return sql.all<{ sender: string; n: number }>(q`SELECT lower(m.mail_from) AS sender, count(*) AS n FROM messages m
         WHERE m.received_at >= ${o.since} AND m.received_at < ${o.until ?? Number.MAX_SAFE_INTEGER} AND m.verdict IN (${q.join(o.verdicts)}) AND ${inScope(scope)}
         GROUP BY 1 ORDER BY n DESC, sender LIMIT ${o.limit}`);
    },

    topViruses(scope, o) {
      return sql.all<{ name: string; n: number }>(q`SELECT v.value AS name, count(*) AS n FROM messages m, ${json.virusNames}
         WHERE m.received_at >= ${o.since} AND m.verdict = 'virus' AND ${inScope(scope)}
         GROUP BY 1 ORDER BY n DESC, name LIMIT ${o.limit}`);
    },

    async statusCounts(scope) {
      const rows = await sql.all<{ status: string; n: number }>(q`SELECT m.status AS status, count(*) AS n FROM messages m WHERE ${inScope(scope)} GROUP BY 1`);
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },
  };
}
