// LearnLog: every message that was taught to the spam filter (or that we tried to teach), from
// the console's buttons, from report-spam uploads and (later) from the reportspam@ address.
// It answers "did anyone report this?" and lets a repeated report be recognised by its hash.
// The table is in migrations.ts; the queries run on SQLite or PostgreSQL (sql.ts).
import { q, type Sql } from './sql.ts';

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

interface Row {
  at: number;
  actor: string;
  source: LearnSource;
  message_id: string | null;
  name: string | null;
  sha256: string;
  size: number;
  class: LearnClass;
  outcome: LearnOutcome;
  detail: string;
}

export function openLearnLog(sql: Sql, now: () => number = Date.now): LearnLog {
  return {
    async record(r) {
      await sql.run(
        q`INSERT INTO learn_log (at, actor, source, message_id, name, sha256, size, class, outcome, detail)
          VALUES (${now()}, ${r.actor}, ${r.source}, ${r.messageId}, ${r.name?.slice(0, 255) ?? null}, ${r.sha256}, ${r.size}, ${r.class}, ${r.outcome}, ${r.detail.slice(0, 1000)})`,
      );
    },
    async learnedBefore(sha256, cls) {
      return (await sql.one(q`SELECT 1 AS hit FROM learn_log WHERE sha256 = ${sha256} AND class = ${cls} AND outcome = 'learned' LIMIT 1`)) !== undefined;
    },
    async recent(f) {
      const cols = q`at, actor, source, message_id, name, sha256, size, class, outcome, detail`;
      const rows = await sql.all<Row>(
        f.actor
          ? q`SELECT ${cols} FROM learn_log WHERE actor = ${f.actor} ORDER BY seq DESC LIMIT ${f.limit}`
          : q`SELECT ${cols} FROM learn_log ORDER BY seq DESC LIMIT ${f.limit}`,
      );
      return rows.map((r) => ({
        at: r.at,
        actor: r.actor,
        source: r.source,
        messageId: r.message_id,
        name: r.name,
        sha256: r.sha256,
        size: r.size,
        class: r.class,
        outcome: r.outcome,
        detail: r.detail,
      }));
    },
  };
}
