// Sql.transaction's isolation from the other async flows of the process, on both adapters. On
// SQLite the process has ONE connection (sqlite.ts): a statement issued by another flow while a
// transaction is open must wait for it, never run inside it (it would see its uncommitted rows
// and be undone by its rollback). On PostgreSQL another pool connection gives the same answers.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSql, q, type Sql } from '../../../gateway/store/sql.ts';
import { createTestDatabase, DIALECTS, openTestSql } from '../../support/databases.ts';

/** A promise the test resolves when it chooses. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe.each(DIALECTS)('Sql transactions on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let sql: Sql;
  const count = async () => Number((await sql.one<{ n: number }>(q`SELECT COUNT(*) AS n FROM smtp_refusals`))!.n);
  const refusal = (stage: string) =>
    q`INSERT INTO smtp_refusals (at, client_ip, helo, mail_from, recipient, stage, reply) VALUES (1, '192.0.2.1', 'h', NULL, NULL, ${stage}, '554')`;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    sql = db.sql;
  });
  afterAll(() => db?.close());
  beforeEach(async () => {
    await sql.run(q`DELETE FROM smtp_refusals`);
  });

  it('a statement from another flow is not part of an open transaction: it survives its rollback', async () => {
    const g = gate();
    const tx = sql.transaction(async (t) => {
      await t.run(refusal('inside'));
      await g.opened;
      throw new Error('rolled back');
    });
    await tick();
    const outside = sql.run(refusal('outside'));
    await tick();
    g.open();
    await expect(tx).rejects.toThrow('rolled back');
    expect(await outside).toBe(1);
    expect(await sql.all(q`SELECT stage FROM smtp_refusals`)).toEqual([{ stage: 'outside' }]);
  });

  it('a read from another flow never sees a transaction half written', async () => {
    const g = gate();
    const tx = sql.transaction(async (t) => {
      await t.run(refusal('first'));
      await g.opened;
      await t.run(refusal('second'));
    });
    await tick();
    const seen = count();
    await tick();
    g.open();
    await tx;
    expect([0, 2]).toContain(await seen);
    expect(await count()).toBe(2);
  });

  it('a transaction inside a transaction is part of it: one rollback undoes both', async () => {
    await expect(
      sql.transaction(async (t) => {
        await t.run(refusal('outer'));
        await t.transaction(async (n) => n.run(refusal('nested')));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await count()).toBe(0);
  });

  it('concurrent transactions each commit whole, and a failed statement rolls back only its own', async () => {
    const results = await Promise.allSettled(
      [0, 1, 2, 3].map((i) =>
        sql.transaction(async (t) => {
          await t.run(refusal(`a${i}`));
          await tick();
          if (i === 2) await t.run(q`INSERT INTO no_such_table VALUES (1)`);
          await t.run(refusal(`b${i}`));
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const stages = (await sql.all<{ stage: string }>(q`SELECT stage FROM smtp_refusals`)).map((r) => r.stage).sort();
    expect(stages).toEqual(['a0', 'a1', 'a3', 'b0', 'b1', 'b3']);
  });

  it('run counts the rows a statement changed; one and all read rows', async () => {
    expect(await sql.run(refusal('x'))).toBe(1);
    expect(await sql.run(refusal('y'))).toBe(1);
    expect(await sql.run(q`UPDATE smtp_refusals SET reply = '550'`)).toBe(2);
    expect(await sql.one(q`SELECT stage FROM smtp_refusals WHERE stage = ${'y'}`)).toEqual({ stage: 'y' });
    expect(await sql.one(q`SELECT stage FROM smtp_refusals WHERE stage = ${'none'}`)).toBeUndefined();
    expect(await sql.all(q`SELECT reply FROM smtp_refusals`)).toEqual([{ reply: '550' }, { reply: '550' }]);
  });
});

describe('Sql on SQLite, closed', () => {
  it('close closes the database, also when no migration ran through Kysely', async () => {
    const database = await createTestDatabase('sqlite');
    const sql = await openSql(database.target);
    try {
      expect(await sql.one(q`SELECT 1 AS n`)).toEqual({ n: 1 });
      await sql.close();
      await expect(sql.one(q`SELECT 1 AS n`)).rejects.toThrow(/not open|finalized/);
    } finally {
      await database.drop();
    }
  });
});
