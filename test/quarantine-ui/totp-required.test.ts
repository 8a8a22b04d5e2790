// Roles that must have a second factor (console.requireTotpFor): a superadmin without TOTP can only
// set it up, on every page and form; other roles are not forced. And `mailmoat user totp-reset`.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, PASSWORD, startHarness, type Harness } from './harness.ts';
import { configSchema } from '../../gateway/config/schema.ts';
import { databaseTarget } from '../../gateway/roles.ts';
import { openAccountStore } from '../../gateway/store/accounts.ts';
import { openAuditStore } from '../../gateway/store/audit.ts';
import { migrate } from '../../gateway/store/migrations.ts';
import { openSql, q } from '../../gateway/store/sql.ts';
import { openTotpStore } from '../../gateway/store/totp.ts';
import { CliError, userCommand } from '../../quarantine-ui/cli.ts';
import { totpKeys } from '../../quarantine-ui/lib/totp.ts';
import { clock, code, enrol } from './totp-helpers.ts';

describe('TOTP required for superadmins (console.requireTotpFor)', () => {
  let h: Harness;
  let time: ReturnType<typeof clock>;
  beforeAll(async () => {
    h = await startHarness({ config: { console: { requireTotpFor: ['superadmin'] } } });
    time = clock(h);
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
  });
  afterAll(async () => h?.close());

  it('sends a superadmin without TOTP to set it up, and lets them do nothing else until done', async () => {
    const c = new Client(h.app);
    await c.login('root');
    for (const url of ['/quarantine', '/', '/users', '/audit', '/account', '/tokens', '/dashboard', '/login']) {
      const res = await c.get(url);
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location, url).toBe('/account/totp');
    }
    const page = await c.get('/account/totp');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Your role requires two-step login');
    const csrf = await c.csrf('/account/totp');
    for (const [url, form] of [
      ['/users', { username: 'sneaky', role: 'superadmin' }],
      ['/account/password', { current: PASSWORD, password: 'another password', confirm: 'another password' }],
      ['/tokens', { name: 'x', role: 'superadmin' }],
    ] as const) {
      const res = await c.post(url, form, { csrf });
      expect(res.statusCode, url).toBe(403);
    }
    expect(await h.accounts.byName('sneaky')).toBeUndefined();
    expect((await h.audit.list({ action: 'totp-required', limit: 10 })).rows.map((r) => r.target)).toEqual(['/tokens', '/account/password', '/users']);
    // logging out still works
    const other = new Client(h.app);
    await other.login('root');
    expect((await other.post('/logout', {}, { csrfFrom: '/account/totp' })).headers.location).toBe('/login');
    // set up: everything opens
    time.next();
    await enrol(c, time.now);
    expect((await c.get('/quarantine')).statusCode).toBe(200);
    expect((await c.get('/users')).statusCode).toBe(200);
    // and the next login asks for the code
    expect((await new Client(h.app).login('root')).headers.location).toBe('/login/totp');
  });

  it('does not force a role that is not listed', async () => {
    const c = new Client(h.app);
    expect((await c.login('admina')).headers.location).toBe('/');
    expect((await c.get('/quarantine')).statusCode).toBe(200);
  });

  it('applies to a session opened before the requirement was met (a reset sends the user back to enrolment)', async () => {
    const root = (await h.accounts.byName('root'))!;
    const c = new Client(h.app);
    await c.login('root');
    time.next();
    const secret = totpKeys(h.deps.secret).open(root.id, (await h.deps.totp.get(root.id))!.sealed);
    await c.post('/login/totp', { code: code(secret, time.now) }, { csrfFrom: '/login/totp' });
    expect((await c.get('/quarantine')).statusCode).toBe(200);
    // own reset from the users page: the session stays, but only the enrolment page opens
    expect((await c.post(`/users/${root.id}/totp-reset`, {}, { csrfFrom: '/users' })).statusCode).toBe(303);
    expect((await c.get('/quarantine')).headers.location).toBe('/account/totp');
  });
});

describe('mailmoat user totp-reset', () => {
  it("removes a user's second factor from the command line (the last superadmin lost the phone and the codes): audited, sessions ended", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-totp-cli-'));
    const config = configSchema.parse({
      hostname: 'mx.gateway.test',
      dataDir: dir,
      domains: { 'a.test': { downstream: [{ host: '127.0.0.1', port: 1 }] } },
      redis: { socket: '/nonexistent' },
      clamd: { socket: '/nonexistent' },
      spamd: { socket: '/nonexistent' },
    });
    const sql = await openSql(databaseTarget(config));
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((s: string) => void printed.push(s));
    try {
      await migrate(sql);
      const accounts = openAccountStore(sql);
      const root = await accounts.create({ username: 'root', role: 'superadmin', passwordHash: 'x' });
      await accounts.createSession(root.id, 3_600_000);
      const totp = openTotpStore(sql);
      await totp.begin(root.id, 'v1.sealed');
      await totp.enable(root.id, 1, ['h']);
      expect(await userCommand('totp-reset', 'root', {}, config)).toBe(0);
      expect(printed).toEqual(['two-step login of root removed; their sessions were ended']);
      expect(await totp.get(root.id)).toBeUndefined();
      expect(await sql.one(q`SELECT id FROM console_sessions WHERE account_id = ${root.id}`)).toBeUndefined();
      expect((await openAuditStore(sql).list({ action: 'totp-reset', limit: 5 })).rows).toMatchObject([{ target: 'root', outcome: 'ok', ip: '-' }]);
      await expect(userCommand('totp-reset', 'root', {}, config)).rejects.toThrow(new CliError('root has no two-step login'));
      await expect(userCommand('totp-reset', 'nobody', {}, config)).rejects.toThrow(new CliError('no console user nobody'));
    } finally {
      log.mockRestore();
      await sql.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
