// Before a delivery attempt the store must take a write (gateway/delivery/recorded.ts), so that a
// downstream's 250 is not produced while its fact cannot be recorded. The commit that queued a
// delivery (planDeliver, release, submitGenerated) is that proof for a first attempt that follows
// it at once: such an attempt writes nothing of its own (one SQLite commit, and its fsync, fewer
// per message). A retry, or a first attempt that waited in the queue, still writes its
// "delivery-attempt" event, and pauses when the store refuses it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ATTEMPT_EVENT, DeliveryRecorder, FRESH_QUEUE_MS } from '../../../gateway/delivery/recorded.ts';
import { silentLogger } from '../../../gateway/log.ts';
import { openMetadataStore } from '../../../gateway/store/metadata.ts';
import { RetryLater } from '../../../gateway/store/queue.ts';
import { q } from '../../../gateway/store/sql.ts';
import { openTestSql } from '../../support/databases.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp() {
  const dir = await mkdtemp(path.join(tmpdir(), 'mailmoat-attempt-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const db = await openTestSql('sqlite');
  cleanups.push(() => db.close());
  const store = openMetadataStore(db.sql);
  const recorder = new DeliveryRecorder({ store, logger: silentLogger(), journalDir: path.join(dir, 'journal'), retryMs: 100, pauseMs: 100 });
  await recorder.start();
  cleanups.push(() => recorder.stop());
  await store.recordReceived({
    id: 'M1',
    receivedAt: Date.now(),
    clientIp: '192.0.2.1',
    helo: 'h.test',
    mailFrom: 'bob@sender.test',
    rcptTo: ['alice@example.test'],
    size: 10,
  });
  const attempts = async () => (await store.events('M1')).filter((e) => e.kind === ATTEMPT_EVENT).map((e) => e.detail);
  return { db, recorder, attempts };
}

describe('the write before a delivery attempt', () => {
  it('is left to the commit that queued a first attempt moments ago, and made by a retry or a first attempt that waited', async () => {
    const { recorder, attempts } = await setUp();
    await recorder.beforeAttempt('M1', 1, Date.now());
    expect(await attempts()).toEqual([]);
    await recorder.beforeAttempt('M1', 1, Date.now() - FRESH_QUEUE_MS - 1_000);
    await recorder.beforeAttempt('M1', 2, Date.now());
    await recorder.beforeAttempt('M1', 3);
    expect(await attempts()).toEqual(['attempt 1', 'attempt 2', 'attempt 3']);
  });

  it('pauses a first attempt that waited, and a retry, while the store refuses writes', async () => {
    const { db, recorder } = await setUp();
    await db.sql.run(q`PRAGMA query_only = ON`);
    for (const [attempt, queuedAt] of [
      [1, Date.now() - FRESH_QUEUE_MS - 1_000],
      [2, Date.now()],
    ]) {
      const paused = await recorder.beforeAttempt('M1', attempt, queuedAt).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(paused).toBeInstanceOf(RetryLater);
    }
  });
});
