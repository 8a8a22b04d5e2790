// MetadataStore: one row per message the gateway accepted (its log line, its verdict, its scan
// report and where it is now) plus an event trail per message. Contract: every call is atomic;
// `transition` is a compare-and-set, so that two processes can never both release or both
// deliver the same quarantined message. Bodies are not stored here (see BlobStore).
//
// Adapter: node:sqlite in WAL mode, shared by the SMTP, worker and CLI processes of one machine.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ScanReport } from '../../scanners/types.ts';
import { messageQueries, registerFunctions, type MessageQueries } from './message-queries.ts';

export type { RecipientScope, MessageSearch, LogSearch, LogRow, HourCount } from './message-queries.ts';

export type MessageStatus =
  | 'queued' // accepted, waiting for or in the scan
  | 'delivering' // scanned, waiting for or in delivery
  | 'deferred' // delivery failed temporarily, will retry
  | 'delivered'
  | 'quarantined'
  | 'releasing' // released from quarantine, waiting for delivery
  | 'released' // released and delivered
  | 'failed' // delivery failed permanently or gave up
  | 'deleted' // deleted from quarantine
  | 'reported' // issue 8: a spam report to reportspam@/notspam@, learned from, never delivered
  | 'refused'; // accepted on disk but refused at the end of DATA (e.g. queue down): the client keeps it

export interface MessageRecord {
  id: string;
  receivedAt: number;
  clientIp: string;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  subject: string | null;
  status: MessageStatus;
  verdict: string | null;
  reason: string | null;
  report: ScanReport | null;
  lastReply: string | null;
  updatedAt: number;
}

export interface NewMessage {
  id: string;
  receivedAt: number;
  clientIp: string;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
}

