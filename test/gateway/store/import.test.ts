// From one machine to several: a single machine's SQLite database and quarantine folder, filled
// through the real stores, imported into a new PostgreSQL database and read back through the same
// stores there (accounts log in, lists apply, the log and the quarantine are whole, new rows get
// fresh ids). The refusals: a target in use, mail still in flight, a schema not up to date. And
// `mailmoat migrate --import-sqlite` as the administrator runs it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../../gateway/passwords.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { openAuditStore } from '../../../gateway/store/audit.ts';
import { fileBlobStore, sqlBlobStore } from '../../../gateway/store/blobs.ts';
import { openDigestStore } from '../../../gateway/store/digests.ts';
import { openReleaseRequestStore } from '../../../gateway/store/release-requests.ts';
import { openDomainStore } from '../../../gateway/store/domains.ts';
import { openApiTokenStore } from '../../../gateway/store/api-tokens.ts';
import { openTotpStore } from '../../../gateway/store/totp.ts';
import { IMPORTED_TABLES, importDatabase, type ImportResult } from '../../../gateway/store/import.ts';
import { openLearnLog } from '../../../gateway/store/learnlog.ts';
import { openListStore } from '../../../gateway/store/lists.ts';
import { openMetadataStore, type MetadataStore } from '../../../gateway/store/metadata.ts';
import { DatabaseError, migrate } from '../../../gateway/store/migrations.ts';
import { openSql, q, type Sql } from '../../../gateway/store/sql.ts';
import { openStatsStore } from '../../../gateway/store/stats.ts';
import { createTestDatabase, openTestSql, type TestDatabase } from '../../support/databases.ts';
import { testConfigInput } from '../../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const HOUR = 3_600_000;
const PASSWORD = 'correct horse battery staple';
/** Not UTF-8, with a NUL: the body must come back byte for byte. */
const BODY = Buffer.concat([Buffer.from('Subject: virus\r\n\r\n'), Buffer.from([0, 0xff, 0xfe, 0x80, 13, 10]), randomBytes(200_000)]);

interface Source {
  dir: string;
  file: string;
  quarantineDir: string;
  sql: Sql;
  adminHash: string;
  maxListId: number;
  maxAccountId: number;
}

