// ClamdClient against the real clamd of the test run (test signatures, see
// deploy/clamav-test-db/README.md), plus tiny fake servers for replies a healthy clamd never
// sends (hang, garbage, cut-off reply).
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../gateway/log.ts';
import { startManagedClamd } from '../../gateway/services/managed.ts';
import { ClamdClient, ClamdError, parseScanReply } from '../../scanners/clamd.ts';
import { eicarBytes } from '../support/eicar.ts';
import { createRunDir, removeRunDir } from '../support/global-setup.ts';
import { nestedZip, zip } from '../support/zip.ts';

const services = inject('services');
const EICAR_SIG = /^Mailmoat\.Eicar\.Test\.H[DS]B\.UNOFFICIAL$/;
const MARKER = 'MAILMOAT-TEST-VIRUS-MARKER-0001';

const client = () => new ClamdClient({ socketPath: services.clamdSocket }, { timeoutMs: 30_000 });

function mimeMessage(o: { text: string; attachment?: { name: string; type: string; data: Buffer } }): Buffer {
  const lines = [
    'From: sender@example.com',
    'To: rcpt@example.net',
    'Subject: test',
    'Message-ID: <clamd-test@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    o.text,
  ];
  if (o.attachment) {
    const b64 = o.attachment.data.toString('base64').replace(/(.{76})/g, '$1\r\n');
    lines.push(
      '--b1',
      `Content-Type: ${o.attachment.type}; name="${o.attachment.name}"`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${o.attachment.name}"`,
      '',
      b64,
    );
  }
  lines.push('--b1--', '');
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

describe('ClamdClient against the real clamd', () => {
  it('answers PING and VERSION', async () => {
    await expect(client().ping()).resolves.toBeUndefined();
    await expect(client().version()).resolves.toMatch(/^ClamAV \d+\.\d+/);
  });

  it('reports plain text as clean', async () => {
    expect(await client().scan(Buffer.from('Hello, this is an ordinary message.\r\n'))).toEqual({ status: 'clean' });
  });

  it('finds the raw EICAR file', async () => {
    const r = await client().scan(eicarBytes());
    expect(r.status).toBe('infected');
    if (r.status === 'infected') expect(r.viruses[0]).toMatch(EICAR_SIG);
  });

  it('finds EICAR as a base64 MIME attachment in a whole message', async () => {
    const msg = mimeMessage({ text: 'see attached', attachment: { name: 'eicar.com', type: 'application/octet-stream', data: eicarBytes() } });
    const r = await client().scan(msg);
    expect(r.status).toBe('infected');
  });

  it('finds EICAR inside a zip, also inside a zip attached to a message', async () => {
    const archive = zip([
      { name: 'readme.txt', data: Buffer.from('hello') },
      { name: 'eicar.com', data: eicarBytes() },
    ]);
    expect((await client().scan(archive)).status).toBe('infected');
    const msg = mimeMessage({ text: 'zip attached', attachment: { name: 'files.zip', type: 'application/zip', data: archive } });
    expect((await client().scan(msg)).status).toBe('infected');
  });

  it('finds the NDB marker in plain text and after MIME decoding', async () => {
    const plain = await client().scan(Buffer.from(`some text ${MARKER} more text`));
    expect(plain).toEqual({ status: 'infected', viruses: ['Mailmoat.Test.Marker.NDB.UNOFFICIAL'] });
    const encoded = mimeMessage({ text: 'x', attachment: { name: 'a.txt', type: 'text/plain', data: Buffer.from(`ab ${MARKER} cd`) } });
    expect(encoded.includes(MARKER)).toBe(false);
    expect((await client().scan(encoded)).status).toBe('infected');
  });

  it('scans a Readable, with EICAR split across chunk boundaries and empty chunks in between', async () => {
    const bytes = eicarBytes();
    // EICAR must be the whole file for the MD5 signature; the marker matches anywhere.
    const chunks = [bytes.subarray(0, 10), Buffer.alloc(0), bytes.subarray(10, 11), bytes.subarray(11)];
    const r1 = await client().scan(Readable.from(chunks));
    expect(r1.status).toBe('infected');
    const marker = Buffer.from(`zz ${MARKER} zz`);
    const r2 = await client().scan(Readable.from([marker.subarray(0, 8), Buffer.alloc(0), marker.subarray(8)]));
    expect(r2.status).toBe('infected');
  });

  it('reports archives nested deeper than MaxRecursion as unscannable, never clean', async () => {
    const deep = nestedZip(Buffer.from('harmless'), 'a.txt', 20);
    const r = await client().scan(deep);
    expect(r).toEqual({ status: 'unscannable', reason: expect.stringContaining('Heuristics.Limits.Exceeded.MaxRecursion') });
  });

  it('handles parallel scans on separate connections', async () => {
    const c = client();
    const results = await Promise.all([c.scan(Buffer.from('clean one')), c.scan(eicarBytes()), c.scan(Buffer.from('clean two')), c.scan(Buffer.from(MARKER))]);
    expect(results.map((r) => r.status)).toEqual(['clean', 'infected', 'clean', 'infected']);
  });

  it('stops at the client limit and reports unscannable', async () => {
    const c = new ClamdClient({ socketPath: services.clamdSocket }, { timeoutMs: 10_000, maxStreamBytes: 1000 });
    expect(await c.scan(Buffer.alloc(1000, 0x61))).toEqual({ status: 'clean' });
    const r = await c.scan(Readable.from([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x61)]));
    expect(r).toEqual({ status: 'unscannable', reason: expect.stringContaining('1000 bytes') });
  });

  it('reports an error, not clean, when the message stream fails', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk read failed'));
      },
    });
    const r = await client().scan(failing);
    expect(r).toEqual({ status: 'error', reason: expect.stringContaining('disk read failed') });
  });

  it('throws only for programmer errors', async () => {
    await expect(client().scan('text' as unknown as Buffer)).rejects.toThrow(TypeError);
    expect(() => new ClamdClient({ socketPath: '/x' }, { timeoutMs: 0 })).toThrow(TypeError);
  });
});

