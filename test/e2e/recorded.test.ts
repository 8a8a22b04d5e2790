// The store failing right after a downstream's 250 delivers once: a full disk (SQLite on a real,
// genuinely full tmpfs) and a PostgreSQL that drops the gateway's connections and refuses new ones
// for a while. The downstream is a scripted SMTP server on loopback that breaks the store on
// receiving the final dot, and only then answers.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { DeliveryJournal } from '../../gateway/delivery/journal.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Downstream {
  port: number;
  /** Markers of every message whose final dot arrived, and of those answered 250. */
  dots: string[];
  accepted: string[];
}

/** A downstream that runs `atDot` on each final dot; it answers 250, or the reply `atDot` returns. */
async function downstream(atDot: (marker: string, nth: number) => Promise<{ code: number; text: string } | void>): Promise<Downstream> {
  const d: Downstream = { port: 0, dots: [], accepted: [] };
  const server = new SMTPServer({
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const marker = /X-Marker: (\S+)/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? '?';
        d.dots.push(marker);
        atDot(marker, d.dots.filter((m) => m === marker).length).then(
          (refusal) => {
            if (refusal) return callback(Object.assign(new Error(refusal.text), { responseCode: refusal.code }));
            d.accepted.push(marker);
            callback(null, 'Stored');
          },
          (err: Error) => callback(Object.assign(err, { responseCode: 451 })),
        );
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  d.port = (server.server.address() as { port: number }).port;
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return d;
}

async function gateway(down: Downstream, o: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  const gw = await startTestGateway({
    ...o,
    overrides: {
      domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: down.port }] } },
      delivery: { retryDelayMs: 300, maxRetryDelayMs: 1_000, connectTimeoutMs: 3_000, recordRetryMs: 1_000, storePauseMs: 300 },
    },
  });
  cleanups.push(() => gw.stop());
  return gw;
}

const send = (gw: TestGateway, marker: string) =>
  sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, `Subject: ${marker}\r\nX-Marker: ${marker}\r\n\r\n${marker}\r\n`);

/** Long enough for several retries and pauses of the job (300 ms each) to have run. */
const settle = () => new Promise((r) => setTimeout(r, 1_200));

/** A data dir on a tmpfs of its own, which a test can fill to the last byte. */
function tmpfsDataDir(): { dataDir: string; fill(): Promise<void>; free(): Promise<void> } {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-recorded-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dataDir]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', dataDir]);
    return fs.rm(dataDir, { recursive: true, force: true });
  });
  const filler = path.join(dataDir, 'filler');
  return {
    dataDir,
    async fill() {
      const handle = await fs.open(filler, 'a');
      try {
        for (const size of [1 << 20, 4096, 512, 1]) {
          const chunk = Buffer.alloc(size, 0x78);
          for (;;) {
            const ok = await handle.write(chunk).then(
              () => true,
              (err: NodeJS.ErrnoException) => (err.code === 'ENOSPC' ? false : Promise.reject(err)),
            );
            if (!ok) break;
          }
        }
      } finally {
        await handle.close();
      }
      expect((await fs.statfs(dataDir)).bavail).toBe(0);
    },
    free: () => fs.rm(filler, { force: true }),
  };
}

describe.runIf(process.getuid?.() === 0)('SQLite: the disk fills right after a downstream accepted', () => {
  it('records the delivery (from the space reserve) and delivers once', async () => {
    const disk = tmpfsDataDir();
    const down = await downstream(async (_m, nth) => {
      if (nth === 1) await disk.fill();
    });
    const gw = await gateway(down, { dataDir: disk.dataDir });
    const sent = await send(gw, 'full-at-dot');
    expect(sent.code).toBe(250);
    await waitFor(() => down.accepted.length === 1 || undefined, { what: 'the downstream to accept' });
    // The disk is still full: the result was recorded all the same, and the message finished.
    expect(await waitForStatus(gw, sent.id!, ['delivered'], 10_000)).toBe('delivered');
    // The store's space reserve was given up for it (the filler still takes the rest of the disk).
    await expect(fs.stat(path.join(disk.dataDir, 'store-reserve'))).rejects.toThrow(/ENOENT/);
    expect((await fs.statfs(disk.dataDir)).bavail).toBeLessThan(1024);
    await disk.free();
    await settle();
    expect(down.dots).toEqual(['full-at-dot']);
    expect((await gw.stores.store.deliveries(sent.id!)).map((d) => d.outcome)).toEqual(['delivered']);
    expect(await gw.stores.spool.committedIds()).toEqual([]);
  });

  it('pauses delivery while the disk is full, without contacting the downstream, and resumes once', async () => {
    const disk = tmpfsDataDir();
    // First dot: the disk fills and the downstream defers (451); the retries must wait for space.
    const down = await downstream(async (_m, nth) => {
      if (nth > 1) return;
      await disk.fill();
      return { code: 451, text: '4.3.0 try again later' };
    });
    const gw = await gateway(down, { dataDir: disk.dataDir });
    const sent = await send(gw, 'paused');
    expect(sent.code).toBe(250);
    await waitFor(() => down.dots.length === 1 || undefined, { what: 'the first attempt' });
    await settle();
    expect(down.dots).toEqual(['paused']);
    expect((await gw.stores.store.get(sent.id!))?.status).toBe('deferred');
    await disk.free();
    await waitForStatus(gw, sent.id!, ['delivered']);
    await settle();
    expect(down.dots).toEqual(['paused', 'paused']);
    expect(down.accepted).toEqual(['paused']);
  });
});

