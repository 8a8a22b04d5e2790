// Issue 9, several machines: the spool's shared copy in the database. Each "node" is a Spool with
// its own temporary directory over the same database, so a message accepted by one must be
// readable by another, survive the loss of the first one's directory, and be refused (451,
// nothing left anywhere) when the shared copy cannot be written. Also the database BlobStore.
import { createReadStream, mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlSpoolReplica, type SpoolReplica } from '../../../gateway/spool/replica.ts';
import { Spool, type Envelope } from '../../../gateway/spool/spool.ts';
import { sqlBlobStore } from '../../../gateway/store/blobs.ts';
import { q } from '../../../gateway/store/sql.ts';
import { SmtpRefusal } from '../../../rules/replies.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

/** Every byte value, NUL and high bytes included, then some mail-like text. */
const BINARY = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\r\nSubject: t\r\n\r\nbody\r\n')]);

const envelope = (id: string, rcptTo = ['c@example.test']): Envelope => ({
  id,
  receivedAt: 1,
  clientIp: '192.0.2.1',
  clientHostname: null,
  helo: 'h.test',
  mailFrom: 'a@b.test',
  rcptTo,
  size: BINARY.length,
  tls: false,
});

const tempDir = () => mkdtempSync(path.join(os.tmpdir(), 'spool-node-'));

async function node(replica: SpoolReplica, dir = tempDir()): Promise<Spool> {
  const spool = new Spool(dir, { replica });
  await spool.init();
  return spool;
}

async function accept(spool: Spool, id: string, body = BINARY, rcptTo?: string[]): Promise<void> {
  await spool.receive(id, Readable.from([body]), 10_000_000);
  await spool.commit(envelope(id, rcptTo));
}

const writeBytes = (data: Buffer | string) => async (out: Writable) => {
  out.write(data);
};

/** The files of a node's directory (incoming/ included), for "nothing left behind". */
async function filesOf(spool: Spool): Promise<string[]> {
  const top = (await fs.readdir(spool.dir)).filter((n) => n !== 'incoming');
  return [...top, ...(await fs.readdir(spool.incomingDir)).map((n) => `incoming/${n}`)].sort();
}