export interface MessageEvent {
  at: number;
  kind: string;
  detail: string;
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
  /** Messages still in the gateway's hands (queued, delivering, deferred, releasing), oldest first. */
  inFlight(limit: number): Promise<MessageRecord[]>;
  countByStatus(): Promise<Record<string, number>>;
  addEvent(id: string, kind: string, detail: string): Promise<void>;
  events(id: string): Promise<MessageEvent[]>;
  /** Per-recipient delivery outcome; a recipient recorded 'delivered' is never sent again. */
  recordDelivery(id: string, recipient: string, outcome: DeliveryOutcome, reply: string): Promise<void>;
  deliveries(id: string): Promise<DeliveryRecord[]>;
  /** The message log's record of mail refused before it had a message id. */
  recordRefusal(r: SmtpRefusalRecord): Promise<void>;
  refusals(filter: { limit: number; offset?: number }): Promise<SmtpRefusalRecord[]>;
  /** Closes the database connection (shared with the other stores of the process). */
  close(): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL,
  client_ip TEXT NOT NULL,
  helo TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  rcpt_to TEXT NOT NULL,
  size INTEGER NOT NULL,
  subject TEXT,
  status TEXT NOT NULL,
  verdict TEXT,
  reason TEXT,
  report TEXT,
  last_reply TEXT,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_status ON messages (status, received_at);
CREATE TABLE IF NOT EXISTS message_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_events_id ON message_events (message_id, seq);
CREATE TABLE IF NOT EXISTS deliveries (
  message_id TEXT NOT NULL,
  recipient TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reply TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (message_id, recipient)
);
CREATE TABLE IF NOT EXISTS smtp_refusals (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  client_ip TEXT NOT NULL,
  helo TEXT NOT NULL,
  mail_from TEXT,
  recipient TEXT,
  stage TEXT NOT NULL,
  reply TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS smtp_refusals_at ON smtp_refusals (at);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
`;

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
}

/** The store on an opened database (gateway/store/sqlite.ts openDatabase: WAL, FULL sync, busy timeout). */
export function openSqliteStore(db: DatabaseSync, now: () => number = Date.now): MetadataStore {
  db.exec(SCHEMA);
  registerFunctions(db);

  const insert = db.prepare(
    `INSERT OR IGNORE INTO messages (id, received_at, client_ip, helo, mail_from, rcpt_to, size, status, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)`,
  );
  const setVerdict = db.prepare(
    'UPDATE messages SET verdict = ?, reason = ?, report = ?, subject = ?, updated_at = ? WHERE id = ?',
  );
  // One prepared statement per number of "from" statuses (preparing costs more than running it).
  const casByArity = new Map<number, StatementSync>();
  const cas = (from: MessageStatus[]) => {
    let stmt = casByArity.get(from.length);
    if (!stmt) {
      stmt = db.prepare(
        `UPDATE messages SET status = ?, last_reply = COALESCE(?, last_reply), updated_at = ?
         WHERE id = ? AND status IN (${from.map(() => '?').join(',')})`,
      );
      casByArity.set(from.length, stmt);
    }
    return stmt;
  };
  const getOne = db.prepare('SELECT * FROM messages WHERE id = ?');
  const addEvent = db.prepare('INSERT INTO message_events (message_id, at, kind, detail) VALUES (?, ?, ?, ?)');
  const getEvents = db.prepare('SELECT at, kind, detail FROM message_events WHERE message_id = ? ORDER BY seq');
  const upsertDelivery = db.prepare(
    `INSERT INTO deliveries (message_id, recipient, outcome, reply, at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (message_id, recipient) DO UPDATE SET outcome = excluded.outcome, reply = excluded.reply, at = excluded.at
     WHERE deliveries.outcome <> 'delivered'`,
  );
  const insertRefusal = db.prepare(
    'INSERT INTO smtp_refusals (at, client_ip, helo, mail_from, recipient, stage, reply) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const getRefusals = db.prepare(
    `SELECT at, client_ip AS clientIp, helo, mail_from AS mailFrom, recipient, stage, reply
     FROM smtp_refusals ORDER BY seq DESC LIMIT ? OFFSET ?`,
  );
  const getDeliveries = db.prepare('SELECT recipient, outcome, reply, at FROM deliveries WHERE message_id = ? ORDER BY recipient');

  return {
    ...messageQueries(db, toRecord as (row: never) => MessageRecord),
    recordReceived(m) {
      insert.run(m.id, m.receivedAt, m.clientIp, m.helo, m.mailFrom, JSON.stringify(m.rcptTo), m.size, now());
    },
    recordVerdict(id, v) {
      setVerdict.run(v.verdict, v.reason, JSON.stringify(v.report), v.subject, now(), id);
    },
    setRecipients(id, rcptTo) {
      db.prepare('UPDATE messages SET rcpt_to = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(rcptTo), now(), id);
    },
    transition(id, from, to, lastReply) {
      const result = cas(from).run(to, lastReply ?? null, now(), id, ...from);
      return result.changes === 1;
    },
    get(id) {
      const row = getOne.get(id) as Row | undefined;
      return row && toRecord(row);
    },
    list({ status, limit, offset = 0 }) {
      const rows = status
        ? db.prepare('SELECT * FROM messages WHERE status = ? ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?').all(status, limit, offset)
        : db.prepare('SELECT * FROM messages ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?').all(limit, offset);
      return (rows as unknown as Row[]).map(toRecord);
    },
    inFlight(limit) {
      const rows = db
        .prepare(`SELECT * FROM messages WHERE status IN ('queued','delivering','deferred','releasing') ORDER BY received_at, id LIMIT ?`)
        .all(limit);
      return (rows as unknown as Row[]).map(toRecord);
    },
    countByStatus() {
      const rows = db.prepare('SELECT status, COUNT(*) AS n FROM messages GROUP BY status').all() as { status: string; n: number }[];
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },
    addEvent(id, kind, detail) {
      addEvent.run(id, now(), kind, detail);
    },
    events(id) {
      return getEvents.all(id) as unknown as MessageEvent[];
    },
    recordDelivery(id, recipient, outcome, reply) {
      upsertDelivery.run(id, recipient, outcome, reply, now());
    },
    deliveries(id) {
      return getDeliveries.all(id) as unknown as DeliveryRecord[];
    },
    recordRefusal(r) {
      insertRefusal.run(r.at, r.clientIp, r.helo, r.mailFrom, r.recipient, r.stage, r.reply);
    },
    refusals({ limit, offset = 0 }) {
      return getRefusals.all(limit, offset) as unknown as SmtpRefusalRecord[];
    },
    close() {
      db.close();
    },
  };
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
  };
}
