// What one durable write costs on the disk that holds the spool: a 2 KB file written, fsync'd and
// its directory fsync'd, as the spool does for each message (body, envelope, rename). The accept
// latency cannot be lower than a few of these. Likewise one commit of each store: SQLite (one
// machine) and PostgreSQL (several machines).
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { percentile, round } from './stats.ts';

export interface FsyncProbe {
  writes: number;
  p50Ms: number;
  p99Ms: number;
}

export function fsyncProbe(dir: string, writes = 100): FsyncProbe {
  const d = join(dir, 'fsync-probe');
  mkdirSync(d, { recursive: true });
  const payload = Buffer.alloc(2048, 'x');
  const times: number[] = [];
  const dirFd = openSync(d, 'r');
  try {
    for (let i = 0; i < writes; i++) {
      const t0 = performance.now();
      const fd = openSync(join(d, `${i}.eml`), 'w');
      writeSync(fd, payload);
      fsyncSync(fd);
      closeSync(fd);
      fsyncSync(dirFd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(dirFd);
    rmSync(d, { recursive: true, force: true });
  }
  return { writes, p50Ms: round(percentile(times, 50), 2), p99Ms: round(percentile(times, 99), 2) };
}

/**
 * One SQLite write transaction with the message store's settings (WAL, synchronous = FULL: the
 * WAL is fsync'd at every commit), as node:sqlite runs it: synchronously, on the calling thread.
 * The gateway makes several of these per message on its event loop (received, verdict, state
 * changes, delivery, events), so their cost bounds the messages per second of one process.
 */
export function sqliteCommitProbe(dir: string, commits = 100): FsyncProbe {
  const d = join(dir, 'sqlite-probe');
  mkdirSync(d, { recursive: true });
  const db = new DatabaseSync(join(d, 'probe.sqlite'));
  const times: number[] = [];
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
    db.exec(
      'CREATE TABLE m (id TEXT PRIMARY KEY, received_at INTEGER, client_ip TEXT, helo TEXT, mail_from TEXT, rcpt_to TEXT, size INTEGER, status TEXT, updated_at INTEGER)',
    );
    const insert = db.prepare('INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < commits; i++) {
      const t0 = performance.now();
      insert.run(
        `01BENCH${String(i).padStart(19, '0')}`,
        Date.now(),
        '127.0.0.1',
        'client.sender.test',
        'alice@sender.test',
        '["user@bench.test"]',
        2048,
        'queued',
        Date.now(),
      );
      times.push(performance.now() - t0);
    }
  } finally {
    db.close();
    rmSync(d, { recursive: true, force: true });
  }
  return { writes: commits, p50Ms: round(percentile(times, 50), 2), p99Ms: round(percentile(times, 99), 2) };
}

/**
 * One PostgreSQL commit as the cluster storage makes them: a 2 KB BYTEA row inserted (the spool's
 * shared copy is a row per body and per envelope) in its own transaction, over TCP on 127.0.0.1,
 * in the bench's private cluster (default settings: fsync on, synchronous_commit on, so each
 * commit waits for its WAL flush). Client round trip included: that is what the gateway waits for.
 */
export async function postgresCommitProbe(url: string, commits = 100): Promise<FsyncProbe> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  const table = `bench_commit_probe_${process.pid}`;
  const times: number[] = [];
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (message_id TEXT, kind TEXT, data BYTEA, stored_at BIGINT, PRIMARY KEY (message_id, kind))`);
    const payload = Buffer.alloc(2048, 'x');
    for (let i = 0; i < commits; i++) {
      const t0 = performance.now();
      await client.query(`INSERT INTO ${table} VALUES ($1, 'body', $2, $3)`, [`01BENCH${String(i).padStart(19, '0')}`, payload, Date.now()]);
      times.push(performance.now() - t0);
    }
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await client.end().catch(() => {});
  }
  return { writes: commits, p50Ms: round(percentile(times, 50), 2), p99Ms: round(percentile(times, 99), 2) };
}