describe.each(DIALECTS)('spool replica on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let replica: SpoolReplica;
  const rows = async (id: string) => (await db.sql.all<{ kind: string }>(q`SELECT kind FROM spool_files WHERE message_id = ${id}`)).map((r) => r.kind).sort();

  beforeAll(async () => {
    db = await openTestSql(dialect);
    replica = sqlSpoolReplica(db.sql);
  });
  afterAll(() => db.close());

  it('stores files byte for byte, replaces them, lists only enveloped ids and removes all', async () => {
    await replica.put('R1', 'body', BINARY);
    expect(await replica.ids()).toEqual([]);
    await replica.put('R1', 'envelope', Buffer.from('{}'));
    await replica.put('R1', 'output', Buffer.from('old'));
    await replica.put('R1', 'output', Buffer.from([0, 0xff, 0x80]));
    const body = await replica.get('R1', 'body');
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(body!.equals(BINARY)).toBe(true);
    expect(await replica.get('R1', 'output')).toEqual(Buffer.from([0, 0xff, 0x80]));
    expect(await replica.has('R1', 'output')).toBe(true);
    expect(await replica.has('R2', 'output')).toBe(false);
    expect(await replica.get('R2', 'body')).toBeUndefined();
    expect(await replica.ids()).toEqual(['R1']);
    await replica.remove('R1');
    await replica.remove('R1');
    expect(await rows('R1')).toEqual([]);
    expect(await replica.ids()).toEqual([]);
  });

  it('sweeps files an interrupted commit left without an envelope, once they are an hour old', async () => {
    const spool = await node(replica);
    await replica.put('O1', 'body', BINARY); // a commit that died before its envelope
    await replica.put('O2', 'body', BINARY);
    await replica.put('O2', 'envelope', Buffer.from('{}')); // a message: never swept
    expect(await spool.sweepSharedOrphans()).toBe(0); // too young: its commit may still be running
    expect(await spool.sweepSharedOrphans(Date.now() + 61 * 60_000)).toBe(1);
    expect(await rows('O1')).toEqual([]);
    expect(await rows('O2')).toEqual(['body', 'envelope']);
    await replica.remove('O2');
  });

  it('a message committed on node A is read on node B, even after A is lost (a)', async () => {
    const a = await node(replica);
    await accept(a, 'A1');
    expect(await rows('A1')).toEqual(['body', 'envelope']);
    await fs.rm(a.dir, { recursive: true, force: true });

    const b = await node(replica);
    expect(await b.readEnvelope('A1')).toEqual(envelope('A1'));
    expect((await fs.readFile(b.messagePath('A1'))).equals(BINARY)).toBe(true);
    expect(await b.hasOutput('A1')).toBe(false);
    expect(await b.committedIds()).toContain('A1');
    await b.remove('A1');
  });

  it('an output written on B is seen on C; remove on C clears every node and the database (b, c)', async () => {
    const a = await node(replica);
    await accept(a, 'B1');
    const b = await node(replica);
    expect(await b.readEnvelope('B1')).toBeDefined();
    const output = Buffer.concat([Buffer.from('X-Mailmoat-ID: B1\r\n'), BINARY]);
    await b.writeOutput('B1', writeBytes(output));
    expect(await rows('B1')).toEqual(['body', 'envelope', 'output']);

    const c = await node(replica);
    expect(await c.hasOutput('B1')).toBe(true);
    expect((await fs.readFile(c.outputPath('B1'))).equals(output)).toBe(true);

    await c.remove('B1');
    expect(await rows('B1')).toEqual([]);
    expect(await filesOf(c)).toEqual([]);
    expect(await a.readEnvelope('B1')).toBeUndefined();
    // A's stale working copy went with it.
    expect(await filesOf(a)).toEqual([]);
    expect(await b.hasOutput('B1')).toBe(false);
    expect(
      await fs.access(b.outputPath('B1')).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    expect(await b.committedIds()).not.toContain('B1');
  });

  it('refuses with 451 and keeps nothing when the shared copy cannot be written (d)', async () => {
    const failing: SpoolReplica = {
      ...replica,
      async put(id, kind, data) {
        if (kind === 'envelope') throw new Error('database gone');
        return replica.put(id, kind, data);
      },
    };
    const a = await node(failing);
    await a.receive('D1', Readable.from([BINARY]), 10_000_000);
    const err = await a.commit(envelope('D1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpRefusal);
    expect((err as SmtpRefusal).reply).toMatchObject({ code: 451, enhanced: '4.3.0' });
    // The wire reply: the code, then the message (formatReply).
    expect(`${(err as SmtpRefusal).reply.code} ${(err as SmtpRefusal).message}`).toMatch(/^451 4\.3\.0 /);
    expect(await filesOf(a)).toEqual([]);
    expect(await rows('D1')).toEqual([]);
    expect(await (await node(replica)).readEnvelope('D1')).toBeUndefined();
  });

  it('a release (restoreForDelivery) on one node replaces another node’s older output and envelope (e)', async () => {
    const a = await node(replica);
    await accept(a, 'E1', BINARY, ['one@example.test', 'two@example.test']);
    await a.writeOutput('E1', writeBytes('old scanned copy'));
    const b = await node(replica);
    expect(await b.hasOutput('E1')).toBe(true);
    expect(await fs.readFile(b.outputPath('E1'), 'utf8')).toBe('old scanned copy');

    const c = await node(replica);
    const released = envelope('E1', ['two@example.test']);
    await c.restoreForDelivery(released, writeBytes('released copy'));

    expect(await b.readEnvelope('E1')).toEqual(released);
    expect(await fs.readFile(b.outputPath('E1'), 'utf8')).toBe('released copy');
    expect(JSON.parse(await fs.readFile(path.join(b.dir, 'E1.json'), 'utf8'))).toEqual(released);
    await b.remove('E1');
  });

  it('a release of a message no node holds any more is committed in the cluster', async () => {
    const c = await node(replica);
    await c.restoreForDelivery(envelope('E2'), writeBytes('released'));
    expect(await rows('E2')).toEqual(['envelope', 'output']);
    const d = await node(replica);
    expect(await d.committedIds()).toContain('E2');
    expect(await d.readEnvelope('E2')).toEqual(envelope('E2'));
    expect(await d.hasOutput('E2')).toBe(true);
    expect(await fs.readFile(d.outputPath('E2'), 'utf8')).toBe('released');
    await d.remove('E2');
  });

  it('a stale local output is dropped when the cluster has none', async () => {
    const a = await node(replica);
    await accept(a, 'S1');
    await fs.writeFile(a.outputPath('S1'), 'left over');
    expect(await a.readEnvelope('S1')).toEqual(envelope('S1'));
    expect(
      await fs.access(a.outputPath('S1')).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    await a.remove('S1');
  });

  it('evictLocal drops only the working copy; the message is fetched again when needed', async () => {
    const a = await node(replica);
    await accept(a, 'V1');
    await a.writeOutput('V1', writeBytes('out'));
    await a.evictLocal('V1');
    expect(await filesOf(a)).toEqual([]);
    expect(await rows('V1')).toEqual(['body', 'envelope', 'output']);
    expect(await a.readEnvelope('V1')).toEqual(envelope('V1'));
    expect((await fs.readFile(a.messagePath('V1'))).equals(BINARY)).toBe(true);
    expect(await fs.readFile(a.outputPath('V1'), 'utf8')).toBe('out');
    await a.remove('V1');
  });

  it('a split child received from the fetched parent body is committed in the cluster', async () => {
    const a = await node(replica);
    await accept(a, 'P1');
    const b = await node(replica);
    const parent = await b.readEnvelope('P1');
    await b.discardIncoming('P1-2');
    await b.receive('P1-2', createReadStream(b.messagePath(parent!.id)), Number.MAX_SAFE_INTEGER);
    await b.commit(envelope('P1-2', ['split@example.test']));
    const c = await node(replica);
    expect(await c.readEnvelope('P1-2')).toEqual(envelope('P1-2', ['split@example.test']));
    expect((await fs.readFile(c.messagePath('P1-2'))).equals(BINARY)).toBe(true);
    await c.remove('P1');
    await c.remove('P1-2');
  });

  it('quarantined bodies round-trip through the database blob store (f)', async () => {
    const blobs = sqlBlobStore(db.sql);
    const big = Buffer.concat([BINARY, Buffer.alloc(200_000, 0xfe), Buffer.from([0])]);
    const file = path.join(tempDir(), 'q.eml');
    await fs.writeFile(file, big);
    await blobs.put('Q1', file);
    expect(await blobs.size('Q1')).toBe(big.length);
    const chunks: Buffer[] = [];
    for await (const chunk of blobs.open('Q1')) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);

    // put again replaces (a retried quarantine); an empty body is a body.
    await fs.writeFile(file, '');
    await blobs.put('Q1', file);
    expect(await blobs.size('Q1')).toBe(0);
    expect(await text(blobs.open('Q1'))).toBe('');

    await blobs.delete('Q1');
    await blobs.delete('Q1');
    expect(await blobs.size('Q1')).toBeUndefined();
    const err = await text(blobs.open('Q1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});

describe('spool without a replica', () => {
  it('evictLocal leaves the only copy alone', async () => {
    const spool = new Spool(tempDir());
    await spool.init();
    await spool.receive('L1', Readable.from([BINARY]), 10_000_000);
    await spool.commit(envelope('L1'));
    await spool.evictLocal('L1');
    expect(await spool.readEnvelope('L1')).toEqual(envelope('L1'));
    expect(await spool.committedIds()).toEqual(['L1']);
  });
});
