// The one query layer of the metadata stores: Kysely over node:sqlite (one machine) or over
// PostgreSQL through pg (several machines). Stores write their queries once with Kysely's `sql`
// tag (placeholders are compiled per dialect); the few places where the two SQL dialects differ
// ask `sql.dialect` (see message-queries.ts). The schema is created only by migrations.ts.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver, sql as q, type DatabaseConnection, type RawBuilder } from 'kysely';
import pg from 'pg';

export { q };
export type Query = RawBuilder<unknown>;
export type Dialect = 'sqlite' | 'postgres';

/** Where the metadata lives: a SQLite file (one machine) or a PostgreSQL URL (several machines). */
export type DatabaseTarget = { sqlite: string } | { postgres: string; poolSize?: number };

export interface Sql {
  readonly dialect: Dialect;
  /** The Kysely instance, for migrations. No schema type: the schema is the migrations' SQL and queries are raw SQL (`q`). */
  readonly kysely: Kysely<unknown>;
  all<T>(query: Query): Promise<T[]>;
  one<T>(query: Query): Promise<T | undefined>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(query: Query): Promise<number>;
  /** Runs `fn` in one transaction (SQLite: BEGIN IMMEDIATE, the write lock is taken up front). */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openSql(target: DatabaseTarget): Promise<Sql> {
  if ('sqlite' in target) return wrap('sqlite', new Kysely<unknown>({ dialect: new ImmediateSqliteDialect({ database: openSqliteFile(target.sqlite) }) }));
  const pool = new pg.Pool({
    connectionString: target.postgres,
    max: target.poolSize ?? 10,
    // An unreachable or stuck database must end in an error (an SMTP client gets a 4xx), never a
    // session that hangs: give up on a connection after 5 s and on a statement after 30 s.
    connectionTimeoutMillis: 5_000,
    query_timeout: 30_000,
    statement_timeout: 30_000,
    // Epoch milliseconds and counts are BIGINT; they fit in a double, and the stores want numbers.
    types: {
      getTypeParser: (oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')),
    } as never,
  });
  // A connection lost under a client (PostgreSQL restart, failover) must not crash the process:
  // pg emits 'error' on the pool for an idle client, and on the client itself for one checked out
  // of the pool, where nothing listens (its query still fails, and the pool drops the client).
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return wrap('postgres', new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }));
}

/** A safe form of a database target for logs: the PostgreSQL password is never shown. */
export function describeTarget(target: DatabaseTarget): string {
  if ('sqlite' in target) return `sqlite:${target.sqlite}`;
  const u = new URL(target.postgres);
  if (u.password) u.password = '***';
  return u.toString();
}

function wrap(dialect: Dialect, kysely: Kysely<unknown>): Sql {
  const make = (db: Kysely<unknown>, inTx: boolean): Sql => ({
    dialect,
    kysely: db,
    async all<T>(query: Query) {
      return (await query.execute(db)).rows as T[];
    },
    async one<T>(query: Query) {
      return (await query.execute(db)).rows[0] as T | undefined;
    },
    async run(query: Query) {
      return Number((await query.execute(db)).numAffectedRows ?? 0n);
    },
    transaction<T>(fn: (tx: Sql) => Promise<T>) {
      if (inTx) return fn(make(db, true));
      return db.transaction().execute((tx) => fn(make(tx, true)));
    },
    close: () => db.destroy(),
  });
  return make(kysely, false);
}

function openSqliteFile(file: string): DatabaseSync {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;');
  db.function('mm_domain', { deterministic: true }, (a) => (typeof a === 'string' ? addressDomain(a) : null));
  return db;
}

/** A BLOB/BYTEA column value as a Buffer: pg gives a Buffer, node:sqlite a plain Uint8Array (no copy made). */
export function blobToBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The lower-cased domain of an address (after the last "@"); PostgreSQL has the same function from migrations.ts. */
function addressDomain(address: string): string {
  return address
    .slice(address.lastIndexOf('@') + 1)
    .toLowerCase()
    .replace(/\.$/, '');
}

/**
 * Kysely's SQLite dialect over node:sqlite (it expects better-sqlite3's API): statements are
 * prepared once per SQL text, and transactions take the write lock at BEGIN, so that two processes
 * of one machine never deadlock upgrading a read lock.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(o: { database: DatabaseSync }) {
    super({ database: nodeSqliteFacade(o.database) });
  }
  override createDriver(): SqliteDriver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('BEGIN IMMEDIATE'));
    };
    return driver;
  }
}

function nodeSqliteFacade(db: DatabaseSync) {
  const prepared = new Map<string, { stmt: StatementSync; reader: boolean }>();
  const prepare = (text: string) => {
    let entry = prepared.get(text);
    if (!entry) {
      const stmt = db.prepare(text);
      entry = { stmt, reader: stmt.columns().length > 0 };
      // Queries built from variable-length IN lists are many; keep the cache bounded.
      if (prepared.size > 500) prepared.clear();
      prepared.set(text, entry);
    }
    return entry;
  };
  type Params = ReadonlyArray<unknown>;
  const args = (p: Params) => p.map((v) => (typeof v === 'boolean' ? Number(v) : (v ?? null))) as never[];
  return {
    close: () => db.close(),
    prepare(text: string) {
      const { stmt, reader } = prepare(text);
      return {
        reader,
        all: (p: Params) => stmt.all(...args(p)),
        run: (p: Params) => stmt.run(...args(p)),
        iterate: (p: Params) => stmt.iterate(...args(p)),
      };
    },
  };
}
