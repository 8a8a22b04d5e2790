// MetadataStore: one row per message the gateway accepted (its log line, its verdict, its scan
// report and where it is now) plus an event trail per message. Contract: every call is atomic;
// `transition` is a compare-and-set, so that two processes can never both release or both
// deliver the same quarantined message. Bodies are not stored here (see BlobStore).
//
// Adapter: SQL through gateway/store/sql.ts, on SQLite (one machine: the SMTP, worker and CLI
// processes share its file) or PostgreSQL (several machines). The tables are in migrations.ts.
import type { ScanReport } from '../../scanners/types.ts';
import type { Envelope } from '../spool/spool.ts';
import { messageQueries, type MessageQueries } from './message-queries.ts';
import type { MessageRecord, MessageStatus } from './message-record.ts';
import { groupCommit, ItemFailed } from './group-commit.ts';
import { q, type Sql } from './sql.ts';

export type { RecipientScope, MessageSearch, LogSearch, LogRow, HourCount } from './message-queries.ts';
export type { MessageRecord, MessageStatus } from './message-record.ts';

/** Statuses of mail still in the gateway's hands: its files are in the spool. */
export const IN_FLIGHT: readonly MessageStatus[] = ['queued', 'delivering', 'deferred', 'releasing', 'held'];

/**
 * Final statuses whose message may have a body in the BlobStore besides quarantined: a failed
 * delivery's copy (delivery/deliver.ts), a released message's quarantined body, a spam report
 * (reports/process.ts), and a deleted one whose body removal failed.
 */
export const KEPT_AFTER_QUARANTINE: readonly MessageStatus[] = ['failed', 'released', 'reported', 'deleted'];

/**
 * The event that marks a message whose body retention (gateway/retention.ts) has removed: a
 * quarantined message expired, or the kept copy of another one removed. It is written once.
 */
export const EXPIRED_EVENT = 'expired';

export interface NewMessage {
  id: string;
  receivedAt: number;
  clientIp: string;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  /** Who submitted it (submission listener); its user is kept as the record's submittedBy. */
  submitted?: { user?: string };
  /** With the fields of an Envelope (tls, dsn, …) it is kept whole as the record's envelope. */
  tls?: boolean;
}

export interface MessageEvent {
  at: number;
  kind: string;
  detail: string;
  /** The event's structured fields (gateway/ledger/events.ts); null for events written without them. */
  data: Record<string, unknown> | null;
}

/** An event to write: its kind, its display text, and its fields. */
export interface NewEvent {
  kind: string;
  detail: string;
  data?: Record<string, unknown>;
}

/**
 * One step of a message's life, written in one transaction (gateway/ledger/ is its only caller):
 * when `to` is given, the status changes by compare-and-set from `from`, and if it does not,
 * nothing else is written either.
 */
export interface LedgerStep {
  id: string;
  from?: readonly MessageStatus[];
  to?: MessageStatus;
  lastReply?: string;
  verdict?: { verdict: string; reason: string; report: ScanReport; subject: string | null };
  rcptTo?: string[];
  events?: NewEvent[];
  /** Delivery outcomes written with the step (as recordDelivery writes them), so that the last results and the final status are one commit. */
  deliveries?: { recipient: string; outcome: DeliveryOutcome; reply: string }[];
}

export type DeliveryOutcome = 'delivered' | 'deferred' | 'failed';

/** A transaction (or one recipient of it) refused during the SMTP conversation: it has no message id. */
export interface SmtpRefusalRecord {
  at: number;
  clientIp: string;
  helo: string;
  mailFrom: string | null;
  recipient: string | null;
  /** The SMTP stage that refused: connect, helo, mail, rcpt, data. */
  stage: string;
  /** What the client was told, e.g. "554 5.7.1 <x@y>: Relay access denied …". */
  reply: string;
}

export interface DeliveryRecord {
  recipient: string;
  outcome: DeliveryOutcome;
  reply: string;
  at: number;
}

