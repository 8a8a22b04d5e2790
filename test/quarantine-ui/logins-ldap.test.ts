// Console logins from an LDAP directory: a private Debian slapd (test/support/slapd.ts) and the
// console harness through app.inject. Groups map to roles (JIT accounts), wrong passwords and
// unmapped groups are refused and audited, a typed filter is a name and never a wildcard, the
// throttle counts directory failures, and a stopped directory leaves local logins working.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, PASSWORD, startHarness, type Harness } from './harness.ts';
import { SERVICE_DN, SERVICE_PASSWORD, SUFFIX, startSlapd, type PrivateSlapd } from '../support/slapd.ts';
import { DIRECTORY_UNAVAILABLE, WRONG_PASSWORD } from '../../quarantine-ui/lib/login.ts';
import { ldapDirectory } from '../../quarantine-ui/lib/ldap.ts';
import { consoleAuthSchema } from '../../gateway/config/console-auth.ts';

const PEOPLE = [
  { uid: 'alice', password: 'alice directory password', mail: ['alice@a.test'] },
  { uid: 'carol', password: 'carol directory password', mail: ['Carol@B.test', 'carol.x@b.test'] },
  { uid: 'dave', password: 'dave directory password', mail: ['dave@a.test'] },
  { uid: 'erin', password: 'erin directory password' },
  { uid: 'root', password: 'root directory password' },
];
const GROUPS = {
  'mail-admins-a': ['alice'],
  'mail-admins-b': ['alice'],
  'mail-users': ['carol', 'erin'],
  'mail-root': ['root'],
  sales: ['dave'],
};
const ROLE_MAPPING = [
  { group: `cn=mail-admins-a,ou=groups,${SUFFIX}`, role: 'domainadmin', domains: ['a.test'] },
  // written with the spaces and capitals an admin might copy from a directory tool
  { group: `CN=mail-admins-b, OU=groups, DC=example, DC=test`, role: 'domainadmin', domains: ['b.test'] },
  { group: `cn=mail-users,ou=groups,${SUFFIX}`, role: 'user' },
  { group: `cn=mail-root,ou=groups,${SUFFIX}`, role: 'superadmin' },
];

const loginFails = async (h: Harness, username: string, password: string, ip?: string) => {
  const c = new Client(h.app, ip);
  const res = await c.login(username, password);
  expect(res.statusCode, res.body).toBe(401);
  expect((await c.get('/quarantine')).statusCode).toBe(303); // not logged in
  return res.body;
};

