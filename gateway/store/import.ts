// Copies the metadata of one database into another, new one: how a single machine (SQLite file,
// quarantined bodies as files under dataDir/quarantine) becomes several (PostgreSQL), without
// losing its console accounts, lists, message log, quarantine and audit trail
// (`mailmoat migrate --import-sqlite FILE`, README "From one machine to several").
//
// Rules: both schemas must be up to date, the target must be empty (never a merge), and the source
// must hold no message in flight (the spool, on disk, is not imported: the machine is drained
// first). Everything is written in one transaction on the target, so an import that fails leaves
// the target as empty as it was. Rows keep their keys (ids, seq), and PostgreSQL's sequences are
// moved past the copied ids so that new rows do not collide with them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { IN_FLIGHT } from './metadata.ts';
import { DatabaseError, migrationStatus } from './migrations.ts';
import { blobToBuffer, q, type Query, type Sql } from './sql.ts';

interface TableSpec {
  name: string;
  /**
   * Columns that order the rows. With `unique` (the primary key) the rows are read in pages after
   * the last key seen; without (a table with no key), they are ordered by every column and paged
   * by offset (rows equal in every column are interchangeable).
   */
  key: string[];
  unique: boolean;
  /** The auto-numbered column (BIGSERIAL on PostgreSQL), whose sequence is moved after the copy. */
  serial?: string;
  /** Rows per page read and per INSERT (smaller for tables of message bodies, to bound memory). */
  batch?: number;
}

const BATCH = 500;
/** Rows of a table holding message bodies (each up to smtp.maxMessageBytes) per page. */
const BODY_BATCH = 8;

/**
 * Every table of the schema (migrations.ts), in an order that respects the foreign keys
 * (console_sessions refers to console_accounts). A migration that adds a table must add it here:
 * test/gateway/store/import.test.ts fails while a table of the migrated schema is missing.
 */
export const IMPORTED_TABLES: readonly TableSpec[] = [
  { name: 'messages', key: ['id'], unique: true },
  { name: 'message_events', key: ['seq'], unique: true, serial: 'seq' },
  { name: 'deliveries', key: ['message_id', 'recipient'], unique: true },
  { name: 'smtp_refusals', key: ['seq'], unique: true, serial: 'seq' },
  { name: 'list_entries', key: ['id'], unique: true, serial: 'id' },
  { name: 'console_accounts', key: ['id'], unique: true, serial: 'id' },
  { name: 'console_sessions', key: ['id'], unique: true },
  { name: 'console_totp', key: ['account_id'], unique: true },
  { name: 'console_recovery_codes', key: ['account_id', 'code_hash'], unique: true },
  { name: 'console_login_failures', key: ['username', 'at'], unique: false },
  { name: 'console_audit', key: ['seq'], unique: true, serial: 'seq' },
  { name: 'learn_log', key: ['seq'], unique: true, serial: 'seq' },
  { name: 'digest_tokens', key: ['id'], unique: true },
  { name: 'digest_runs', key: ['day'], unique: true },
  { name: 'digest_listed', key: ['recipient', 'message_id'], unique: true },
  { name: 'release_requests', key: ['id'], unique: true, serial: 'id' },
  { name: 'hosted_domains', key: ['name'], unique: true },
  { name: 'config_version', key: ['id'], unique: true },
  { name: 'api_tokens', key: ['id'], unique: true, serial: 'id' },
  { name: 'spool_files', key: ['message_id', 'kind'], unique: true, batch: BODY_BATCH },
  { name: 'quarantine_bodies', key: ['message_id'], unique: true, batch: BODY_BATCH },
  { name: 'learner_models', key: ['name'], unique: true, batch: BODY_BATCH },
  { name: 'learner_snapshots', key: ['id'], unique: true, serial: 'id', batch: BODY_BATCH },
  { name: 'learner_events', key: ['seq'], unique: true, serial: 'seq' },
  { name: 'stats_hourly', key: ['domain', 'hour', 'kind'], unique: true },
  { name: 'daily_summary_runs', key: ['day'], unique: true },
  { name: 'daily_summary_optout', key: ['account_id'], unique: true },
];

export interface ImportOptions {
  /** The single machine's quarantine folder (`<dataDir>/quarantine`): its bodies go into quarantine_bodies. */
  quarantineDir?: string;
}

export interface ImportResult {
  /** Rows copied, per table (every table of IMPORTED_TABLES, in that order). */
  rows: Record<string, number>;
  /** Bodies copied from quarantineDir into quarantine_bodies. */
  quarantineFiles: number;
  /** Quarantined messages (status quarantined) whose body file was not in quarantineDir. */
  missingQuarantineFiles: { messageId: string; file: string }[];
}

/**
 * Copies every table of `from` into `to` (both migrated; `to` empty; no message in flight in
 * `from`), then the quarantined bodies of `o.quarantineDir`. Throws DatabaseError when a
 * precondition does not hold; nothing is written then.
 */
