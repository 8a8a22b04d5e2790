// The spool's shared copy, for several machines (issue 9): every committed message's files are
// also kept in the database, so that a message survives the loss of the machine that accepted it
// and any worker machine can take it up. The envelope row is the shared commit record: a message
// exists in the cluster exactly when its envelope row does (bodies without one are not listed).
//
// Adapter: table spool_files (migrations.ts), one row per (message, kind). Files are held in
// memory while they are copied; they are bounded by smtp.maxMessageBytes (plus our own headers).
import { blobToBuffer, q, type Sql } from '../store/sql.ts';

export type SpoolFileKind = 'body' | 'output' | 'envelope';

export interface SpoolReplica {
  /** Stores (or replaces) one file of a message; durable once it resolves. */
  put(id: string, kind: SpoolFileKind, data: Buffer): Promise<void>;
  get(id: string, kind: SpoolFileKind): Promise<Buffer | undefined>;
  has(id: string, kind: SpoolFileKind): Promise<boolean>;
  /** Removes every file of a message; idempotent. */
  remove(id: string): Promise<void>;
  /** Ids of the messages committed here (those with an envelope), sorted. */
  ids(): Promise<string[]>;
  /** Removes files of messages without an envelope stored before `before` (left by a failed commit); resolves to how many. */
  sweepOrphans(before: number): Promise<number>;
}

export function sqlSpoolReplica(sql: Sql): SpoolReplica {
  return {
    async put(id, kind, data) {
      await sql.run(q`INSERT INTO spool_files (message_id, kind, data, stored_at) VALUES (${id}, ${kind}, ${data}, ${Date.now()})
        ON CONFLICT (message_id, kind) DO UPDATE SET data = excluded.data, stored_at = excluded.stored_at`);
    },
    async get(id, kind) {
      const row = await sql.one<{ data: Uint8Array }>(q`SELECT data FROM spool_files WHERE message_id = ${id} AND kind = ${kind}`);
      return row ? blobToBuffer(row.data) : undefined;
    },
    async has(id, kind) {
      return (await sql.one(q`SELECT 1 AS present FROM spool_files WHERE message_id = ${id} AND kind = ${kind}`)) !== undefined;
    },
    async remove(id) {
      await sql.run(q`DELETE FROM spool_files WHERE message_id = ${id}`);
    },
    async ids() {
      const rows = await sql.all<{ message_id: string }>(q`SELECT message_id FROM spool_files WHERE kind = 'envelope'`);
      // Sorted here, not by the database: PostgreSQL's collation may order differently from the local listing.
      return rows.map((r) => r.message_id).sort();
    },
    sweepOrphans(before) {
      return sql.run(q`DELETE FROM spool_files WHERE stored_at < ${before}
        AND message_id NOT IN (SELECT message_id FROM spool_files WHERE kind = 'envelope')`);
    },
  };
}