describe('LDAP logins (service account search, group search)', () => {
  let slapd: PrivateSlapd;
  let h: Harness;
  beforeAll(async () => {
    slapd = await startSlapd(PEOPLE, GROUPS);
    const secretFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'mm-secret-')), 'ldap-password');
    writeFileSync(secretFile, `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
    h = await startHarness({
      config: {
        console: {
          login: { maxPerIp: 100, maxFailuresPerUser: 3, windowMinutes: 15 },
          auth: {
            ldap: {
              url: slapd.url,
              search: { bindDN: SERVICE_DN, password: { file: secretFile } },
              baseDN: `ou=people,${SUFFIX}`,
              groupSearch: { baseDN: `ou=groups,${SUFFIX}` },
              timeoutMs: 2000,
              connectTimeoutMs: 1000,
            },
            roleMapping: ROLE_MAPPING,
          },
        },
      },
    });
    await h.addAccount('admin', 'superadmin'); // local break-glass account
  });
  afterAll(async () => {
    await h?.close();
    await slapd?.close();
  });

  it('a directory login creates the account from the groups: a domain admin of both mapped domains, a user with their addresses', async () => {
    const alice = new Client(h.app);
    const res = await alice.login('Alice', 'alice directory password');
    expect(res.statusCode, res.body).toBe(303);
    expect((await alice.get('/dashboard')).statusCode).toBe(200);
    expect(await h.accounts.byName('alice')).toMatchObject({ role: 'domainadmin', domains: ['a.test', 'b.test'], authSource: 'ldap' });
    const row = (await h.audit.list({ actor: 'alice', action: 'login', limit: 1 })).rows[0];
    expect(row).toMatchObject({ outcome: 'ok' });
    expect(row!.detail).toContain('ldap as domainadmin of a.test, b.test');

    const carol = new Client(h.app);
    expect((await carol.login('carol', 'carol directory password')).statusCode).toBe(303);
    expect(await h.accounts.byName('carol')).toMatchObject({ role: 'user', addresses: ['carol.x@b.test', 'carol@b.test'], domains: [] });
    // an end user is not an administrator
    expect((await carol.get('/users')).statusCode).toBe(404);
    // the account has no local password: the password form says where to change it
    const change = await carol.post(
      '/account/password',
      { current: 'carol directory password', password: 'a new password here', confirm: 'a new password here' },
      { csrfFrom: '/account' },
    );
    expect(change.statusCode).toBe(400);
    expect(change.body).toContain('Your password is kept by your directory');
  });

  it('a wrong directory password is refused like a wrong local one and counts towards the throttle', async () => {
    expect(await loginFails(h, 'carol', 'not the password', '198.51.100.20')).toContain(WRONG_PASSWORD);
    expect(await loginFails(h, 'nosuchperson', 'whatever it is', '198.51.100.20')).toContain(WRONG_PASSWORD);
    const denied = (await h.audit.list({ action: 'login', limit: 5 })).rows.filter((r) => r.outcome === 'denied').map((r) => r.detail);
    expect(denied).toEqual(expect.arrayContaining(['ldap: the directory refused the password', 'ldap: no such user in the directory']));
    for (let i = 0; i < 2; i++) await loginFails(h, 'carol', 'still not it', '198.51.100.20');
    // three failures from this address: now even the right password is not tried
    expect(await loginFails(h, 'carol', 'carol directory password', '198.51.100.20')).toContain('Too many failed logins');
    // another address is still heard
    expect((await new Client(h.app, '198.51.100.21').login('carol', 'carol directory password')).statusCode).toBe(303);
  });

  it('a person whose groups map to no role is refused with a clear message and an audit row, and gets no account', async () => {
    const body = await loginFails(h, 'dave', 'dave directory password');
    expect(body).toContain('none of your groups gives access to this console');
    expect(await h.accounts.byName('dave')).toBeUndefined();
    const row = (await h.audit.list({ action: 'login', limit: 1 })).rows[0];
    expect(row).toMatchObject({ target: 'dave', outcome: 'denied' });
    expect(row!.detail).toContain(`cn=sales,ou=groups,${SUFFIX}`);
    // a mapped end user without any mail address has nothing to see either
    expect(await loginFails(h, 'erin', 'erin directory password')).toContain('your directory entry has no mail address');
  });

  it('a filter typed as the username is a name, not a wildcard', async () => {
    // With alice's account in place, an unescaped "(uid=al*)" would find her entry and log in as her.
    for (const name of ['al*', '*', '*)(uid=*', 'alice)(|(uid=*']) {
      expect(await loginFails(h, name, 'alice directory password', '198.51.100.30')).toContain(WRONG_PASSWORD);
      await h.accounts.clearLoginFailures(name);
    }
    const details = (await h.audit.list({ action: 'login', limit: 4 })).rows.map((r) => r.detail);
    expect(details).toEqual(Array(4).fill('ldap: no such user in the directory'));
  });

  it('a local account of the same name as a directory person is checked against its own password only', async () => {
    // "root" exists in the directory (superadmin group) and locally as nothing: make a local one
    await h.addAccount('root', 'domainadmin', { domains: ['a.test'] });
    expect(await loginFails(h, 'root', 'root directory password')).toContain(WRONG_PASSWORD);
    expect((await new Client(h.app).login('root', PASSWORD)).statusCode).toBe(303);
    expect(await h.accounts.byName('root')).toMatchObject({ role: 'domainadmin', authSource: 'local' });
  });

  it('a stopped directory gives a clear "unavailable" message, not counted as a failure; a local superadmin still logs in', async () => {
    await slapd.stop();
    try {
      const body = await loginFails(h, 'alice', 'alice directory password', '198.51.100.40');
      expect(body).toContain(DIRECTORY_UNAVAILABLE);
      const row = (await h.audit.list({ action: 'login', limit: 1 })).rows[0];
      expect(row).toMatchObject({ target: 'alice', outcome: 'denied' });
      expect(row!.detail).toMatch(/^ldap unavailable: service bind: .*ECONNREFUSED/);
      expect((await h.accounts.loginFailureStats('alice', '198.51.100.40', 0)).fromAddress.count).toBe(0);
      // break-glass
      const admin = new Client(h.app);
      expect((await admin.login('admin')).statusCode).toBe(303);
      expect((await admin.get('/users')).statusCode).toBe(200);
    } finally {
      await slapd.start();
    }
    expect((await new Client(h.app).login('alice', 'alice directory password')).statusCode).toBe(303);
  });

  it('a group change in the directory takes effect at the next login; a disabled account stays out', async () => {
    const alice = await h.accounts.byName('alice');
    await h.accounts.update(alice!.id, { role: 'user', domains: [], addresses: ['alice@a.test'] }); // as if demoted earlier
    expect((await new Client(h.app).login('alice', 'alice directory password')).statusCode).toBe(303);
    expect(await h.accounts.byName('alice')).toMatchObject({ role: 'domainadmin', domains: ['a.test', 'b.test'] });
    expect((await h.audit.list({ actor: 'alice', action: 'login', limit: 1 })).rows[0]!.detail).toContain('role updated from user');
    await h.accounts.update(alice!.id, { disabled: true });
    expect(await loginFails(h, 'alice', 'alice directory password')).toContain('This account has been disabled');
  });

  it('the users page marks directory accounts and gives them no local password', async () => {
    const admin = new Client(h.app);
    await admin.login('admin');
    const page = await admin.get('/users');
    expect(page.body).toMatch(/<b>carol<\/b>[^<]*<span class="badge"[^>]*>LDAP<\/span>/);
    const carol = (await h.accounts.byName('carol'))!;
    expect(page.body).not.toContain(`/users/${carol.id}/reset-password`);
    const forced = await admin.post(`/users/${carol.id}/reset-password`, {}, { csrfFrom: '/users' });
    expect(forced.statusCode).toBe(400);
    expect(forced.body).toContain('carol logs in through LDAP: change the password there.');
  });
});

describe('LDAP logins (direct bind with a DN template, groups from memberOf)', () => {
  let slapd: PrivateSlapd;
  let h: Harness;
  beforeAll(async () => {
    slapd = await startSlapd(PEOPLE, GROUPS);
    h = await startHarness({
      config: {
        console: {
          auth: {
            // groups from the person's memberOf values (the default groupAttribute), as with AD
            ldap: { url: slapd.url, bindDN: `uid={username},ou=people,${SUFFIX}`, baseDN: SUFFIX, timeoutMs: 2000, connectTimeoutMs: 1000 },
            roleMapping: ROLE_MAPPING,
          },
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await slapd?.close();
  });

  it('binds as the person, reads their groups from memberOf, and refuses a wrong password and a DN typed as the name', async () => {
    const root = new Client(h.app);
    expect((await root.login('root', 'root directory password')).statusCode).toBe(303);
    expect(await h.accounts.byName('root')).toMatchObject({ role: 'superadmin', authSource: 'ldap' });
    const alice = new Client(h.app);
    expect((await alice.login('alice', 'alice directory password')).statusCode).toBe(303);
    expect(await h.accounts.byName('alice')).toMatchObject({ role: 'domainadmin', domains: ['a.test', 'b.test'] });
    expect(await loginFails(h, 'root', 'root directory passworx')).toContain(WRONG_PASSWORD);
    // DN syntax typed as the name is a name: unescaped, "alice,x" is no DN at all, and "root+cn=root" another RDN
    for (const name of ['alice,x', 'root+cn=root', '#root', 'root\\']) expect(await loginFails(h, name, 'root directory password')).toContain(WRONG_PASSWORD);
  });
});

describe('LDAP login settings', () => {
  it('a missing service password stops the console at start, naming the key and not the secret', () => {
    const auth = consoleAuthSchema.parse({
      ldap: { url: 'ldap://127.0.0.1:1', baseDN: SUFFIX, search: { bindDN: SERVICE_DN, password: { file: '/nonexistent/ldap.secret' } } },
    });
    expect(() => ldapDirectory(auth.ldap!)).toThrow("console.auth.ldap.search.password: cannot read the secret's file /nonexistent/ldap.secret (ENOENT)");
    delete process.env.MM_TEST_EMPTY_SECRET;
    const env = consoleAuthSchema.parse({
      ldap: { url: 'ldap://127.0.0.1:1', baseDN: SUFFIX, search: { bindDN: SERVICE_DN, password: { env: 'MM_TEST_EMPTY_SECRET' } } },
    });
    expect(() => ldapDirectory(env.ldap!)).toThrow(
      "console.auth.ldap.search.password: the secret's environment variable MM_TEST_EMPTY_SECRET is empty or missing",
    );
  });
});
