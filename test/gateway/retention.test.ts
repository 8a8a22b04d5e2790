// Retention (gateway/retention.ts) on both databases, each with the blob store it goes with:
// quarantined messages expire after quarantineDays, kept copies are removed then too, the log is
// pruned after logDays, mail in flight is never touched, and two passes at once do each thing once.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expireOnce, startRetention, type RetentionDeps } from '../../gateway/retention.ts';
import { silentLogger } from '../../gateway/log.ts';
import { fileBlobStore, sqlBlobStore, type BlobStore } from '../../gateway/store/blobs.ts';
import { openMetadataStore, type MessageStatus, type MetadataStore } from '../../gateway/store/metadata.ts';
import { DIALECTS, openTestSql } from '../support/databases.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);
const retention = { quarantineDays: 30, logDays: 90, checkEveryMinutes: 60 };

describe.each(DIALECTS)('retention on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let dir: string;
  let store: MetadataStore;
  let blobs: BlobStore;
  let deps: RetentionDeps;

  beforeEach(async () => {
    db = await openTestSql(dialect);
    dir = await mkdtemp(path.join(tmpdir(), 'mailmoat-retention-'));
    store = openMetadataStore(db.sql);
    blobs = dialect === 'sqlite' ? fileBlobStore(path.join(dir, 'quarantine')) : sqlBlobStore(db.sql);
    deps = { config: { retention }, store, quarantine: blobs, logger: silentLogger() };
  });
  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A message received `daysAgo` days before NOW, in `status`, optionally with a kept body. */
  async function message(id: string, daysAgo: number, status: MessageStatus, o: { body?: boolean } = {}) {
    await store.recordReceived({
      id,
      receivedAt: NOW - daysAgo * DAY,
      clientIp: '192.0.2.1',
      helo: 'mx.sender.test',
      mailFrom: 'bob@sender.test',
      rcptTo: ['alice@a.test'],
      size: 10,
    });
    if (status !== 'queued') expect(await store.transition(id, ['queued'], status)).toBe(true);
    if (o.body) {
      const file = path.join(dir, `${id}.src`);
      await writeFile(file, `Subject: ${id}\r\n\r\nbody\r\n`);
      await blobs.put(id, file);
    }
  }
  const expiredEvents = async (id: string) => (await store.events(id)).filter((e) => e.kind === 'expired');

  it('expires an old quarantined message and keeps a young one', async () => {
    await message('old', 31, 'quarantined', { body: true });
    await message('young', 29, 'quarantined', { body: true });
    expect(await expireOnce(deps, NOW)).toEqual({ expired: 1, keptRemoved: 0, purgedMessages: 0, purgedRefusals: 0 });
    expect(await store.get('old')).toMatchObject({ status: 'deleted', lastReply: 'expired after 30 days' });
    expect(await expiredEvents('old')).toEqual([expect.objectContaining({ detail: 'expired after 30 days in quarantine' })]);
    expect(await blobs.size('old')).toBeUndefined();
    expect(await store.get('young')).toMatchObject({ status: 'quarantined' });
    expect(await blobs.size('young')).toBeGreaterThan(0);
    // A second pass has nothing left to do.
    expect(await expireOnce(deps, NOW)).toEqual({ expired: 0, keptRemoved: 0, purgedMessages: 0, purgedRefusals: 0 });
  });

  it("removes a released message's kept body after quarantineDays and its log row after logDays", async () => {
    await message('rel', 31, 'released', { body: true });
    expect((await expireOnce(deps, NOW)).keptRemoved).toBe(1);
    expect(await blobs.size('rel')).toBeUndefined();
    expect(await store.get('rel')).toMatchObject({ status: 'released' });
    expect(await expiredEvents('rel')).toHaveLength(1);
    expect((await expireOnce(deps, NOW)).keptRemoved).toBe(0); // handled once
    expect((await expireOnce(deps, NOW + 60 * DAY)).purgedMessages).toBe(1);
    expect(await store.get('rel')).toBeUndefined();
  });

  it('purges old final rows and refusals with their events and deliveries, never mail in flight', async () => {
    await message('done', 91, 'delivered');
    await store.addEvent('done', 'delivered', 'alice@a.test: 250 ok');
    await store.recordDelivery('done', 'alice@a.test', 'delivered', '250 ok');
    await message('flying', 91, 'deferred');
    await store.recordDelivery('flying', 'alice@a.test', 'deferred', '451 later');
    await message('recent', 89, 'delivered');
    await store.recordRefusal({ at: NOW - 91 * DAY, clientIp: '203.0.113.9', helo: 'x', mailFrom: null, recipient: null, stage: 'connect', reply: '421 old' });
    await store.recordRefusal({ at: NOW - 1 * DAY, clientIp: '203.0.113.9', helo: 'x', mailFrom: null, recipient: null, stage: 'connect', reply: '421 new' });
    expect(await expireOnce(deps, NOW)).toMatchObject({ purgedMessages: 1, purgedRefusals: 1 });
    expect(await store.get('done')).toBeUndefined();
    expect(await store.events('done')).toEqual([]);
    expect(await store.deliveries('done')).toEqual([]);
    expect(await store.get('flying')).toMatchObject({ status: 'deferred' });
    expect(await store.deliveries('flying')).toHaveLength(1);
    expect(await store.get('recent')).toBeDefined();
    expect((await store.refusals({ limit: 10 })).map((r) => r.reply)).toEqual(['421 new']);
  });

  it('expires each message once when two passes run at once', async () => {
    for (let i = 0; i < 12; i++) await message(`q${i}`, 40, 'quarantined', { body: true });
    for (let i = 0; i < 4; i++) await message(`f${i}`, 40, 'failed', { body: true });
    const passes = await Promise.all([expireOnce(deps, NOW), expireOnce(deps, NOW)]);
    expect(passes[0].expired + passes[1].expired).toBe(12);
    expect(passes[0].keptRemoved + passes[1].keptRemoved).toBe(4);
    for (let i = 0; i < 12; i++) {
      expect(await store.get(`q${i}`)).toMatchObject({ status: 'deleted' });
      expect(await expiredEvents(`q${i}`)).toHaveLength(1);
      expect(await blobs.size(`q${i}`)).toBeUndefined();
    }
    for (let i = 0; i < 4; i++) expect(await expiredEvents(`f${i}`)).toHaveLength(1);
  });

  it('keeps everything when the days are 0', async () => {
    await message('forever', 400, 'quarantined', { body: true });
    await message('old-log', 400, 'delivered');
    const keep = { ...deps, config: { retention: { quarantineDays: 0, logDays: 0, checkEveryMinutes: 60 } } };
    expect(await expireOnce(keep, NOW)).toEqual({ expired: 0, keptRemoved: 0, purgedMessages: 0, purgedRefusals: 0 });
    expect(await store.get('forever')).toMatchObject({ status: 'quarantined' });
    expect(await store.get('old-log')).toBeDefined();
  });
});

describe('startRetention', () => {
  it('logs a failing pass instead of throwing, and stops', async () => {
    const logger = silentLogger();
    const error = vi.spyOn(logger, 'error');
    const store = { expiredKept: () => Promise.reject(new Error('database down')) } as unknown as MetadataStore;
    const job = startRetention({ config: { retention }, store, quarantine: {} as BlobStore, logger }, 60_000, { firstDelayMs: 0 });
    await vi.waitFor(() => expect(error).toHaveBeenCalled());
    expect(String(error.mock.calls[0]?.[1])).toContain('retention');
    await job.stop();
  });
});