export async function importDatabase(from: Sql, to: Sql, o: ImportOptions = {}): Promise<ImportResult> {
  for (const [which, sql] of [
    ['source', from],
    ['target', to],
  ] as const) {
    const { pending } = await migrationStatus(sql);
    if (pending.length > 0) {
      throw new DatabaseError(
        `the ${which} database's schema is not up to date (pending migrations: ${pending.join(', ')}); run "mailmoat migrate" on it first`,
      );
    }
  }
  // The source is read in one transaction too: one consistent state (on SQLite it also keeps any
  // process that was left running from writing while the copy runs).
  return from.transaction((src) =>
    to.transaction(async (dst) => {
      await checkEmpty(dst);
      await checkDrained(src);
      const rows: Record<string, number> = {};
      for (const table of IMPORTED_TABLES) rows[table.name] = await copyTable(src, dst, table);
      const files = o.quarantineDir ? await copyQuarantineFiles(src, dst, o.quarantineDir) : { copied: 0, missing: [] };
      if (dst.dialect === 'postgres') {
        for (const table of IMPORTED_TABLES) {
          if (!table.serial || (rows[table.name] ?? 0) === 0) continue;
          await dst.one(q`SELECT setval(pg_get_serial_sequence(${table.name}, ${table.serial}), (SELECT max(${q.id(table.serial)}) FROM ${q.id(table.name)}))`);
        }
      }
      return { rows, quarantineFiles: files.copied, missingQuarantineFiles: files.missing };
    }),
  );
}

async function checkEmpty(dst: Sql): Promise<void> {
  const used: string[] = [];
  for (const table of IMPORTED_TABLES) {
    const n = Number((await dst.one<{ n: number }>(q`SELECT count(*) AS n FROM ${q.id(table.name)}`))?.n ?? 0);
    if (n > 0) used.push(`${table.name} has ${n} row${n === 1 ? '' : 's'}`);
  }
  if (used.length > 0) throw new DatabaseError(`the target database is not empty (${used.join(', ')}); import into a new database`);
}

async function checkDrained(src: Sql): Promise<void> {
  const rows = await src.all<{ status: string; n: number }>(
    q`SELECT status, count(*) AS n FROM messages WHERE status IN (${q.join(IN_FLIGHT)}) GROUP BY status ORDER BY status`,
  );
  const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
  if (total > 0) {
    throw new DatabaseError(
      `the source database has ${total} message${total === 1 ? '' : 's'} in flight (${rows.map((r) => `${Number(r.n)} ${r.status}`).join(', ')}), ` +
        'whose files are in the spool and would not be imported: stop the smtp role and let the queue drain ("mailmoat queue list" shows what is left), then import',
    );
  }
}

async function copyTable(src: Sql, dst: Sql, table: TableSpec): Promise<number> {
  const batch = table.batch ?? BATCH;
  const order = q.join(table.key.map((c) => q.id(c)));
  let copied = 0;
  let after: unknown[] | undefined;
  for (;;) {
    let page: Query;
    if (!table.unique) page = q`SELECT * FROM ${q.id(table.name)} ORDER BY ${order} LIMIT ${batch} OFFSET ${copied}`;
    else if (after) page = q`SELECT * FROM ${q.id(table.name)} WHERE (${order}) > (${q.join(after)}) ORDER BY ${order} LIMIT ${batch}`;
    else page = q`SELECT * FROM ${q.id(table.name)} ORDER BY ${order} LIMIT ${batch}`;
    const rows = await src.all<Record<string, unknown>>(page);
    if (rows.length === 0) return copied;
    const columns = Object.keys(rows[0]!);
    const values = rows.map((row) => q`(${q.join(columns.map((c) => value(row[c])))})`);
    await dst.run(q`INSERT INTO ${q.id(table.name)} (${q.join(columns.map((c) => q.id(c)))}) VALUES ${q.join(values)}`);
    copied += rows.length;
    const last = rows.at(-1)!;
    after = table.key.map((c) => last[c]);
    if (rows.length < batch) return copied;
  }
}

/** A column value as the target's driver takes it: BLOBs as Buffers (node:sqlite reads Uint8Array). */
function value(v: unknown): unknown {
  return v instanceof Uint8Array ? blobToBuffer(v) : v;
}

/**
 * The single machine's quarantine folder: `<id>.eml` per message whose body is kept (quarantined,
 * and also failed, released and reported messages, which the console shows). Each file of a
 * message of the source becomes a quarantine_bodies row; a quarantined message without its file
 * is reported, not fatal. Files of no known message are left alone.
 */
async function copyQuarantineFiles(src: Sql, dst: Sql, dir: string): Promise<{ copied: number; missing: { messageId: string; file: string }[] }> {
  const names = new Set(
    await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw new DatabaseError(`cannot read the quarantine folder ${dir}: ${err.message}`, { cause: err });
    }),
  );
  const missing: { messageId: string; file: string }[] = [];
  let copied = 0;
  let after: string | undefined;
  for (;;) {
    const page = await src.all<{ id: string; status: string }>(
      after === undefined
        ? q`SELECT id, status FROM messages ORDER BY id LIMIT ${BATCH}`
        : q`SELECT id, status FROM messages WHERE id > ${after} ORDER BY id LIMIT ${BATCH}`,
    );
    for (const { id, status } of page) {
      const name = `${id}.eml`;
      const file = path.join(dir, name);
      if (!names.has(name) || !/^[0-9A-Za-z_-]+$/.test(id)) {
        if (status === 'quarantined') missing.push({ messageId: id, file });
        continue;
      }
      let data: Buffer;
      let storedAt: number;
      try {
        [data, storedAt] = await Promise.all([fs.readFile(file), fs.stat(file).then((s) => Math.trunc(s.mtimeMs))]);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          if (status === 'quarantined') missing.push({ messageId: id, file });
          continue;
        }
        throw new DatabaseError(`cannot read the quarantined body ${file}: ${(err as Error).message}`, { cause: err });
      }
      // A body the source database held already (quarantine_bodies, copied above) wins.
      copied += await dst.run(
        q`INSERT INTO quarantine_bodies (message_id, data, stored_at) VALUES (${id}, ${data}, ${storedAt}) ON CONFLICT (message_id) DO NOTHING`,
      );
    }
    if (page.length < BATCH) return { copied, missing };
    after = page.at(-1)!.id;
  }
}