describe('ClamdClient against a clamd with small limits', () => {
  let dir: string;
  let stop: () => Promise<void>;
  let socketPath: string;
  const LIMIT = 2 * 1024 * 1024;

  beforeAll(async () => {
    dir = await createRunDir('clamd-limits');
    const clamd = await startManagedClamd({ dir: join(dir, 'clamd'), databaseDir: services.clamavDb, logger: silentLogger(), maxBytes: LIMIT });
    socketPath = clamd.socketPath;
    stop = () => clamd.stop();
  });
  afterAll(async () => {
    await stop?.();
    await removeRunDir(dir);
  });

  it("maps clamd's INSTREAM size limit to unscannable, for buffers and streams, every time", async () => {
    const c = new ClamdClient({ socketPath }, { timeoutMs: 30_000 });
    // Repeated on purpose: clamd closes the socket right after its answer, and an EPIPE on our
    // side used to race with reading that answer.
    for (let i = 0; i < 10; i++) {
      const big = await c.scan(Buffer.alloc(LIMIT + 300_000, 0x41));
      expect(big).toEqual({ status: 'unscannable', reason: expect.stringContaining('size limit exceeded') });
      const stream = Readable.from(
        (function* () {
          for (let n = 0; n < 40; n++) yield Buffer.alloc(65_536, 0x42);
        })(),
      );
      expect((await c.scan(stream)).status).toBe('unscannable');
    }
  });

  it('maps a decompression bomb over MaxScanSize to unscannable', async () => {
    const bomb = gzipSync(Buffer.alloc(LIMIT * 2));
    expect(bomb.length).toBeLessThan(LIMIT);
    const r = await new ClamdClient({ socketPath }, { timeoutMs: 30_000 }).scan(bomb);
    expect(r).toEqual({ status: 'unscannable', reason: expect.stringMatching(/Heuristics\.Limits\.Exceeded\.Max(ScanSize|FileSize)/) });
  });
});

