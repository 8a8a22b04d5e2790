// DigestStore: the single-use release tokens of quarantine digests, and which digest runs
// happened (one per day, even with several console processes). A token row binds one message
// to one recipient and an expiry; the link carries only an HMAC-signed token id, and `use` is a
// compare-and-set, so a link works once.
import type { DatabaseSync } from 'node:sqlite';

export interface ReleaseToken {
  id: string;
  messageId: string;
  recipient: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface DigestStore {
  addToken(t: Omit<ReleaseToken, 'usedAt' | 'createdAt'>): Promise<void>;
  getToken(id: string): Promise<ReleaseToken | undefined>;
  /** Marks the token used; false when it was used already or has expired. */
  useToken(id: string): Promise<boolean>;
  /** Claims the digest run for a day ("2026-11-24"); false when another process already did. */
  claimRun(day: string): Promise<boolean>;
  /** Messages already listed in a digest to this recipient (to list each message once). */
  alreadySent(recipient: string, messageIds: string[]): Promise<Set<string>>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS digest_tokens (
  id TEXT PRIMARY KEY,
  message_id TEXT NOT NULL,
  recipient TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE INDEX IF NOT EXISTS digest_tokens_rcpt ON digest_tokens (recipient, message_id);
CREATE TABLE IF NOT EXISTS digest_runs (
  day TEXT PRIMARY KEY,
  at INTEGER NOT NULL
);
`;

export function openDigestStore(db: DatabaseSync, now: () => number = Date.now): DigestStore {
  db.exec(SCHEMA);
  return {
    addToken(t) {
      db.prepare('INSERT INTO digest_tokens (id, message_id, recipient, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(
        t.id,
        t.messageId,
        t.recipient.toLowerCase(),
        now(),
        t.expiresAt,
      );
    },
    getToken(id) {
      const r = db.prepare('SELECT * FROM digest_tokens WHERE id = ?').get(id) as Record<string, unknown> | undefined;
      return (
        r && {
          id: r.id as string,
          messageId: r.message_id as string,
          recipient: r.recipient as string,
          createdAt: r.created_at as number,
          expiresAt: r.expires_at as number,
          usedAt: (r.used_at as number | null) ?? null,
        }
      );
    },
    useToken(id) {
      return db.prepare('UPDATE digest_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?').run(now(), id, now()).changes === 1;
    },
    claimRun(day) {
      return db.prepare('INSERT OR IGNORE INTO digest_runs (day, at) VALUES (?, ?)').run(day, now()).changes === 1;
    },
    alreadySent(recipient, ids) {
      if (ids.length === 0) return new Set();
      const rows = db
        .prepare(`SELECT DISTINCT message_id FROM digest_tokens WHERE recipient = ? AND message_id IN (${ids.map(() => '?').join(',')})`)
        .all(recipient.toLowerCase(), ...ids) as { message_id: string }[];
      return new Set(rows.map((r) => r.message_id));
    },
  };
}
