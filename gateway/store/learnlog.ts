// LearnLog: every message that was taught to the spam filter (or that we tried to teach), from
// the console's buttons, from report-spam uploads and (later) from the reportspam@ address.
// It answers "did anyone report this?" and lets a repeated report be recognised by its hash.
import type { DatabaseSync } from 'node:sqlite';

export type LearnClass = 'spam' | 'ham';
export type LearnSource = 'console' | 'upload' | 'paste' | 'reportspam' | 'digest';
export type LearnOutcome = 'learned' | 'already-learned' | 'refused' | 'failed';

export interface LearnRecord {
  at: number;
  actor: string;
  source: LearnSource;
  messageId: string | null;
  /** The uploaded file's name, as the browser sent it (untrusted text). */
  name: string | null;
  sha256: string;
  size: number;
  class: LearnClass;
  outcome: LearnOutcome;
  detail: string;
}

export interface LearnLog {
  record(r: Omit<LearnRecord, 'at'>): Promise<void>;
  /** Whether this exact message (by hash) was learned as this class before. */
  learnedBefore(sha256: string, cls: LearnClass): Promise<boolean>;
  recent(f: { actor?: string; limit: number }): Promise<LearnRecord[]>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS learn_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  source TEXT NOT NULL,
  message_id TEXT,
  name TEXT,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  class TEXT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS learn_log_sha ON learn_log (sha256, class, outcome);
`;

export function openLearnLog(db: DatabaseSync, now: () => number = Date.now): LearnLog {
  db.exec(SCHEMA);
  return {
    record(r) {
      db.prepare(
        'INSERT INTO learn_log (at, actor, source, message_id, name, sha256, size, class, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(now(), r.actor, r.source, r.messageId, r.name?.slice(0, 255) ?? null, r.sha256, r.size, r.class, r.outcome, r.detail.slice(0, 1000));
    },
    learnedBefore(sha256, cls) {
      return db.prepare(`SELECT 1 FROM learn_log WHERE sha256 = ? AND class = ? AND outcome = 'learned' LIMIT 1`).get(sha256, cls) !== undefined;
    },
    recent(f) {
      const rows = f.actor
        ? db.prepare('SELECT * FROM learn_log WHERE actor = ? ORDER BY seq DESC LIMIT ?').all(f.actor, f.limit)
        : db.prepare('SELECT * FROM learn_log ORDER BY seq DESC LIMIT ?').all(f.limit);
      return (rows as unknown as Record<string, unknown>[]).map((r) => ({
        at: r.at as number,
        actor: r.actor as string,
        source: r.source as LearnSource,
        messageId: r.message_id as string | null,
        name: r.name as string | null,
        sha256: r.sha256 as string,
        size: r.size as number,
        class: r.class as LearnClass,
        outcome: r.outcome as LearnOutcome,
        detail: r.detail as string,
      }));
    },
  };
}