/** A single machine's dataDir: mailmoat.sqlite filled through the stores, and quarantine/<id>.eml. */
async function buildSource(o: { inFlight?: boolean } = {}): Promise<Source> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-single-'));
  const file = path.join(dir, 'mailmoat.sqlite');
  const quarantineDir = path.join(dir, 'quarantine');
  const sql = await openSql({ sqlite: file });
  await migrate(sql);
  let clock = T0;
  const now = () => clock++;
  const store = openMetadataStore(sql, now);
  const receive = (id: string, rcptTo: string[], from = 'bob@sender.test') =>
    store.recordReceived({ id, receivedAt: clock, clientIp: '192.0.2.1', helo: 'mx.sender.test', mailFrom: from, rcptTo, size: 1234 });
  const report = { virus: { status: 'clean' as const }, spam: { status: 'scored' as const, score: 1.5, threshold: 5, rules: [] } };

  await receive('m1delivered', ['alice@example.test']);
  await store.recordVerdict('m1delivered', { verdict: 'clean', reason: 'score 1.5', report, subject: 'Quarterly report' });
  await store.transition('m1delivered', ['queued'], 'delivering');
  await store.recordDelivery('m1delivered', 'alice@example.test', 'delivered', '250 2.0.0 ok');
  await store.transition('m1delivered', ['delivering'], 'delivered', '250 2.0.0 ok');
  await store.addEvent('m1delivered', 'delivered', 'alice@example.test: 250 2.0.0 ok');

  await receive('m2quarantined', ['carol@example.test'], 'eve@evil.test');
  await store.recordVerdict('m2quarantined', {
    verdict: 'virus',
    reason: 'Eicar-Signature',
    report: { ...report, virus: { status: 'infected', viruses: ['Eicar-Signature'] } },
    subject: 'invoice',
  });
  await store.transition('m2quarantined', ['queued'], 'quarantined');
  await store.addEvent('m2quarantined', 'quarantined', 'virus Eicar-Signature');
  const bodyFile = path.join(dir, 'body.tmp');
  await fs.writeFile(bodyFile, BODY);
  await fileBlobStore(quarantineDir).put('m2quarantined', bodyFile);

  // Quarantined, but its file is gone: imported without its body, and reported.
  await receive('m3nofile', ['carol@example.test'], 'eve@evil.test');
  await store.recordVerdict('m3nofile', { verdict: 'spam', reason: 'score 12', report, subject: 'cheap' });
  await store.transition('m3nofile', ['queued'], 'quarantined');

  // Failed: its body is kept for the console as well.
  await receive('m4failed', ['dave@example.test']);
  await store.transition('m4failed', ['queued'], 'failed', '550 5.1.1 no such user');
  await fs.writeFile(bodyFile, 'Subject: failed\r\n\r\nbody\r\n');
  await fileBlobStore(quarantineDir).put('m4failed', bodyFile);

  if (o.inFlight) {
    await receive('m5queued', ['alice@example.test']);
    await receive('m6deferred', ['alice@example.test']);
    await store.transition('m6deferred', ['queued'], 'deferred', '451 4.3.0 later');
  }

  await store.recordRefusal({
    at: clock++,
    clientIp: '203.0.113.9',
    helo: 'bad.test',
    mailFrom: 'x@bad.test',
    recipient: 'alice@example.test',
    stage: 'rcpt',
    reply: '554 5.7.1 blocked using zen',
  });
  // Enough events for several pages of the copy.
  await sql.transaction(async (tx) => {
    for (let i = 0; i < 1_201; i++)
      await tx.run(q`INSERT INTO message_events (message_id, at, kind, detail) VALUES ('m1delivered', ${T0 + i}, 'note', ${`n${i}`})`);
    // Login failures have no key; equal rows are kept as many times as they are.
    for (let i = 0; i < 510; i++)
      await tx.run(q`INSERT INTO console_login_failures (username, at) VALUES (${i % 2 ? 'mallory' : 'admin'}, ${T0 + Math.floor(i / 4)})`);
  });

  const accounts = openAccountStore(sql, now);
  const adminHash = await hashPassword(PASSWORD);
  const admin = await accounts.create({ username: 'admin', role: 'superadmin', passwordHash: adminHash });
  const gone = await accounts.create({ username: 'gone', role: 'user', addresses: ['gone@example.test'], passwordHash: adminHash });
  const carol = await accounts.create({
    username: 'carol',
    role: 'user',
    addresses: ['carol@example.test'],
    passwordHash: await hashPassword('carol password'),
  });
  await sql.run(q`DELETE FROM console_accounts WHERE id = ${gone.id}`); // a hole in the ids
  await accounts.createSession(admin.id, 100 * 365 * 24 * HOUR); // still valid whenever the test runs
  const totp = openTotpStore(sql, now);
  await totp.begin(admin.id, 'v1.sealed-secret');
  await totp.enable(admin.id, 59_000_000, ['hash-1', 'hash-2']);
  await totp.useRecoveryCode(admin.id, 'hash-2');

  const lists = openListStore(sql, now);
  await lists.add({ kind: 'allow', scope: 'user', owner: 'carol@example.test', entry: 'friend@partner.test', createdBy: 'carol' });
  await lists.add({ kind: 'block', scope: 'domain', owner: 'example.test', entry: 'evil.test', comment: 'phishing', createdBy: 'admin' });
  const global = await lists.add({ kind: 'block', scope: 'global', owner: '', entry: '198.51.100.0/24', createdBy: 'admin' });
  if (!global.ok) throw new Error(global.error);

  const audit = openAuditStore(sql, now);
  await audit.record({ actor: 'admin', action: 'login', messageId: null, target: null, ip: '192.0.2.50', outcome: 'ok', detail: '' });
  await audit.record({ actor: 'carol', action: 'view', messageId: 'm2quarantined', target: null, ip: '192.0.2.51', outcome: 'ok', detail: '' });
  await openLearnLog(sql, now).record({
    actor: 'admin',
    source: 'console',
    messageId: 'm3nofile',
    name: null,
    sha256: 'ab'.repeat(32),
    size: 99,
    class: 'spam',
    outcome: 'learned',
    detail: '',
  });
  const digests = openDigestStore(sql, now);
  await digests.addToken({ id: 'tok1', messageId: 'm2quarantined', recipient: 'carol@example.test', expiresAt: T0 + 10 * 24 * HOUR });
  await digests.claimRun('2026-11-24');
  await digests.claimListing('carol@example.test', ['m2quarantined']);
  await openReleaseRequestStore(sql, now).create({ messageId: 'm1', requester: 'alice', recipient: 'alice@a.test', note: 'please' });
  await openDomainStore(sql, now).put({ name: 'db.test', settings: { downstream: [{ host: '10.0.0.8' }] }, adminMay: ['spam'], by: 'root' });
  await openApiTokenStore(sql, now).create({ name: 'panel', role: 'superadmin', domains: [], createdBy: 1, createdByName: 'root' });
  const stats = openStatsStore(sql, now);
  await stats.add([
    { domain: 'example.test', hour: T0 - (T0 % HOUR), kind: 'received', n: 3 },
    { domain: '', hour: T0 - (T0 % HOUR), kind: 'refused', n: 1 },
  ]);
  await stats.claimSummaryRun('2026-11-24');
  await stats.setSummaryOptOut(carol.id, true);
  return { dir, file, quarantineDir, sql, adminHash, maxListId: global.row.id, maxAccountId: carol.id };
}