describe('ClamdClient when clamd is missing or misbehaves', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailmoat-clamd-fake-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A one-behaviour fake clamd on a unix socket. */
  async function fakeClamd(onConnection: (s: net.Socket) => void): Promise<{ socketPath: string; close: () => Promise<void> }> {
    const socketPath = join(dir, `fake-${Math.random().toString(36).slice(2)}.sock`);
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      onConnection(s);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return {
      socketPath,
      close: () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
  }

  /** Reads a whole INSTREAM request, then runs `reply`. */
  const afterRequest = (reply: (s: net.Socket) => void) => (s: net.Socket) => {
    let seen = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      seen = Buffer.concat([seen, d]);
      if (seen.subarray(-4).equals(Buffer.alloc(4))) reply(s);
    });
  };

  it('reports a dead socket path as error', async () => {
    const c = new ClamdClient({ socketPath: join(dir, 'nobody-here.sock') }, { timeoutMs: 2000 });
    expect(await c.scan(Buffer.from('x'))).toEqual({ status: 'error', reason: expect.stringContaining('ENOENT') });
    await expect(c.ping()).rejects.toThrow(ClamdError);
  });

  it('reports a hanging clamd as error after the timeout', async () => {
    const fake = await fakeClamd(() => {
      /* accepts, never answers */
    });
    const c = new ClamdClient({ socketPath: fake.socketPath }, { timeoutMs: 300 });
    const t0 = Date.now();
    expect(await c.scan(Buffer.from('x'))).toEqual({ status: 'error', reason: expect.stringContaining('300 ms') });
    expect(Date.now() - t0).toBeLessThan(3000);
    await expect(c.ping()).rejects.toThrow(/300 ms/);
    await fake.close();
  });

  it('reports garbage and cut-off replies as error, never clean', async () => {
    for (const reply of ['HELLO THERE\0', 'stream: OK', 'stream: O', '', 'stream: OK\0stream: ???\0']) {
      const fake = await fakeClamd(afterRequest((s) => s.end(reply)));
      const r = await new ClamdClient({ socketPath: fake.socketPath }, { timeoutMs: 2000 }).scan(Buffer.from('x'));
      expect(r.status, JSON.stringify(reply)).toBe('error');
      await fake.close();
    }
  });

  it('keeps several signatures (AllMatchScan) and treats limit pseudo-signatures as unscannable', async () => {
    const several = await fakeClamd(afterRequest((s) => s.end('stream: Sig.One FOUND\0stream: Sig.Two FOUND\0')));
    expect(await new ClamdClient({ socketPath: several.socketPath }, { timeoutMs: 2000 }).scan(Buffer.from('x'))).toEqual({
      status: 'infected',
      viruses: ['Sig.One', 'Sig.Two'],
    });
    await several.close();
    expect(parseScanReply(Buffer.from('stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0')).status).toBe('unscannable');
    expect(parseScanReply(Buffer.from('stream: Heuristics.Encrypted.Zip FOUND\0')).status).toBe('unscannable');
    expect(parseScanReply(Buffer.from('stream: Heuristics.Limits.Exceeded.MaxFiles FOUND\0stream: Win.Trojan.X FOUND\0'))).toEqual({
      status: 'infected',
      viruses: ['Heuristics.Limits.Exceeded.MaxFiles', 'Win.Trojan.X'],
    });
    expect(parseScanReply(Buffer.from('INSTREAM size limit exceeded. ERROR\0')).status).toBe('unscannable');
    expect(parseScanReply(Buffer.from('COMMAND READ TIMED OUT\0')).status).toBe('error');
  });

  it('frames INSTREAM exactly (64 KiB frames, zero terminator), also over TCP', async () => {
    let request = Buffer.alloc(0);
    const server = net.createServer((s) => {
      s.on('data', (d: Buffer) => {
        request = Buffer.concat([request, d]);
        if (request.subarray(-4).equals(Buffer.alloc(4))) s.end('stream: OK\0');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const r = await new ClamdClient({ host: '127.0.0.1', port }, { timeoutMs: 5000 }).scan(payload);
    expect(r).toEqual({ status: 'clean' });
    expect(request.subarray(0, 10).toString('latin1')).toBe('zINSTREAM\0');
    const frames: Buffer[] = [];
    for (let at = 10; ;) {
      const len = request.readUInt32BE(at);
      if (len === 0) break;
      expect(len).toBeLessThanOrEqual(65_536);
      frames.push(request.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    expect(Buffer.concat(frames).equals(payload)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
  });

  it('does not crash when the server closes mid-stream without a word', async () => {
    const fake = await fakeClamd((s) => s.once('data', () => s.destroy()));
    const r = await new ClamdClient({ socketPath: fake.socketPath }, { timeoutMs: 5000 }).scan(Buffer.alloc(4 * 1024 * 1024));
    expect(r.status).toBe('error');
    await fake.close();
  });
});
