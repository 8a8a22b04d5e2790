// Databases for tests: a fresh SQLite file or a fresh database in the run's private PostgreSQL
// (global-setup.ts), both brought to the current schema, so that a store's tests run against both
// adapters (`describe.each(DIALECTS)`).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate } from '../../gateway/store/migrations.ts';
import { openSql, type DatabaseTarget, type Dialect, type Sql } from '../../gateway/store/sql.ts';
import { startTcpProxy, type TcpProxy } from './socket-proxy.ts';

export const DIALECTS: Dialect[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  target: DatabaseTarget;
  /** Removes the database (its file, or DROP DATABASE). */
  drop(): Promise<void>;
}

/** A new, empty database of this dialect (not yet migrated). */
export async function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'mailmoat-db-'));
    return { target: { sqlite: join(dir, 'mailmoat.sqlite') }, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const admin = inject('services').postgresUrl;
  const name = `mm_${randomBytes(6).toString('hex')}`;
  await withClient(admin, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    target: { postgres: url.toString(), poolSize: 4 },
    drop: () => withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
}

/** A migrated database, open; `close` also drops it. */
export async function openTestSql(dialect: Dialect): Promise<{ sql: Sql; target: DatabaseTarget; close(): Promise<void> }> {
  const db = await createTestDatabase(dialect);
  const sql = await openSql(db.target);
  await migrate(sql);
  return {
    sql,
    target: db.target,
    async close() {
      await sql.close();
      await db.drop();
    },
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A fresh PostgreSQL database reached through a TCP proxy the test can cut or stall (database
 * outages, hung servers, connections lost mid-query); migrated first when `migrated` is set.
 */
export async function proxiedPostgres(o: { migrated: boolean }): Promise<{ database: TestDatabase; proxy: TcpProxy; url: string }> {
  const database = await createTestDatabase('postgres');
  const direct = new URL((database.target as { postgres: string }).postgres);
  if (o.migrated) {
    const sql = await openSql(database.target);
    await migrate(sql).finally(() => sql.close());
  }
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
  const proxied = new URL(direct);
  proxied.port = String(proxy.port);
  return { database, proxy, url: proxied.toString() };
}
