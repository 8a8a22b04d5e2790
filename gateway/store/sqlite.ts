// The SQLite side of sql.ts: node:sqlite, one connection per process, statements prepared once
// per SQL text. Queries are compiled by Kysely (its `sql` tag) but run straight on their prepared
// statement, synchronously: Kysely's executor chain (driver, connection mutex, facade) cost
// several promise hops and ~10% of the full path's JS allocations per statement, for a call that
// node:sqlite answers synchronously anyway. Migrations still run through Kysely (`kysely`, over
// the same connection and statement cache).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection } from 'kysely';
import type { Query, Sql } from './sql-port.ts';

export function openSqliteSql(file: string): Sql {
  const db = openSqliteFile(file);
  const statements = preparedStatements(db);
  const kysely = new Kysely<unknown>({ dialect: new ImmediateSqliteDialect(statements) });
  const lock = connectionLock();

  const exec = (query: Query, as: 'all' | 'one' | 'run'): unknown => {
    const { sql, parameters } = query.compile(kysely);
    const { stmt, reader } = statements.prepare(sql);
    const args = bind(parameters);
    if (as === 'run') {
      if (!reader) return Number(stmt.run(...args).changes);
      // As Kysely did: a statement that returns rows (RETURNING) reports no count.
      stmt.all(...args);
      return 0;
    }
    if (!reader) {
      stmt.run(...args);
      return as === 'all' ? [] : undefined;
    }
    return as === 'all' ? stmt.all(...args) : stmt.get(...args);
  };

  /** Outside a transaction: runs now, or after the transactions ahead of it (never inside one of them). */
  async function outside<T>(query: Query, as: 'all' | 'one' | 'run'): Promise<T> {
    if (!lock.busy) return exec(query, as) as T;
    await lock.acquire();
    try {
      return exec(query, as) as T;
    } finally {
      lock.release();
    }
  }

  const outer: Sql = {
    dialect: 'sqlite',
    kysely,
    all: <T>(query: Query) => outside<T[]>(query, 'all'),
    one: <T>(query: Query) => outside<T | undefined>(query, 'one'),
    run: (query: Query) => outside<number>(query, 'run'),
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      await lock.acquire();
      let open = true;
      const inside = async <R>(query: Query, as: 'all' | 'one' | 'run'): Promise<R> => {
        // A statement through a transaction that has ended would run outside of it, unlocked.
        if (!open) throw new Error('the transaction has already ended');
        return exec(query, as) as R;
      };
      const tx: Sql = {
        dialect: 'sqlite',
        kysely,
        all: <R>(query: Query) => inside<R[]>(query, 'all'),
        one: <R>(query: Query) => inside<R | undefined>(query, 'one'),
        run: (query: Query) => inside<number>(query, 'run'),
        // Nested: part of this transaction, as with Kysely.
        transaction: <R>(nested: (t: Sql) => Promise<R>) => nested(tx),
        close: () => outer.close(),
      };
      try {
        // IMMEDIATE: the write lock is taken up front, so two processes sharing the file never
        // deadlock upgrading a read lock (the other one waits up to busy_timeout instead).
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(tx);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          // A failed COMMIT (SQLITE_BUSY, disk full) may leave the transaction open, or not.
          if (db.isTransaction) db.exec('ROLLBACK');
          throw err;
        }
      } finally {
        open = false;
        lock.release();
      }
    },
    async close() {
      await kysely.destroy();
      // Kysely closes the database only if it ran a query itself (migrations).
      if (db.isOpen) db.close();
    },
  };
  return outer;
}

/**
 * The connection's owner: one transaction at a time, in the order they asked (FIFO), and a
 * statement from outside waits for the transactions ahead of it, as Kysely's connection mutex
 * made it: run now, it would become part of another flow's transaction (and its rollback).
 */
function connectionLock() {
  const waiting: (() => void)[] = [];
  let busy = false;
  return {
    get busy() {
      return busy;
    },
    acquire(): Promise<void> | void {
      if (!busy) {
        busy = true;
        return;
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    /** Hands the connection to the next waiter, still busy, or frees it. */
    release() {
      const next = waiting.shift();
      if (next) next();
      else busy = false;
    },
  };
}

function openSqliteFile(file: string): DatabaseSync {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;');
  db.function('mm_domain', { deterministic: true }, (a) => (typeof a === 'string' ? addressDomain(a) : null));
  return db;
}

/** The lower-cased domain of an address (after the last "@"); PostgreSQL has the same function from migrations.ts. */
function addressDomain(address: string): string {
  return address
    .slice(address.lastIndexOf('@') + 1)
    .toLowerCase()
    .replace(/\.$/, '');
}

type Params = ReadonlyArray<unknown>;
/** node:sqlite takes no booleans and no undefined. */
const bind = (p: Params) => p.map((v) => (typeof v === 'boolean' ? Number(v) : (v ?? null))) as never[];

function preparedStatements(db: DatabaseSync) {
  const prepared = new Map<string, { stmt: StatementSync; reader: boolean }>();
  return {
    close: () => db.close(),
    prepare(text: string) {
      let entry = prepared.get(text);
      if (!entry) {
        const stmt = db.prepare(text);
        entry = { stmt, reader: stmt.columns().length > 0 };
        // Queries built from variable-length IN lists are many; keep the cache bounded.
        if (prepared.size > 500) prepared.clear();
        prepared.set(text, entry);
      }
      return entry;
    },
  };
}

/**
 * Kysely's SQLite dialect over node:sqlite (it expects better-sqlite3's API), for migrations:
 * transactions take the write lock at BEGIN, as the direct path's do.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(statements: ReturnType<typeof preparedStatements>) {
    super({ database: kyselyFacade(statements) });
  }
  override createDriver(): SqliteDriver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('BEGIN IMMEDIATE'));
    };
    return driver;
  }
}

function kyselyFacade(statements: ReturnType<typeof preparedStatements>) {
  return {
    close: statements.close,
    prepare(text: string) {
      const { stmt, reader } = statements.prepare(text);
      return {
        reader,
        all: (p: Params) => stmt.all(...bind(p)),
        run: (p: Params) => stmt.run(...bind(p)),
        iterate: (p: Params) => stmt.iterate(...bind(p)),
      };
    },
  };
}
