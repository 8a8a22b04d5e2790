// The interface of the one query layer (sql.ts), apart from its two implementations (sql.ts for
// PostgreSQL, sqlite.ts for node:sqlite) so that neither has to import the other for it.
import type { Kysely, RawBuilder } from 'kysely';

export type Query = RawBuilder<unknown>;
export type Dialect = 'sqlite' | 'postgres';

export interface Sql {
  readonly dialect: Dialect;
  /**
   * The Kysely instance, for migrations only (on SQLite it does not wait for the transactions of
   * this interface). No schema type: the schema is the migrations' SQL and queries are raw SQL (`q`). */
  readonly kysely: Kysely<unknown>;
  all<T>(query: Query): Promise<T[]>;
  one<T>(query: Query): Promise<T | undefined>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(query: Query): Promise<number>;
  /** Runs `fn` in one transaction (SQLite: BEGIN IMMEDIATE, the write lock is taken up front). */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
