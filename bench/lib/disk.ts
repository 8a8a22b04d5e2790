// What one durable write costs on the disk that holds the spool: a 2 KB file written, fsync'd and
// its directory fsync'd, as the spool does for each message (body, envelope, rename). The accept
// latency cannot be lower than a few of these.
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
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
    db.exec('CREATE TABLE m (id TEXT PRIMARY KEY, received_at INTEGER, client_ip TEXT, helo TEXT, mail_from TEXT, rcpt_to TEXT, size INTEGER, status TEXT, updated_at INTEGER)');
    const insert = db.prepare('INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < commits; i++) {
      const t0 = performance.now();
      insert.run(`01BENCH${String(i).padStart(19, '0')}`, Date.now(), '127.0.0.1', 'client.sender.test', 'alice@sender.test', '["user@bench.test"]', 2048, 'queued', Date.now());
      times.push(performance.now() - t0);
    }
  } finally {
    db.close();
    rmSync(d, { recursive: true, force: true });
  }
  return { writes: commits, p50Ms: round(percentile(times, 50), 2), p99Ms: round(percentile(times, 99), 2) };
}
