// The delivery journal (gateway/delivery/journal.ts) and its replay (recorded.ts): a fact written
// there outlives its process, a full disk cannot refuse it, a torn slot is never taken for a
// fact, and a worker that starts replays what a dead one left into the store.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { DeliveryJournal, type JournalFact } from '../../../gateway/delivery/journal.ts';
import { DeliveryRecorder } from '../../../gateway/delivery/recorded.ts';
import { silentLogger } from '../../../gateway/log.ts';
import { openMetadataStore } from '../../../gateway/store/metadata.ts';
import { RetryLater } from '../../../gateway/store/queue.ts';
import { openTestSql } from '../../support/databases.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const fact = (recipient: string, reply = '250 2.0.0 Stored'): JournalFact => ({ id: 'M1', recipient, outcome: 'delivered', reply, at: 1 });

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-journal-'));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The pid of a process that has ended: the file of a worker that died. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

/** Writes facts into a journal file that looks left behind by a dead worker of this machine. */
async function orphanJournal(dir: string, facts: JournalFact[]): Promise<string> {
  const scratch = tempDir();
  const journal = await DeliveryJournal.open(scratch);
  for (const f of facts) await journal.append(f);
  await journal.close();
  const [own] = await fs.readdir(scratch);
  const orphan = path.join(dir, own.replace(/-\d+\.journal$/, `-${deadPid()}.journal`));
  await fs.mkdir(dir, { recursive: true });
  await fs.rename(path.join(scratch, own), orphan);
  return orphan;
}

describe('delivery journal', () => {
  it('hands the facts of a dead worker to the next one, and deletes its file once they are cleared', async () => {
    const dir = tempDir();
    const orphan = await orphanJournal(dir, [fact('a@x.test'), fact('b@x.test', `250 ${'long reply '.repeat(100)}`)]);
    const journal = await DeliveryJournal.open(dir);
    cleanups.push(() => journal.close());
    expect([...journal.recipientsDone('M1')].sort()).toEqual(['a@x.test', 'b@x.test']);
    expect(journal.recipientsDone('M2').size).toBe(0);
    for (const p of journal.pending()) await p.clear();
    expect(journal.pending()).toEqual([]);
    await expect(fs.stat(orphan)).rejects.toThrow(/ENOENT/);
  });

  it('removes the empty files of workers that stopped, and keeps its own', async () => {
    const dir = tempDir();
    const stopped = await orphanJournal(dir, []);
    const journal = await DeliveryJournal.open(dir);
    await journal.close();
    const files = await fs.readdir(dir);
    expect(files).toEqual([expect.stringMatching(new RegExp(`-${process.pid}\\.journal$`))]);
    expect(files).not.toContain(path.basename(stopped));
  });

  it('reads a torn slot (bad checksum) as free, never as a fact', async () => {
    const dir = tempDir();
    const orphan = await orphanJournal(dir, [fact('a@x.test'), fact('b@x.test')]);
    const handle = await fs.open(orphan, 'r+');
    await handle.write(Buffer.from('X'), 0, 1, 512 + 40); // inside the second slot's payload
    await handle.close();
    const journal = await DeliveryJournal.open(dir);
    cleanups.push(() => journal.close());
    expect([...journal.recipientsDone('M1')]).toEqual(['a@x.test']);
  });

  it('leaves the files of live workers of this machine alone', async () => {
    const dir = tempDir();
    const other = await orphanJournal(dir, [fact('a@x.test')]);
    const live = other.replace(/-\d+\.journal$/, `-${process.ppid}.journal`);
    await fs.rename(other, live);
    const journal = await DeliveryJournal.open(dir);
    cleanups.push(() => journal.close());
    expect(journal.pending()).toEqual([]);
  });

  it.runIf(process.getuid?.() === 0)('takes a fact on a disk that is full to the last byte (its space was taken in advance)', async () => {
    const dir = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    cleanups.push(() => void execFileSync('umount', ['-l', dir]));
    const journal = await DeliveryJournal.open(path.join(dir, 'journal'));
    const filler = await fs.open(path.join(dir, 'filler'), 'w');
    for (const size of [65_536, 512, 1]) {
      while (
        await filler.write(Buffer.alloc(size)).then(
          () => true,
          () => false,
        )
      );
    }
    await filler.close();
    expect((await fs.statfs(dir)).bavail).toBe(0);
    await expect(fs.writeFile(path.join(dir, 'new'), 'x')).rejects.toThrow(/ENOSPC/);
    await journal.append(fact('a@x.test'));
    await journal.close();
    const again = await DeliveryJournal.open(path.join(dir, 'journal'));
    expect([...again.recipientsDone('M1')]).toEqual(['a@x.test']);
    await again.close();
  });
});

describe('delivery recorder at worker start', () => {
  it('replays a dead worker’s facts into the store before any job runs', async () => {
    const db = await openTestSql('sqlite');
    cleanups.push(() => db.close());
    const store = openMetadataStore(db.sql);
    await store.recordDelivery('M1', 'a@x.test', 'deferred', '451 try later');
    const dir = tempDir();
    const orphan = await orphanJournal(dir, [fact('a@x.test')]);
    const recorder = new DeliveryRecorder({ store, logger: silentLogger(), journalDir: dir, retryMs: 100, pauseMs: 100 });
    await recorder.start();
    cleanups.push(() => recorder.stop());
    expect(await store.deliveries('M1')).toEqual([expect.objectContaining({ recipient: 'a@x.test', outcome: 'delivered', reply: '250 2.0.0 Stored' })]);
    expect(recorder.doneInJournal('M1').size).toBe(0);
    await expect(fs.stat(orphan)).rejects.toThrow(/ENOENT/);
  });
});

describe('delivery recorder while the store refuses writes', () => {
  it('pauses every attempt (RetryLater, nothing sent) and logs the pause once, and the resumption once', async () => {
    const db = await openTestSql('postgres');
    cleanups.push(() => db.close());
    const name = new URL((db.target as { postgres: string }).postgres).pathname.slice(1);
    const admin = new pg.Client({ connectionString: inject('services').postgresUrl });
    await admin.connect();
    cleanups.push(() => admin.end());
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const recorder = new DeliveryRecorder({ store: openMetadataStore(db.sql), logger, journalDir: tempDir(), retryMs: 100, pauseMs: 100 });
    await recorder.start();
    cleanups.push(() => recorder.stop());

    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    cleanups.push(() => admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`));
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const paused = await recorder.beforeAttempt('M1', attempt).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(paused).toBeInstanceOf(RetryLater);
      expect((paused as RetryLater).delayMs).toBe(100);
    }
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await recorder.beforeAttempt('M1', 4);
    await recorder.beforeAttempt('M1', 5);
    expect(lines.map((l) => l.msg)).toEqual([
      'the store refuses writes: delivery paused until it takes them again',
      'the store takes writes again: delivery resumed',
    ]);
  });
});