describe('IMPORTED_TABLES', () => {
  it('names every table of the migrated schema (a new table needs its line in import.ts)', async () => {
    const db = await openTestSql('sqlite');
    try {
      const tables = await db.sql.all<{ name: string }>(
        q`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\\' AND name NOT LIKE 'kysely\_%' ESCAPE '\\' ORDER BY name`,
      );
      expect(IMPORTED_TABLES.map((t) => t.name).sort()).toEqual(tables.map((t) => t.name));
    } finally {
      await db.close();
    }
  });

  it("marks exactly PostgreSQL's auto-numbered columns as serial, and orders by keys that exist", async () => {
    const db = await openTestSql('postgres');
    try {
      const serials = await db.sql.all<{ table_name: string; column_name: string }>(
        q`SELECT table_name, column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%' AND table_name NOT LIKE 'kysely\_%' ORDER BY table_name`,
      );
      expect(IMPORTED_TABLES.filter((t) => t.serial).map((t) => ({ table_name: t.name, column_name: t.serial }))).toEqual(expect.arrayContaining(serials));
      expect(IMPORTED_TABLES.filter((t) => t.serial)).toHaveLength(serials.length);
      for (const t of IMPORTED_TABLES) await db.sql.all(q`SELECT ${q.join(t.key.map((c) => q.id(c)))} FROM ${q.id(t.name)} LIMIT 1`);
    } finally {
      await db.close();
    }
  });
});

