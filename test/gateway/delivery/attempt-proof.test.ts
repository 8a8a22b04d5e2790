// Before a delivery attempt the store must take a write (gateway/delivery/recorded.ts), so that a
// downstream's 250 is not produced while its fact cannot be recorded. A write of this process
// that committed moments ago (the planDeliver that queued the delivery, or any other message's)
// is that proof for a first attempt: it writes nothing of its own (one SQLite commit, and its
// fsync, fewer per message). A retry, or a first attempt after the store went quiet, still writes
// its "delivery-attempt" event, and pauses when the store refuses it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ATTEMPT_EVENT, DeliveryRecorder, FRESH_WRITE_MS } from '../../../gateway/delivery/recorded.ts';
import { silentLogger } from '../../../gateway/log.ts';
import { openMetadataStore } from '../../../gateway/store/metadata.ts';
import { RetryLater } from '../../../gateway/store/queue.ts';
import { q } from '../../../gateway/store/sql.ts';
import { openTestSql } from '../../support/databases.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
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

/** Date.now as it will be once nothing was written for longer than FRESH_WRITE_MS. */
const afterQuiet = () => vi.spyOn(Date, 'now').mockReturnValue(Date.now() + FRESH_WRITE_MS + 1_000);

describe('the write before a delivery attempt', () => {
  it('is left to a commit moments ago for a first attempt, and made by a retry or after the store went quiet', async () => {
    const { recorder, attempts } = await setUp();
    // The message's row was just written.
    await recorder.beforeAttempt('M1', 1);
    expect(await attempts()).toEqual([]);
    await recorder.beforeAttempt('M1', 2);
    expect(await attempts()).toEqual(['attempt 2']);
    afterQuiet();
    await recorder.beforeAttempt('M1', 1);
    vi.restoreAllMocks();
    expect(await attempts()).toEqual(['attempt 2', 'attempt 1']);
  });

  it('pauses a retry, and a first attempt after the store went quiet, while the store refuses writes', async () => {
    const { db, recorder } = await setUp();
    await db.sql.run(q`PRAGMA query_only = ON`);
    const outcome = (attempt: number) =>
      recorder.beforeAttempt('M1', attempt).then(
        () => 'went ahead',
        (err: unknown) => (err instanceof RetryLater ? 'paused' : err),
      );
    expect(await outcome(2)).toBe('paused');
    // While paused, even a first attempt must prove the store takes writes again.
    expect(await outcome(1)).toBe('paused');
    await db.sql.run(q`PRAGMA query_only = OFF`);
    afterQuiet();
    expect(await outcome(1)).toBe('went ahead');
  });
});
