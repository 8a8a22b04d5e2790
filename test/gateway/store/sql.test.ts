// The query layer's behaviour when PostgreSQL goes away under it: a query in progress fails with
// an error (the caller answers 4xx), and the process does not crash (pg emits 'error' on a client
// that is checked out of the pool, where nothing listens by default).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSql, q, type Sql } from '../../../gateway/store/sql.ts';
import { proxiedPostgres, type TestDatabase } from '../../support/databases.ts';
import { type TcpProxy } from '../../support/socket-proxy.ts';

describe('PostgreSQL connection lost during a query', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let sql: Sql;
  beforeAll(async () => {
    let url: string;
    ({ database, proxy, url } = await proxiedPostgres({ migrated: false }));
    sql = await openSql({ postgres: url, poolSize: 2 });
  });
  afterAll(async () => {
    await sql?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('rejects the query, survives, and works again once the database is back', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const running = sql.one(q`SELECT pg_sleep(5)`);
      const outcome = running.then(
        () => 'answered',
        (err: Error) => err.message,
      );
      await new Promise((r) => setTimeout(r, 300));
      proxy.cut();
      expect(await outcome).not.toBe('answered');
      await new Promise((r) => setTimeout(r, 100));
      expect(uncaught).toEqual([]);
      proxy.restore();
      expect(await sql.one<{ n: number }>(q`SELECT 1 AS n`)).toEqual({ n: 1 });
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