describe('importDatabase: SQLite into a new PostgreSQL database', () => {
  let src: Source;
  let target: TestDatabase;
  let dst: Sql;
  let result: ImportResult;

  beforeAll(async () => {
    src = await buildSource();
    target = await createTestDatabase('postgres');
    dst = await openSql(target.target);
    await migrate(dst);
    result = await importDatabase(src.sql, dst, { quarantineDir: src.quarantineDir });
  });
  afterAll(async () => {
    await src?.sql.close();
    await dst?.close();
    await target?.drop();
  });

  it('copies every row of every table, and the quarantine folder', async () => {
    expect(result.rows).toEqual({
      messages: 4,
      message_events: 1_203,
      deliveries: 1,
      smtp_refusals: 1,
      list_entries: 3,
      console_accounts: 2,
      console_sessions: 1,
      console_totp: 1,
      console_recovery_codes: 2,
      console_login_failures: 510,
      console_audit: 2,
      learn_log: 1,
      digest_tokens: 1,
      digest_runs: 1,
      digest_listed: 1,
      release_requests: 1,
      hosted_domains: 1,
      config_version: 1,
      api_tokens: 1,
      spool_files: 0,
      quarantine_bodies: 0,
      learner_models: 0,
      learner_snapshots: 0,
      learner_events: 0,
      stats_hourly: 2,
      daily_summary_runs: 1,
      daily_summary_optout: 1,
    });
    expect(result.quarantineFiles).toBe(2);
    expect(result.missingQuarantineFiles).toEqual([{ messageId: 'm3nofile', file: path.join(src.quarantineDir, 'm3nofile.eml') }]);
    for (const table of IMPORTED_TABLES) {
      if (table.name === 'quarantine_bodies') continue;
      const count = async (sql: Sql) => Number((await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM ${q.id(table.name)}`))?.n);
      expect(await count(dst), table.name).toBe(await count(src.sql));
    }
  });

  it('keeps the accounts: same ids and password hashes, they log in, their sessions hold', async () => {
    const before = openAccountStore(src.sql);
    const after = openAccountStore(dst);
    expect(await after.list()).toEqual(await before.list());
    const admin = await after.byName('admin');
    expect(admin).toMatchObject({ role: 'superadmin', disabled: false });
    const hash = await after.passwordHash(admin!.id);
    expect(hash).toBe(src.adminHash);
    expect(await verifyPassword(PASSWORD, hash!)).toBe(true);
    const session = (await src.sql.one<{ id: string }>(q`SELECT id FROM console_sessions`))!;
    expect(await after.getSession(session.id)).toMatchObject({ accountId: admin!.id });
    expect(await after.loginFailuresSince('admin', 0)).toBe(255);
    expect(await after.loginFailuresSince('mallory', 0)).toBe(255);
    // the second factor comes along: the sealed secret, the last step used, the unused recovery code
    expect(await openTotpStore(dst).get(admin!.id)).toEqual(await openTotpStore(src.sql).get(admin!.id));
    expect(await openTotpStore(dst).get(admin!.id)).toMatchObject({ sealed: 'v1.sealed-secret', lastStep: 59_000_000 });
    expect(await openTotpStore(dst).recoveryCodesLeft(admin!.id)).toBe(1);
  });

  it('keeps the allow and block lists', async () => {
    const lists = openListStore(dst);
    expect(await lists.forRecipient('carol@example.test')).toEqual([
      { kind: 'allow', scope: 'user', text: 'friend@partner.test' },
      { kind: 'block', scope: 'domain', text: 'evil.test' },
      { kind: 'block', scope: 'global', text: '198.51.100.0/24' },
    ]);
    expect(await lists.list({ all: true })).toEqual(await openListStore(src.sql).list({ all: true }));
  });

  it('keeps the message log, events, deliveries and refusals', async () => {
    const before: MetadataStore = openMetadataStore(src.sql);
    const after: MetadataStore = openMetadataStore(dst);
    const log = await after.searchLog({ scope: { all: true }, limit: 20 });
    expect(log.total).toBe(5);
    expect(log.rows.map((r) => r.id).sort()).toEqual(['m1delivered', 'm2quarantined', 'm3nofile', 'm4failed', 'r1']);
    expect((await after.searchMessages({ scope: { domains: ['example.test'], addresses: [] }, q: 'invoice', limit: 10 })).rows.map((m) => m.id)).toEqual([
      'm2quarantined',
    ]);
    for (const id of ['m1delivered', 'm2quarantined', 'm3nofile', 'm4failed']) {
      expect(await after.get(id)).toEqual(await before.get(id));
      expect(await after.events(id)).toEqual(await before.events(id));
      expect(await after.deliveries(id)).toEqual(await before.deliveries(id));
    }
    expect((await after.list({ status: 'quarantined', limit: 10 })).map((m) => m.id).sort()).toEqual(['m2quarantined', 'm3nofile']);
    expect(await after.refusals({ limit: 10 })).toEqual(await before.refusals({ limit: 10 }));
  });

  it('keeps the audit trail, the learn log and the digest tokens', async () => {
    expect(await openAuditStore(dst).list({ limit: 10 })).toEqual(await openAuditStore(src.sql).list({ limit: 10 }));
    expect(await openLearnLog(dst).learnedBefore('ab'.repeat(32), 'spam')).toBe(true);
    const digests = openDigestStore(dst);
    expect(await digests.getToken('tok1')).toEqual(await openDigestStore(src.sql).getToken('tok1'));
    expect(await digests.claimRun('2026-11-24')).toBe(false);
  });

  it('puts the quarantined bodies into the database, byte for byte', async () => {
    const blobs = sqlBlobStore(dst);
    const chunks: Buffer[] = [];
    for await (const chunk of blobs.open('m2quarantined')) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(BODY)).toBe(true);
    expect(await blobs.size('m2quarantined')).toBe(BODY.length);
    expect(await text(blobs.open('m4failed'))).toBe('Subject: failed\r\n\r\nbody\r\n');
    expect(await blobs.size('m3nofile')).toBeUndefined();
  });

  it('moves the sequences: new rows get fresh ids', async () => {
    const added = await openListStore(dst).add({ kind: 'allow', scope: 'global', owner: '', entry: 'partner.test', createdBy: 'admin' });
    expect(added.ok && added.row.id).toBeGreaterThan(src.maxListId);
    const account = await openAccountStore(dst).create({ username: 'newadmin', role: 'superadmin', passwordHash: 'h' });
    expect(account.id).toBeGreaterThan(src.maxAccountId);
    await openAuditStore(dst).record({ actor: 'admin', action: 'login', messageId: null, target: null, ip: '192.0.2.50', outcome: 'ok', detail: 'after' });
    const metadata = openMetadataStore(dst);
    await metadata.addEvent('m1delivered', 'note', 'after the import');
    expect((await metadata.events('m1delivered')).at(-1)).toMatchObject({ detail: 'after the import' });
    await metadata.recordRefusal({ at: T0, clientIp: '203.0.113.1', helo: 'h', mailFrom: null, recipient: null, stage: 'connect', reply: '421' });
    await openLearnLog(dst).record({
      actor: 'admin',
      source: 'console',
      messageId: null,
      name: null,
      sha256: 'cd'.repeat(32),
      size: 1,
      class: 'ham',
      outcome: 'learned',
      detail: '',
    });
  });

  it('refuses a target that is not empty, and writes nothing', async () => {
    const err = await importDatabase(src.sql, dst).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseError);
    expect((err as Error).message).toMatch(
      /^the target database is not empty \(messages has 4 rows, .*console_accounts has 3 rows.*\); import into a new database$/,
    );
    expect(Number((await dst.one<{ n: number }>(q`SELECT count(*) AS n FROM messages`))?.n)).toBe(4);
  });
});

describe('importDatabase refuses', () => {
  it('a source with mail in flight, and leaves the target empty', async () => {
    const src = await buildSource({ inFlight: true });
    const db = await openTestSql('postgres');
    try {
      const err = await importDatabase(src.sql, db.sql, { quarantineDir: src.quarantineDir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatabaseError);
      expect((err as Error).message).toBe(
        'the source database has 2 messages in flight (1 deferred, 1 queued), whose files are in the spool and would not be imported: ' +
          'stop the smtp role and let the queue drain ("mailmoat queue list" shows what is left), then import',
      );
      expect(await db.sql.one(q`SELECT 1 AS x FROM messages`)).toBeUndefined();
    } finally {
      await src.sql.close();
      await db.close();
    }
  });

  it('a schema that is not up to date (target or source)', async () => {
    const empty = await createTestDatabase('postgres');
    const unmigrated = await openSql(empty.target);
    const migrated = await openTestSql('sqlite');
    try {
      await expect(importDatabase(migrated.sql, unmigrated)).rejects.toThrow(
        new DatabaseError(
          `the target database's schema is not up to date (pending migrations: 0001_initial, 0002_shared_files, 0003_release_requests, 0004_submitted_by, 0005_hosted_domains, 0006_learner, 0007_ledger, 0008_digest_actions, 0009_external_logins, 0010_totp, 0011_stats); run "mailmoat migrate" on it first`,
        ),
      );
      await expect(importDatabase(unmigrated, migrated.sql)).rejects.toThrow(
        /^the source database's schema is not up to date \(pending migrations: 0001_initial, 0002_shared_files, 0003_release_requests, 0004_submitted_by, 0005_hosted_domains, 0006_learner, 0007_ledger, 0008_digest_actions, 0009_external_logins, 0010_totp, 0011_stats\)/,
      );
    } finally {
      await unmigrated.close();
      await empty.drop();
      await migrated.close();
    }
  });
});

