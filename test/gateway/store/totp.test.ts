// The TotpStore contract on both adapters (node:sqlite and PostgreSQL): an enrolment is switched on
// once, a time step is accepted once and only when newer than the last one (also when two requests
// race), a recovery code is used once, and removing takes the codes with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { openTotpStore, type TotpStore } from '../../../gateway/store/totp.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

describe.each(DIALECTS)('TotpStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: TotpStore;
  let id: number;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    store = openTotpStore(db.sql, () => clock);
    id = (await openAccountStore(db.sql).create({ username: 'root', role: 'superadmin', passwordHash: 'h' })).id;
  });
  afterAll(() => db.close());

  it('begins an enrolment, replaces one not yet confirmed, and switches on once', async () => {
    expect(await store.get(id)).toBeUndefined();
    expect(await store.begin(id, 'sealed-1')).toBe(true);
    expect(await store.begin(id, 'sealed-2')).toBe(true);
    expect(await store.get(id)).toEqual({ accountId: id, sealed: 'sealed-2', enabledAt: null, lastStep: 0, createdAt: T0 });
    expect(await store.useStep(id, 100)).toBe(false); // not on yet
    clock = T0 + 5;
    expect(await store.enable(id, 100, ['a', 'b', 'c'])).toBe(true);
    expect(await store.enable(id, 101, ['d'])).toBe(false);
    expect(await store.begin(id, 'sealed-3')).toBe(false); // on: a new secret needs turning it off first
    expect(await store.get(id)).toMatchObject({ sealed: 'sealed-2', enabledAt: T0 + 5, lastStep: 100 });
    expect(await store.enabledAccounts()).toEqual([id]);
    expect(await store.recoveryCodesLeft(id)).toBe(3);
  });

  it('accepts a step once, and never an older one', async () => {
    expect(await store.useStep(id, 100)).toBe(false); // the confirmation's step
    expect(await store.useStep(id, 102)).toBe(true);
    expect(await store.useStep(id, 102)).toBe(false);
    expect(await store.useStep(id, 101)).toBe(false);
    // two requests with the same code at once: one wins
    const race = await Promise.all([store.useStep(id, 103), store.useStep(id, 103), store.useStep(id, 103)]);
    expect(race.filter(Boolean)).toHaveLength(1);
  });

  it('uses a recovery code once, and new codes replace the old', async () => {
    const race = await Promise.all([store.useRecoveryCode(id, 'b'), store.useRecoveryCode(id, 'b')]);
    expect(race.filter(Boolean)).toHaveLength(1);
    expect(await store.useRecoveryCode(id, 'zz')).toBe(false);
    expect(await store.recoveryCodesLeft(id)).toBe(2);
    await store.replaceRecoveryCodes(id, ['x', 'y']);
    expect(await store.useRecoveryCode(id, 'a')).toBe(false);
    expect(await store.useRecoveryCode(id, 'x')).toBe(true);
    expect(await store.recoveryCodesLeft(id)).toBe(1);
  });

  it('removes the second factor and its codes', async () => {
    expect(await store.remove(id)).toBe(true);
    expect(await store.remove(id)).toBe(false);
    expect(await store.get(id)).toBeUndefined();
    expect(await store.recoveryCodesLeft(id)).toBe(0);
    expect(await store.enabledAccounts()).toEqual([]);
  });
});
