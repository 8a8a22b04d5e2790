// ReleaseRequestStore: an end user's request that the admins of their domain release a message
// they may not release themselves (rules/release-rights.ts), and the admin's answer.
// Contract: a message has at most one pending request (a unique partial index: a second request,
// from any process, is refused, not duplicated); `decide` is a compare-and-set from pending, so of
// two admins answering at once only one wins, and a request is approved (released) once. `reopen`
// puts an approved request back to pending when the release itself failed.
// The table is in migrations.ts; the queries run on SQLite or PostgreSQL (sql.ts).
import { q, type Sql } from './sql.ts';

export type RequestStatus = 'pending' | 'approved' | 'denied';

export interface ReleaseRequest {
  id: number;
  messageId: string;
  /** Who asked: a console username, or "digest:<address>" for a digest link. */
  requester: string;
  /** The recipient address the request is for (lower case). */
  recipient: string;
  /** Its domain: the admins of this domain see the request. */
  domain: string;
  note: string;
  status: RequestStatus;
  createdAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  answer: string;
}

/** Whose requests to read: all, or those of these domains and/or these recipient addresses. */
export type RequestScope = { all: true } | { all?: false; domains: string[]; addresses: string[] };

export interface ReleaseRequestStore {
  /** A new pending request; `exists` when the message already has a pending one. */
  create(r: { messageId: string; requester: string; recipient: string; note: string }): Promise<{ ok: true; id: number } | { ok: false; reason: 'exists' }>;
  get(id: number): Promise<ReleaseRequest | undefined>;
  /** Newest first. */
  list(scope: RequestScope, o: { status?: RequestStatus; limit: number }): Promise<ReleaseRequest[]>;
  countPending(scope: RequestScope): Promise<number>;
  /** The requests about one message, newest first. */
  forMessage(messageId: string): Promise<ReleaseRequest[]>;
  /** pending → approved/denied; false when it was not pending any more. */
  decide(id: number, status: 'approved' | 'denied', by: string, answer: string): Promise<boolean>;
  /** approved → pending (the release failed; the admin can try again). */
  reopen(id: number): Promise<void>;
}

interface Row {
  id: number;
  message_id: string;
  requester: string;
  recipient: string;
  domain: string;
  note: string;
  status: RequestStatus;
  created_at: number;
  decided_at: number | null;
  decided_by: string | null;
  answer: string;
}

const toRequest = (r: Row): ReleaseRequest => ({
  id: Number(r.id),
  messageId: r.message_id,
  requester: r.requester,
  recipient: r.recipient,
  domain: r.domain,
  note: r.note,
  status: r.status,
  createdAt: Number(r.created_at),
  decidedAt: r.decided_at === null ? null : Number(r.decided_at),
  decidedBy: r.decided_by,
  answer: r.answer,
});

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

function scopeWhere(scope: RequestScope) {
  if (scope.all) return q`1 = 1`;
  const parts = [];
  if (scope.domains.length) parts.push(q`domain IN (${q.join(scope.domains.map((d) => d.toLowerCase()))})`);
  if (scope.addresses.length) parts.push(q`recipient IN (${q.join(scope.addresses.map((a) => a.toLowerCase()))})`);
  return parts.length ? q`(${q.join(parts, q` OR `)})` : q`1 = 0`;
}

export function openReleaseRequestStore(sql: Sql, now: () => number = Date.now): ReleaseRequestStore {
  return {
    async create(r) {
      const recipient = r.recipient.toLowerCase();
      const row = await sql.one<{ id: number }>(
        q`INSERT INTO release_requests (message_id, requester, recipient, domain, note, status, created_at)
          VALUES (${r.messageId}, ${r.requester}, ${recipient}, ${domainOf(recipient)}, ${r.note.slice(0, 500)}, 'pending', ${now()})
          ON CONFLICT DO NOTHING RETURNING id`,
      );
      return row ? { ok: true, id: Number(row.id) } : { ok: false, reason: 'exists' };
    },
    async get(id) {
      const r = await sql.one<Row>(q`SELECT * FROM release_requests WHERE id = ${id}`);
      return r && toRequest(r);
    },
    async list(scope, o) {
      const status = o.status ? q`status = ${o.status}` : q`1 = 1`;
      const rows = await sql.all<Row>(
        q`SELECT * FROM release_requests WHERE ${scopeWhere(scope)} AND ${status} ORDER BY created_at DESC, id DESC LIMIT ${o.limit}`,
      );
      return rows.map(toRequest);
    },
    async countPending(scope) {
      const r = await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM release_requests WHERE ${scopeWhere(scope)} AND status = 'pending'`);
      return Number(r?.n ?? 0);
    },
    async forMessage(messageId) {
      const rows = await sql.all<Row>(q`SELECT * FROM release_requests WHERE message_id = ${messageId} ORDER BY created_at DESC, id DESC LIMIT 20`);
      return rows.map(toRequest);
    },
    async decide(id, status, by, answer) {
      return (
        (await sql.run(
          q`UPDATE release_requests SET status = ${status}, decided_at = ${now()}, decided_by = ${by}, answer = ${answer.slice(0, 500)} WHERE id = ${id} AND status = 'pending'`,
        )) === 1
      );
    },
    async reopen(id) {
      await sql.run(
        q`UPDATE release_requests SET status = 'pending', decided_at = NULL, decided_by = NULL, answer = '' WHERE id = ${id} AND status = 'approved'`,
      );
    },
  };
}
