// BlobStore: quarantined message bodies, kept apart from the spool so that the spool holds only
// work in progress. Contract: after put() resolves the body is durable (fsync'd); open() streams
// it back byte for byte; delete() is idempotent.
//
// Adapters: one file per message under <dir> (one machine); a row per message in the database
// (several machines, issue 9: any node may hold, show or release a quarantined message).
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { blobToBuffer, q, type Sql } from './sql.ts';

export interface BlobStore {
  put(id: string, fromFile: string): Promise<void>;
  open(id: string): Readable;
  size(id: string): Promise<number | undefined>;
  delete(id: string): Promise<void>;
}

export function fileBlobStore(dir: string): BlobStore {
  const file = (id: string) => {
    if (!/^[0-9A-Za-z_-]+$/.test(id)) throw new Error(`invalid message id: ${id}`);
    return path.join(dir, `${id}.eml`);
  };
  return {
    async put(id, fromFile) {
      await fs.mkdir(dir, { recursive: true });
      const tmp = `${file(id)}.tmp`;
      await fs.copyFile(fromFile, tmp);
      const handle = await fs.open(tmp, 'r');
      await handle.sync();
      await handle.close();
      await fs.rename(tmp, file(id));
    },
    open(id) {
      return createReadStream(file(id));
    },
    async size(id) {
      return fs.stat(file(id)).then(
        (s) => s.size,
        () => undefined,
      );
    },
    async delete(id) {
      await fs.rm(file(id), { force: true });
    },
  };
}

/** Chunks open() streams a database body in, so that consumers see ordinary file-sized reads. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Quarantined bodies in table quarantine_bodies. A body is read into memory whole to be stored
 * or streamed back: it is bounded by smtp.maxMessageBytes (it is an accepted message, or our
 * copy of one). put() is durable when it resolves (the database has committed the row).
 */
export function sqlBlobStore(sql: Sql): BlobStore {
  return {
    async put(id, fromFile) {
      const data = await fs.readFile(fromFile);
      await sql.run(q`INSERT INTO quarantine_bodies (message_id, data, stored_at) VALUES (${id}, ${data}, ${Date.now()})
        ON CONFLICT (message_id) DO UPDATE SET data = excluded.data, stored_at = excluded.stored_at`);
    },
    open(id) {
      // Lazy, like a file stream: nothing is fetched until the stream is read, and a missing
      // body errors the stream (ENOENT, as a missing file would) rather than throwing here.
      async function* chunks() {
        const row = await sql.one<{ data: Uint8Array }>(q`SELECT data FROM quarantine_bodies WHERE message_id = ${id}`);
        if (!row) throw Object.assign(new Error(`no quarantined body for message ${id}`), { code: 'ENOENT' });
        const data = blobToBuffer(row.data);
        for (let at = 0; at < data.length; at += CHUNK_BYTES) yield data.subarray(at, at + CHUNK_BYTES);
      }
      return Readable.from(chunks(), { objectMode: false });
    },
    async size(id) {
      const row = await sql.one<{ size: number }>(q`SELECT length(data) AS size FROM quarantine_bodies WHERE message_id = ${id}`);
      return row ? Number(row.size) : undefined;
    },
    async delete(id) {
      await sql.run(q`DELETE FROM quarantine_bodies WHERE message_id = ${id}`);
    },
  };
}