describe('mailmoat migrate --import-sqlite', () => {
  const run = promisify(execFile);
  const mailmoat = (args: string[]) =>
    run(path.join(REPO, 'bin/mailmoat'), args).then(
      (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
    );
  const configFile = async (dir: string, overrides: Record<string, unknown> = {}) => {
    const file = path.join(dir, 'cluster.yaml');
    await fs.writeFile(file, JSON.stringify(testConfigInput(dir, 1, overrides))); // JSON is YAML
    return file;
  };

  it('migrates the new PostgreSQL database, imports, and prints what it copied', async () => {
    const src = await buildSource();
    await src.sql.close();
    const target = await createTestDatabase('postgres');
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-node-'));
      const url = (target.target as { postgres: string }).postgres;
      const r = await mailmoat(['migrate', '--import-sqlite', src.file, '--config', await configFile(dir, { database: { url } })]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const lines = r.out.trimEnd().split('\n');
      expect(lines[0]).toMatch(
        /: applied 0001_initial, 0002_shared_files, 0003_release_requests, 0004_submitted_by, 0005_hosted_domains, 0006_learner, 0007_ledger, 0008_digest_actions, 0009_external_logins, 0010_totp, 0011_stats$/,
      );
      expect(lines[1]).toMatch(new RegExp(`^imported ${src.file} into postgres://.*:$`));
      expect(lines.slice(2)).toEqual([
        '  messages: 4',
        '  message_events: 1203',
        '  deliveries: 1',
        '  smtp_refusals: 1',
        '  list_entries: 3',
        '  console_accounts: 2',
        '  console_sessions: 1',
        '  console_totp: 1',
        '  console_recovery_codes: 2',
        '  console_login_failures: 510',
        '  console_audit: 2',
        '  learn_log: 1',
        '  digest_tokens: 1',
        '  digest_runs: 1',
        '  digest_listed: 1',
        '  release_requests: 1',
        '  hosted_domains: 1',
        '  config_version: 1',
        '  api_tokens: 1',
        '  spool_files: 0',
        '  quarantine_bodies: 0',
        '  learner_models: 0',
        '  learner_snapshots: 0',
        '  learner_events: 0',
        '  stats_hourly: 2',
        '  daily_summary_runs: 1',
        '  daily_summary_optout: 1',
        `  quarantine files: 2 (from ${src.quarantineDir})`,
        `  missing quarantine file: ${path.join(src.quarantineDir, 'm3nofile.eml')} (message m3nofile is imported without its body)`,
      ]);
      const sql = await openSql(target.target);
      try {
        expect(await openAccountStore(sql).byName('admin')).toMatchObject({ role: 'superadmin' });
      } finally {
        await sql.close();
      }
      // A second run finds the target in use.
      const again = await mailmoat(['migrate', '--import-sqlite', src.file, '--config', await configFile(dir, { database: { url } })]);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/^mailmoat: the target database is not empty \(messages has 4 rows, .*\); import into a new database\n$/);
    } finally {
      await target.drop();
      await fs.rm(src.dir, { recursive: true, force: true });
    }
  });

  it('refuses a config whose database is SQLite, with one line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-single-'));
    const r = await mailmoat(['migrate', '--import-sqlite', path.join(dir, 'old.sqlite'), '--config', await configFile(dir)]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `mailmoat: migrate --import-sqlite: the config's database is SQLite (${path.join(dir, 'mailmoat.sqlite')}); set database.url to the new PostgreSQL database to import into\n`,
    );
  });
});