/** The console's searches and counts (message-queries.ts) are part of the store. */
export interface MetadataStore extends MessageQueries {
  recordReceived(m: NewMessage): Promise<void>;
  recordVerdict(id: string, v: { verdict: string; reason: string; report: ScanReport; subject: string | null }): Promise<void>;
  /**
   * Narrows a message's recipients to those it is still about (issue 5: recipients whose content
   * policy differs are split off into messages of their own, gateway/pipeline/act.ts).
   */
  setRecipients(id: string, rcptTo: string[]): Promise<void>;
  /** Sets the status only if the current one is in `from`; returns whether it did. */
  transition(id: string, from: MessageStatus[], to: MessageStatus, lastReply?: string): Promise<boolean>;
  get(id: string): Promise<MessageRecord | undefined>;
  list(filter: { status?: MessageStatus; limit: number; offset?: number }): Promise<MessageRecord[]>;
  /** Messages still in the gateway's hands (queued, delivering, deferred, releasing, held), oldest first. */
  inFlight(limit: number): Promise<MessageRecord[]>;
  countByStatus(): Promise<Record<string, number>>;
  addEvent(id: string, kind: string, detail: string, data?: Record<string, unknown>): Promise<void>;
  /**
   * Writes one step of a message's life in one transaction (on SQLite possibly shared with the
   * steps of other messages: group commit); false when its compare-and-set failed.
   */
  step(s: LedgerStep): Promise<boolean>;
  events(id: string): Promise<MessageEvent[]>;
  /** Per-recipient delivery outcome; a recipient recorded 'delivered' is never sent again. */
  recordDelivery(id: string, recipient: string, outcome: DeliveryOutcome, reply: string): Promise<void>;
  deliveries(id: string): Promise<DeliveryRecord[]>;
  /** The message log's record of mail refused before it had a message id. */
  recordRefusal(r: SmtpRefusalRecord): Promise<void>;
  refusals(filter: { limit: number; offset?: number }): Promise<SmtpRefusalRecord[]>;
  /**
   * Retention (gateway/retention.ts): up to `limit` messages received before `before` whose body
   * may still be in the BlobStore, oldest first: every quarantined one, and those of status
   * KEPT_AFTER_QUARANTINE without an EXPIRED_EVENT yet (the caller removes their body, if any,
   * then records that event, so that a message is returned until it has been handled).
   */
  expiredKept(before: number, limit: number): Promise<MessageRecord[]>;
  /**
   * Adds the event unless the message already has one of this kind, atomically (two processes
   * doing it at once add one), and only while the message exists; returns whether this call added it.
   */
  addEventOnce(id: string, kind: string, detail: string): Promise<boolean>;
  /**
   * Retention: deletes, in one transaction, the messages received before `before` in a final
   * state (never in flight, never quarantined: their body is still kept and the log row is how
   * the console finds it), with their events and deliveries, and the SMTP refusals older than
   * `before`; at most `limit` of each (oldest first). Returns how many of each went.
   */
  purgeLog(before: number, limit: number): Promise<{ messages: number; refusals: number }>;
  /**
   * When a write through this store last committed (epoch ms; 0: none yet): proof, for a moment,
   * that the database takes writes (gateway/delivery/recorded.ts). Optional for wrappers.
   */
  lastWriteAt?(): number;
  /** Closes the database connection (shared with the other stores of the process). */
  close(): Promise<void>;
}

interface Row {
  id: string;
  received_at: number;
  client_ip: string;
  helo: string;
  mail_from: string;
  rcpt_to: string;
  size: number;
  subject: string | null;
  status: MessageStatus;
  verdict: string | null;
  reason: string | null;
  report: string | null;
  last_reply: string | null;
  updated_at: number;
  submitted_by: string | null;
  envelope: string | null;
}

