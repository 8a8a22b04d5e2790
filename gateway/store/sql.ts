// The one query layer of the metadata stores: node:sqlite (one machine; sqlite.ts runs Kysely-
// compiled queries straight on prepared statements) or Kysely over PostgreSQL through pg
// (several machines). Stores write their queries once with Kysely's `sql` tag (placeholders are
// compiled per dialect); the few places where the two SQL dialects differ ask `sql.dialect` (see
// message-queries.ts). The schema is created only by migrations.ts.
import { Kysely, PostgresDialect, sql as q } from 'kysely';
import type { Dialect, Query, Sql } from './sql-port.ts';
import pg from 'pg';
import { openSqliteSql } from './sqlite.ts';

export { q };
export type { Dialect, Query, Sql } from './sql-port.ts';

/** Where the metadata lives: a SQLite file (one machine) or a PostgreSQL URL (several machines). */
export type DatabaseTarget = { sqlite: string } | { postgres: string; poolSize?: number };

export async function openSql(target: DatabaseTarget): Promise<Sql> {
  if ('sqlite' in target) return openSqliteSql(target.sqlite);
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

/** PostgreSQL: every query through Kysely's executor (its pool hands out connections). */
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

/** A BLOB/BYTEA column value as a Buffer: pg gives a Buffer, node:sqlite a plain Uint8Array (no copy made). */
export function blobToBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
