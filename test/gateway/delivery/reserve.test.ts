// The SQLite space reserve (gateway/delivery/recorded.ts) is made before the first delivery
// attempt after a start. Concurrent delivery jobs all find it missing at once (found by the soak,
// after a SIGKILL): each must wait for the one file being made, not race on its temp name and
// pause delivery ("the store refuses writes") on the loser's ENOENT.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder } from '../../../gateway/delivery/recorded.ts';
import { silentLogger } from '../../../gateway/log.ts';
import { openMetadataStore } from '../../../gateway/store/metadata.ts';
import { openTestSql } from '../../support/databases.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the store space reserve', () => {
  it('is made once for concurrent delivery attempts, and none of them is paused', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mailmoat-reserve-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const db = await openTestSql('sqlite');
    cleanups.push(() => db.close());
    const store = openMetadataStore(db.sql);
    const reserveFile = path.join(dir, 'store-reserve');
    const recorder = new DeliveryRecorder({
      store,
      logger: silentLogger(),
      journalDir: path.join(dir, 'journal'),
      reserveFile,
      retryMs: 1_000,
      pauseMs: 1_000,
    });
    await recorder.start();
    cleanups.push(() => recorder.stop());
    const ids = Array.from({ length: 8 }, (_, i) => `RESERVE${String(i).padStart(19, '0')}`);
    for (const id of ids)
      await store.recordReceived({
        id,
        receivedAt: Date.now(),
        clientIp: '192.0.2.1',
        helo: 'h.test',
        mailFrom: 'bob@sender.test',
        rcptTo: ['alice@example.test'],
        size: 10,
      });
    const results = await Promise.allSettled(ids.map((id) => recorder.beforeAttempt(id, 1)));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect((await stat(reserveFile)).size).toBe(4 * 1024 * 1024);
  });
});
