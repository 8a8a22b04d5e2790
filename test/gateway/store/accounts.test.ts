// The AccountStore contract on both adapters (node:sqlite and PostgreSQL): usernames are unique
// and case-insensitive, a session is valid only while its row exists and has not expired (a
// password change, a disable or any update ends the account's sessions), and failed logins count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAccountStore, type AccountStore } from '../../../gateway/store/accounts.ts';
import { q } from '../../../gateway/store/sql.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const HOUR = 3_600_000;

describe.each(DIALECTS)('AccountStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: AccountStore;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    store = openAccountStore(db.sql, () => clock);
  });
  afterAll(() => db.close());

  const sessionRows = async (accountId: number) =>
    Number((await db.sql.one<{ n: number }>(q`SELECT count(*) AS n FROM console_sessions WHERE account_id = ${accountId}`))?.n);

  it('creates an account with a lower-case username and normalised scopes', async () => {
    clock = T0 + 1;
    const a = await store.create({
      username: '  Alice@Example.TEST ',
      role: 'user',
      addresses: ['Alice@Example.test', 'alice@example.test', ' b@example.test '],
      passwordHash: 'h1',
    });
    expect(a).toEqual({
      id: expect.any(Number),
      username: 'alice@example.test',
      role: 'user',
      domains: [],
      addresses: ['alice@example.test', 'b@example.test'],
      disabled: false,
      createdAt: T0 + 1,
      authSource: 'local',
    });
    expect(await store.get(a.id)).toEqual(a);
    const d = await store.create({ username: 'dadmin', role: 'domainadmin', domains: ['Z.test', 'a.test', ''], passwordHash: 'h2' });
    expect(d.domains).toEqual(['a.test', 'z.test']);
    expect(d.addresses).toEqual([]);
    expect(d.id).not.toBe(a.id);
  });

  it('refuses an invalid or an existing username, whatever its case', async () => {
    await expect(store.create({ username: 'Bad Name', role: 'user', passwordHash: 'h' })).rejects.toThrow(/invalid username/);
    await expect(store.create({ username: '-dash', role: 'user', passwordHash: 'h' })).rejects.toThrow(/invalid username/);
    await expect(store.create({ username: '', role: 'user', passwordHash: 'h' })).rejects.toThrow(/invalid username/);
    await store.create({ username: 'unique1', role: 'superadmin', passwordHash: 'first' });
    await expect(store.create({ username: 'UNIQUE1', role: 'user', passwordHash: 'second' })).rejects.toThrow(/unique1 exists already/);
    expect(await store.passwordHash((await store.byName('unique1'))!.id)).toBe('first');
  });

  it('links an external account to one identity: found by it, without a usable password, never twice', async () => {
    const ldap = { source: 'ldap', id: 'uid=ext1,ou=people,dc=example,dc=test' } as const;
    const a = await store.createExternal({ username: 'Ext1', role: 'domainadmin', domains: ['a.test'] }, ldap);
    expect(a).toMatchObject({ username: 'ext1', authSource: 'ldap', role: 'domainadmin', domains: ['a.test'] });
    expect(await store.byExternal(ldap)).toEqual(a);
    expect(await store.byExternal({ source: 'oidc', id: ldap.id })).toBeUndefined();
    expect(await store.passwordHash(a.id)).toBe('!external');
    // the same identity under another name, and another identity under the same name
    await expect(store.createExternal({ username: 'ext1-again', role: 'user' }, ldap)).rejects.toThrow(/exists already/);
    await expect(store.createExternal({ username: 'EXT1', role: 'user' }, { source: 'oidc', id: 'subject-1' })).rejects.toThrow(/ext1 exists already/);
    expect(await store.byName('ext1-again')).toBeUndefined();
  });

  it('finds an account by name whatever its case, lists in username order and counts', async () => {
    const a = await store.byName('ALICE@example.test');
    expect(a?.username).toBe('alice@example.test');
    expect(await store.byName(' alice@EXAMPLE.test  ')).toEqual(a);
    expect(await store.byName('nobody')).toBeUndefined();
    expect(await store.get(987_654)).toBeUndefined();
    await store.create({ username: 'a-b', role: 'user', addresses: ['ab@example.test'], passwordHash: 'h' });
    await store.create({ username: 'a.b', role: 'user', addresses: ['ab@example.test'], passwordHash: 'h' });
    await store.create({ username: 'a_b', role: 'user', addresses: ['ab@example.test'], passwordHash: 'h' });
    await store.create({ username: '0zero', role: 'user', addresses: ['ab@example.test'], passwordHash: 'h' });
    const names = (await store.list()).map((x) => x.username);
    expect(names).toEqual([...names].sort()); // byte order
    expect(names.slice(0, 5)).toEqual(['0zero', 'a-b', 'a.b', 'a_b', 'alice@example.test']);
    expect(await store.count()).toBe(names.length);
    expect(typeof (await store.count())).toBe('number');
  });

  it('keeps the password hash, and a new one ends every session of the account', async () => {
    const a = await store.create({ username: 'pw', role: 'user', addresses: ['pw@example.test'], passwordHash: 'old' });
    const other = await store.create({ username: 'pw-other', role: 'user', addresses: ['x@example.test'], passwordHash: 'h' });
    expect(await store.passwordHash(a.id)).toBe('old');
    expect(await store.passwordHash(123_456)).toBeUndefined();
    const s1 = await store.createSession(a.id, HOUR);
    const s2 = await store.createSession(a.id, HOUR);
    const keep = await store.createSession(other.id, HOUR);
    await store.setPasswordHash(a.id, 'new');
    expect(await store.passwordHash(a.id)).toBe('new');
    expect(await store.getSession(s1.id)).toBeUndefined();
    expect(await store.getSession(s2.id)).toBeUndefined();
    expect(await store.getSession(keep.id)).toEqual(keep);
  });

  it('update changes only what is given, and ends the sessions; disabling too', async () => {
    const a = await store.create({ username: 'upd', role: 'user', addresses: ['u@example.test'], passwordHash: 'h' });
    const s = await store.createSession(a.id, HOUR);
    await store.update(a.id, { role: 'domainadmin', domains: ['B.test', 'a.test'] });
    expect(await store.get(a.id)).toEqual({ ...a, role: 'domainadmin', domains: ['a.test', 'b.test'] });
    expect(await store.getSession(s.id)).toBeUndefined();

    const s2 = await store.createSession(a.id, HOUR);
    await store.update(a.id, { disabled: true });
    expect(await store.get(a.id)).toEqual({ ...a, role: 'domainadmin', domains: ['a.test', 'b.test'], disabled: true });
    expect(await store.getSession(s2.id)).toBeUndefined();

    await store.update(a.id, { addresses: ['New@Example.test'] });
    expect(await store.get(a.id)).toMatchObject({ addresses: ['new@example.test'], disabled: true, role: 'domainadmin' });
    await store.update(a.id, { disabled: false, addresses: [] });
    expect(await store.get(a.id)).toMatchObject({ addresses: [], disabled: false, domains: ['a.test', 'b.test'] });
    await store.update(a.id, {});
    expect(await store.get(a.id)).toMatchObject({ addresses: [], disabled: false, domains: ['a.test', 'b.test'], role: 'domainadmin' });
    // an unknown account is no error and changes nothing
    await expect(store.update(999_999, { disabled: true })).resolves.toBeUndefined();
  });

  it('a session is valid until it expires or is deleted', async () => {
    const a = await store.create({ username: 'sess', role: 'user', addresses: ['s@example.test'], passwordHash: 'h' });
    clock = T0 + 10 * HOUR;
    const s = await store.createSession(a.id, HOUR);
    expect(s).toEqual({ id: expect.any(String), accountId: a.id, createdAt: clock, expiresAt: clock + HOUR });
    expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await store.getSession(s.id)).toEqual(s);
    expect(await store.getSession('no-such-session')).toBeUndefined();

    clock = s.expiresAt - 1;
    expect(await store.getSession(s.id)).toEqual(s);
    clock = s.expiresAt;
    expect(await store.getSession(s.id)).toBeUndefined();

    // an expired row is purged when the next session is made
    expect(await sessionRows(a.id)).toBe(1);
    const s2 = await store.createSession(a.id, HOUR);
    expect(await sessionRows(a.id)).toBe(1);
    expect(await store.getSession(s2.id)).toEqual(s2);
    const s3 = await store.createSession(a.id, HOUR);
    expect(s3.id).not.toBe(s2.id);

    await store.deleteSession(s2.id);
    expect(await store.getSession(s2.id)).toBeUndefined();
    expect(await store.getSession(s3.id)).toEqual(s3);
    await store.deleteSession(s2.id); // twice is fine

    const s4 = await store.createSession(a.id, HOUR);
    await store.deleteSessionsOf(a.id);
    expect(await store.getSession(s3.id)).toBeUndefined();
    expect(await store.getSession(s4.id)).toBeUndefined();
    expect(await sessionRows(a.id)).toBe(0);
  });

  it('counts failed logins per name (case-insensitive), since a time, and clears them', async () => {
    clock = T0 + 100 * HOUR;
    await store.recordLoginFailure('Mallory');
    clock += 1000;
    await store.recordLoginFailure(' mallory ');
    clock += 1000;
    await store.recordLoginFailure('MALLORY');
    await store.recordLoginFailure('trent');
    expect(await store.loginFailuresSince('mallory', 0)).toBe(3);
    expect(await store.loginFailuresSince('MALLORY', T0 + 100 * HOUR + 1000)).toBe(2);
    expect(await store.loginFailuresSince('mallory', clock + 1)).toBe(0);
    expect(await store.loginFailuresSince('nobody', 0)).toBe(0);
    expect(typeof (await store.loginFailuresSince('mallory', 0))).toBe('number');

    await store.clearLoginFailures('Mallory');
    expect(await store.loginFailuresSince('mallory', 0)).toBe(0);
    expect(await store.loginFailuresSince('trent', 0)).toBe(1);

    // a very long name is counted and cleared under one bounded key
    const long = 'x'.repeat(150);
    await store.recordLoginFailure(long);
    expect(await store.loginFailuresSince(long, 0)).toBe(1);
    await store.clearLoginFailures(long);
    expect(await store.loginFailuresSince(long, 0)).toBe(0);

    // failures older than a day are dropped when the next one is recorded
    clock += 25 * HOUR;
    await store.recordLoginFailure('someone');
    expect(await store.loginFailuresSince('trent', 0)).toBe(0);
    expect(await store.loginFailuresSince('someone', 0)).toBe(1);
  });
});