/** The store on an opened, migrated database (sql.ts openSql, migrations.ts). */
export function openMetadataStore(sql: Sql, now: () => number = Date.now): MetadataStore {
  const records = async (query: ReturnType<typeof q>) => (await sql.all<Row>(query)).map(toRecord);
  let lastWrite = 0;
  /** The writes of a message's path note when they committed (lastWriteAt). */
  const noted = async <T>(write: Promise<T>): Promise<T> => {
    const result = await write;
    lastWrite = Date.now();
    return result;
  };
  const stepAlone = (s: LedgerStep) => noted(sql.transaction((tx) => writeStep(tx, s, now)));
  const stepsTogether = async (batch: LedgerStep[]): Promise<boolean[]> => {
    if (batch.length === 1) return [await stepAlone(batch[0])];
    return noted(
      sql.transaction(async (tx) => {
        const done: boolean[] = [];
        for (const s of batch) {
          try {
            done.push(await writeStep(tx, s, now));
          } catch (err) {
            throw new ItemFailed(`the step of ${s.id} failed`, { cause: err });
          }
        }
        return done;
      }),
    );
  };
  return {
    ...messageQueries(sql, toRecord as (row: never) => MessageRecord),
    recordReceived: groupCommit(async (batch: NewMessage[]) => {
      if (batch.length === 1) await noted(sql.run(insertReceived(batch[0], now())));
      else
        await noted(
          sql.transaction(async (tx) => {
            for (const m of batch) await tx.run(insertReceived(m, now()));
          }),
        );
      return batch.map(() => undefined);
    }),
    async recordVerdict(id, v) {
      await sql.run(q`UPDATE messages SET verdict = ${v.verdict}, reason = ${v.reason}, report = ${JSON.stringify(v.report)}, subject = ${v.subject}, updated_at = ${now()}
        WHERE id = ${id}`);
    },
    async setRecipients(id, rcptTo) {
      await sql.run(q`UPDATE messages SET rcpt_to = ${JSON.stringify(rcptTo)}, updated_at = ${now()} WHERE id = ${id}`);
    },
    async transition(id, from, to, lastReply) {
      if (from.length === 0) return false;
      const changed = await sql.run(q`UPDATE messages SET status = ${to}, last_reply = COALESCE(${lastReply ?? null}, last_reply), updated_at = ${now()}
        WHERE id = ${id} AND status IN (${q.join(from)})`);
      return changed === 1;
    },
    async get(id) {
      const row = await sql.one<Row>(q`SELECT * FROM messages WHERE id = ${id}`);
      return row && toRecord(row);
    },
    list({ status, limit, offset = 0 }) {
      return records(
        status
          ? q`SELECT * FROM messages WHERE status = ${status} ORDER BY received_at DESC, id DESC LIMIT ${limit} OFFSET ${offset}`
          : q`SELECT * FROM messages ORDER BY received_at DESC, id DESC LIMIT ${limit} OFFSET ${offset}`,
      );
    },
    inFlight(limit) {
      return records(q`SELECT * FROM messages WHERE status IN (${q.join(IN_FLIGHT)}) ORDER BY received_at, id LIMIT ${limit}`);
    },
    async countByStatus() {
      const rows = await sql.all<{ status: string; n: number }>(q`SELECT status, COUNT(*) AS n FROM messages GROUP BY status`);
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },
    async addEvent(id, kind, detail, data) {
      await noted(sql.run(insertEvent(id, now(), { kind, detail, data })));
    },
    lastWriteAt: () => lastWrite,
    // SQLite: steps of concurrent messages share one commit (one WAL fsync, which blocks the
    // event loop for milliseconds). PostgreSQL commits concurrently on its pool connections.
    step: sql.dialect === 'sqlite' ? groupCommit(stepsTogether, stepAlone) : stepAlone,
    async events(id) {
      const rows = await sql.all<Omit<MessageEvent, 'data'> & { data: string | null }>(
        q`SELECT at, kind, detail, data FROM message_events WHERE message_id = ${id} ORDER BY seq`,
      );
      return rows.map((r) => ({ ...r, data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null }));
    },
    async recordDelivery(id, recipient, outcome, reply) {
      await noted(sql.run(upsertDelivery(id, recipient, outcome, reply, now())));
    },
    deliveries(id) {
      return sql.all<DeliveryRecord>(q`SELECT recipient, outcome, reply, at FROM deliveries WHERE message_id = ${id} ORDER BY recipient`);
    },
    async recordRefusal(r) {
      await sql.run(q`INSERT INTO smtp_refusals (at, client_ip, helo, mail_from, recipient, stage, reply)
        VALUES (${r.at}, ${r.clientIp}, ${r.helo}, ${r.mailFrom}, ${r.recipient}, ${r.stage}, ${r.reply})`);
    },
    refusals({ limit, offset = 0 }) {
      return sql.all<SmtpRefusalRecord>(q`SELECT at, client_ip AS "clientIp", helo, mail_from AS "mailFrom", recipient, stage, reply
        FROM smtp_refusals ORDER BY seq DESC LIMIT ${limit} OFFSET ${offset}`);
    },
    expiredKept(before, limit) {
      return records(q`SELECT * FROM messages m WHERE m.received_at < ${before}
        AND (m.status = 'quarantined' OR (m.status IN (${q.join(KEPT_AFTER_QUARANTINE)})
          AND NOT EXISTS (SELECT 1 FROM message_events e WHERE e.message_id = m.id AND e.kind = ${EXPIRED_EVENT})))
        ORDER BY m.received_at, m.id LIMIT ${limit}`);
    },
    addEventOnce(id, kind, detail) {
      return sql.transaction(async (tx) => {
        // SQLite: the transaction already holds the write lock. PostgreSQL: the message row's lock
        // makes a second caller wait, and its NOT EXISTS (a new snapshot) then sees this event.
        if (tx.dialect === 'postgres') await tx.run(q`SELECT id FROM messages WHERE id = ${id} FOR UPDATE`);
        const added = await tx.run(q`INSERT INTO message_events (message_id, at, kind, detail) SELECT ${id}, ${now()}, ${kind}, ${detail}
          WHERE EXISTS (SELECT 1 FROM messages WHERE id = ${id})
            AND NOT EXISTS (SELECT 1 FROM message_events WHERE message_id = ${id} AND kind = ${kind})`);
        return added === 1;
      });
    },
    purgeLog(before, limit) {
      const cap = q`LIMIT ${limit}`;
      const kept: MessageStatus[] = [...IN_FLIGHT, 'quarantined'];
      return sql.transaction(async (tx) => {
        // PostgreSQL: rows another purge (another node) is deleting are skipped, not waited for.
        const lock = tx.dialect === 'postgres' ? q`FOR UPDATE SKIP LOCKED` : q``;
        const ids = (
          await tx.all<{ id: string }>(q`SELECT id FROM messages WHERE received_at < ${before} AND status NOT IN (${q.join(kept)})
            ORDER BY received_at, id ${cap} ${lock}`)
        ).map((r) => r.id);
        let messages = 0;
        if (ids.length > 0) {
          await tx.run(q`DELETE FROM message_events WHERE message_id IN (${q.join(ids)})`);
          await tx.run(q`DELETE FROM deliveries WHERE message_id IN (${q.join(ids)})`);
          messages = await tx.run(q`DELETE FROM messages WHERE id IN (${q.join(ids)})`);
        }
        const refusals = await tx.run(q`DELETE FROM smtp_refusals WHERE seq IN (SELECT seq FROM smtp_refusals WHERE at < ${before} ORDER BY seq ${cap})`);
        return { messages, refusals };
      });
    },
    close() {
      return sql.close();
    },
  };
}

