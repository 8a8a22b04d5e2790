import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool, type Envelope } from '../../../gateway/spool/spool.ts';
import { SmtpRefusal } from '../../../rules/replies.ts';

const envelope = (id: string): Envelope => ({
  id,
  receivedAt: 1,
  clientIp: '127.0.0.1',
  clientHostname: null,
  helo: 'h.test',
  mailFrom: 'a@b.test',
  rcptTo: ['c@example.test'],
  size: 5,
  tls: false,
});

async function newSpool(dir = mkdtempSync(path.join(os.tmpdir(), 'spool-'))): Promise<Spool> {
  const spool = new Spool(dir);
  await spool.init();
  return spool;
}

describe('spool', () => {
  it('commits body and envelope; only committed messages are listed', async () => {
    const spool = await newSpool();
    expect(await spool.receive('A1', Readable.from([Buffer.from('hello')]), 100)).toEqual({ size: 5, oversized: false });
    expect(await spool.committedIds()).toEqual([]);
    await spool.commit(envelope('A1'));
    expect(await spool.committedIds()).toEqual(['A1']);
    expect(await fs.readFile(spool.messagePath('A1'), 'utf8')).toBe('hello');
    expect(await spool.readEnvelope('A1')).toEqual(envelope('A1'));
  });

  it('stops writing past the limit but drains the input, and keeps nothing', async () => {
    const spool = await newSpool();
    const chunks = Array.from({ length: 10 }, () => Buffer.alloc(100, 0x61));
    const input = Readable.from(chunks);
    expect(await spool.receive('B1', input, 250)).toEqual({ size: 1000, oversized: true });
    expect(input.readableEnded).toBe(true);
    expect(await fs.readdir(spool.incomingDir)).toEqual([]);
  });

  it('commits many messages, concurrent ones too, holding no more than one descriptor (the directory) afterwards', async () => {
    const spool = await newSpool();
    const open = async () => (await fs.readdir('/proc/self/fd')).length;
    const before = await open();
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const id = `M${round}-${i}`;
          await spool.receive(id, Readable.from([Buffer.from(`message ${id}`)]), 100);
          await spool.commit(envelope(id));
        }),
      );
    }
    expect(await spool.committedIds()).toHaveLength(50);
    expect(await fs.readFile(spool.messagePath('M4-9'), 'utf8')).toBe('message M4-9');
    expect((await open()) - before).toBeLessThanOrEqual(1);
  });

  it('a client that breaks off while a body write waits in the thread pool: that write lands in its own file, never in the next file opened (a descriptor closed under it is reused)', async () => {
    const spool = await newSpool();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spool-fifo-'));
    // Every libuv thread blocked in open() of a FIFO nobody writes: the body write queues behind them.
    const fifos = Array.from({ length: 16 }, (_, i) => path.join(dir, `f${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    let unblocked: number[] = [];
    const unblock = () => (unblocked = fifos.map((f) => openSync(f, 'r+'))); // O_RDWR on a FIFO never blocks
    const input = new Readable({ read() {} });
    const received = spool.receive('BROKE', input, 1_000_000);
    const body = path.join(spool.dir, 'incoming', 'BROKE.eml');
    for (let i = 0; i < 1000 && !existsSync(body); i++) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setImmediate(r));
    const blocked = fifos.map((f) => fs.open(f, 'r'));
    await new Promise((r) => setImmediate(r));
    input.push(Buffer.from('From: <someone@sender.test>\r\n\r\nthe body of the message that was broken off\r\n'));
    await new Promise((r) => setImmediate(r));
    input.destroy(new Error('client went away'));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); // the pipeline's rejection handled
    // The lowest free descriptor: the body's, had it been closed under its queued write.
    const other = path.join(dir, 'other.json');
    const fd = openSync(other, 'w');
    setTimeout(unblock, 50);
    try {
      await expect(received).rejects.toBeInstanceOf(SmtpRefusal);
      await Promise.all(blocked.map(async (h) => (await h).close()));
      await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(other, 'utf8')).toBe('');
    } finally {
      closeSync(fd);
      for (const u of unblocked) closeSync(u);
    }
    expect(existsSync(body)).toBe(false);
  });

  it('discards bodies left in incoming/ by a crash (never acknowledged)', async () => {
    const spool = await newSpool();
    await spool.receive('C1', Readable.from([Buffer.from('partial')]), 100);
    expect(await spool.discardIncomplete()).toBe(1);
    expect(await spool.committedIds()).toEqual([]);
  });

  describe('on a full disk', () => {
    const mountpoint = mkdtempSync(path.join(os.tmpdir(), 'spool-tmpfs-'));
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountpoint], { stdio: 'ignore' });
      mounted = true;
    } catch {
      // not root: the test below is skipped
    }
    afterAll(() => {
      if (mounted) execFileSync('umount', [mountpoint]);
    });

    it.runIf(mounted)('refuses with 452 4.3.1, keeps the client stream in step and leaves no partial file', async () => {
      const spool = await newSpool(mountpoint);
      const input = Readable.from(Array.from({ length: 100 }, () => Buffer.alloc(8192, 0x62)));
      const err = await spool.receive('D1', input, 10_000_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmtpRefusal);
      expect((err as SmtpRefusal).reply).toMatchObject({ code: 452, enhanced: '4.3.1' });
      expect(input.readableEnded).toBe(true);
      expect(await fs.readdir(spool.incomingDir)).toEqual([]);
      expect(await spool.freeBytes()).toBeGreaterThan(200_000);
    });
  });

  it("writes the scanned copy (many small chunks) without rewriting the envelope, and hands delivery the copy's bytes or, past the bound, its path", async () => {
    const spool = await newSpool();
    await spool.receive('C1', Readable.from([Buffer.from('hello')]), 100);
    await spool.commit(envelope('C1'));
    const committed = await fs.stat(path.join(spool.dir, 'C1.json'));
    const lines = Array.from({ length: 500 }, (_, i) => `line ${i}\r\n`);
    await spool.writeScannedCopy('C1', async (out) => {
      for (const l of lines) out.write(l);
    });
    expect(await fs.readFile(spool.outputPath('C1'), 'utf8')).toBe(lines.join(''));
    // The envelope file is the one the commit wrote (same inode, untouched), and no temp file is left.
    const after = await fs.stat(path.join(spool.dir, 'C1.json'));
    expect([after.ino, after.mtimeMs]).toEqual([committed.ino, committed.mtimeMs]);
    expect((await fs.readdir(spool.dir)).sort()).toEqual(['C1.eml', 'C1.json', 'C1.out.eml', 'incoming']);
    expect(await spool.readOutput('C1', 1_000_000)).toEqual(Buffer.from(lines.join('')));
    expect(await spool.readOutput('C1', 100)).toBe(spool.outputPath('C1'));
    await spool.remove('C1');
    expect(await spool.readOutput('C1', 1_000_000)).toBeUndefined();
  });

  it('leaves no copy when producing it fails', async () => {
    const spool = await newSpool();
    await spool.receive('C2', Readable.from([Buffer.from('hello')]), 100);
    await spool.commit(envelope('C2'));
    await expect(
      spool.writeScannedCopy('C2', async (out) => {
        out.write('half a copy');
        throw new Error('the splitter refused it');
      }),
    ).rejects.toThrow('the splitter refused it');
    expect((await fs.readdir(spool.dir)).sort()).toEqual(['C2.eml', 'C2.json', 'incoming']);
    expect(await spool.readOutput('C2', 1_000_000)).toBeUndefined();
  });
});