describe('PostgreSQL: the database drops the gateway right after a downstream accepted', () => {
  /** Terminates the gateway's connections and refuses new ones for `outageMs` (as a restart does). */
  async function restartAtDot(outageMs: number): Promise<{ down: Downstream; gw: TestGateway }> {
    const admin = new pg.Client({ connectionString: inject('services').postgresUrl });
    await admin.connect();
    cleanups.push(() => admin.end());
    let name = '';
    let back: Promise<unknown> = Promise.resolve();
    cleanups.push(() => back);
    const down = await downstream(async (_m, nth) => {
      if (nth > 1) return;
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      back = new Promise((r) => setTimeout(r, outageMs)).then(() => admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`));
    });
    const gw = await gateway(down, { database: 'postgres' });
    name = new URL(gw.config.database.url!).pathname.slice(1);
    return { down, gw };
  }

  it.each([
    ['shorter than the in-process retry (1 s)', 300],
    ['longer than the in-process retry: kept in the journal, replayed', 2_500],
  ])('delivers once when the outage is %s', async (_what, outageMs) => {
    const { down, gw } = await restartAtDot(outageMs);
    const sent = await send(gw, `pg-${outageMs}`);
    expect(sent.code).toBe(250);
    // The test reads through the gateway's own pool, which fails too while the database is away.
    const status = () =>
      gw.stores.store.get(sent.id!).then(
        (m) => m?.status,
        () => undefined,
      );
    await waitFor(async () => (await status()) === 'delivered' || undefined, { timeoutMs: 20_000, what: 'delivered' });
    await settle();
    expect(down.dots).toEqual([`pg-${outageMs}`]);
    expect((await gw.stores.store.deliveries(sent.id!)).map((d) => d.outcome)).toEqual(['delivered']);
  });
});

describe('a worker that died with results in its delivery journal', () => {
  it('has them replayed by the next worker, which does not send again', async () => {
    const down = await downstream(async () => {});
    const gw = await gateway(down);
    await gw.stopWorkers();
    const sent = await send(gw, 'journaled');
    expect(sent.code).toBe(250);
    // What a worker leaves when it dies after a 250 it could only write to its journal.
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-journal-'));
    cleanups.push(() => fs.rm(scratch, { recursive: true, force: true }));
    const dead = await DeliveryJournal.open(scratch);
    await dead.append({
      id: sent.id!,
      recipient: 'alice@example.test',
      outcome: 'delivered',
      reply: '127.0.0.1: 250 Stored (before the crash)',
      at: Date.now(),
    });
    await dead.close();
    const [file] = await fs.readdir(scratch);
    const journalDir = path.join(gw.config.dataDir, 'delivery-journal');
    await fs.rename(path.join(scratch, file), path.join(journalDir, file.replace(/-\d+\.journal$/, `-${spawnSync('true').pid}.journal`)));
    await gw.startWorkers();
    await waitForStatus(gw, sent.id!, ['delivered']);
    await settle();
    expect(down.dots).toEqual([]);
    expect(await gw.stores.store.deliveries(sent.id!)).toEqual([
      expect.objectContaining({ outcome: 'delivered', reply: '127.0.0.1: 250 Stored (before the crash)' }),
    ]);
  });
});