function insertReceived(m: NewMessage, at: number) {
  const envelope = m.tls === undefined ? null : JSON.stringify(m);
  return q`INSERT INTO messages (id, received_at, client_ip, helo, mail_from, rcpt_to, size, status, updated_at, submitted_by, envelope)
        VALUES (${m.id}, ${m.receivedAt}, ${m.clientIp}, ${m.helo}, ${m.mailFrom}, ${JSON.stringify(m.rcptTo)}, ${m.size}, 'queued', ${at}, ${m.submitted?.user ?? null}, ${envelope})
        ON CONFLICT (id) DO NOTHING`;
}

/**
 * One step of a message's life inside a transaction; false, having written nothing, when its
 * compare-and-set failed.
 */
async function writeStep(tx: Sql, s: LedgerStep, now: () => number): Promise<boolean> {
  const cas = s.to !== undefined;
  if (cas && (!s.from || s.from.length === 0)) return false;
  // The status, verdict and recipients are one UPDATE: one statement, and the compare-and-set
  // guards all of them.
  const sets: ReturnType<typeof q>[] = [];
  if (cas) sets.push(q`status = ${s.to}, last_reply = COALESCE(${s.lastReply ?? null}, last_reply)`);
  const v = s.verdict;
  if (v) sets.push(q`verdict = ${v.verdict}, reason = ${v.reason}, report = ${JSON.stringify(v.report)}, subject = ${v.subject}`);
  if (s.rcptTo) sets.push(q`rcpt_to = ${JSON.stringify(s.rcptTo)}`);
  if (sets.length > 0) {
    const where = cas ? q`id = ${s.id} AND status IN (${q.join([...s.from!])})` : q`id = ${s.id}`;
    const changed = await tx.run(q`UPDATE messages SET ${q.join(sets)}, updated_at = ${now()} WHERE ${where}`);
    if (cas && changed !== 1) return false;
  }
  for (const d of s.deliveries ?? []) await tx.run(upsertDelivery(s.id, d.recipient, d.outcome, d.reply, now()));
  for (const e of s.events ?? []) await tx.run(insertEvent(s.id, now(), e));
  return true;
}

/** A recipient's outcome; one recorded 'delivered' is never downgraded (it is never sent again). */
function upsertDelivery(id: string, recipient: string, outcome: DeliveryOutcome, reply: string, at: number) {
  return q`INSERT INTO deliveries (message_id, recipient, outcome, reply, at) VALUES (${id}, ${recipient}, ${outcome}, ${reply}, ${at})
        ON CONFLICT (message_id, recipient) DO UPDATE SET outcome = excluded.outcome, reply = excluded.reply, at = excluded.at
        WHERE deliveries.outcome <> 'delivered'`;
}

function toRecord(r: Row): MessageRecord {
  return {
    id: r.id,
    receivedAt: r.received_at,
    clientIp: r.client_ip,
    helo: r.helo,
    mailFrom: r.mail_from,
    rcptTo: JSON.parse(r.rcpt_to) as string[],
    size: r.size,
    subject: r.subject,
    status: r.status,
    verdict: r.verdict,
    reason: r.reason,
    report: r.report ? (JSON.parse(r.report) as ScanReport) : null,
    lastReply: r.last_reply,
    updatedAt: r.updated_at,
    submittedBy: r.submitted_by ?? null,
    envelope: r.envelope ? (JSON.parse(r.envelope) as Envelope) : null,
  };
}

function insertEvent(id: string, at: number, e: NewEvent) {
  return q`INSERT INTO message_events (message_id, at, kind, detail, data) VALUES (${id}, ${at}, ${e.kind}, ${e.detail}, ${e.data ? JSON.stringify(e.data) : null})`;
}
