// Contract of the ledger (gateway/ledger/): each verb's legal and illegal moves, what it leaves in
// the spool, the blob store and the queue, and that a crash between two of its steps leaves a
// state start-up reconciliation finishes. Run against both metadata stores (SQLite, PostgreSQL)
// with in-memory fakes of the spool and the queue: no Redis, clamd or SMTP needed.
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLedger, type Ledger, type Verdict } from '../../../gateway/ledger/ledger.ts';
import { lastOf } from '../../../gateway/ledger/events.ts';
import { reconcileSpool } from '../../../gateway/pipeline/reconcile.ts';
import type { Envelope } from '../../../gateway/spool/spool.ts';
import { fileBlobStore, type BlobStore } from '../../../gateway/store/blobs.ts';
import { openMetadataStore, type MetadataStore } from '../../../gateway/store/metadata.ts';
import { silentLogger } from '../../../gateway/log.ts';
import type { FinalState, KnownFacts } from '../../../gateway/summary.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';
import { MemorySpool } from '../../support/fake-spool.ts';
import { MemoryQueue } from '../../support/fake-queue.ts';

const skipped = { status: 'skipped' as const, reason: 'test' };
const verdict = (v: string): Verdict => ({ verdict: v, reason: `${v} reason`, report: { virus: skipped, spam: skipped }, subject: 'hello' });

const envelope = (id: string, rcptTo = ['alice@example.test']): Envelope => ({
  id,
  receivedAt: 1_000,
  clientIp: '192.0.2.1',
  clientHostname: 'mx.sender.test',
  helo: 'mx.sender.test',
  mailFrom: 'bob@sender.test',
  rcptTo,
  size: 20,
  tls: true,
  dsn: { ret: 'FULL', envid: 'env-1', recipients: Object.fromEntries(rcptTo.map((r) => [r, { notify: ['FAILURE'], orcpt: `rfc822;${r}` }])) },
});

const readAll = async (r: Readable) => {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('latin1');
};

describe.each(DIALECTS)('the ledger on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: MetadataStore;
  let spool: MemorySpool;
  let queue: MemoryQueue;
  let blobs: BlobStore;
  let blobDir: string;
  let finals: [string, FinalState][];
  let ledger: Ledger;
  let n = 0;

  beforeEach(async () => {
    db = await openTestSql(dialect);
    store = openMetadataStore(db.sql);
    spool = new MemorySpool();
    queue = new MemoryQueue();
    blobDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-ledger-blobs-'));
    blobs = fileBlobStore(blobDir);
    finals = [];
    ledger = openLedger({ store, spool, queue, quarantine: blobs, logger: silentLogger(), onFinal: (id, s) => void finals.push([id, s]) });
  });
  afterEach(async () => {
    await db.close();
    await spool.close();
    await fs.rm(blobDir, { recursive: true, force: true });
  });

  /** A message accepted over SMTP, as the SMTP role does: spool commit, then the ledger. */
  async function accepted(rcptTo?: string[]): Promise<Envelope> {
    const env = envelope(`M${++n}${dialect}`, rcptTo);
    await spool.accept(env, 'Subject: hello\r\n\r\nbody\r\n');
    await ledger.accept(env);
    return env;
  }

  /** Scanned and queued for delivery (the scan's copy written first, as act.ts does). */
  async function delivering(rcptTo?: string[]): Promise<Envelope> {
    const env = await accepted(rcptTo);
    queue.take('scan', env.id);
    await spool.writeCopy(env.id, 'X-Mailmoat-ID: x\r\nSubject: hello\r\n\r\nbody\r\n');
    await ledger.planDeliver(env.id, verdict('clean'));
    return env;
  }

  async function quarantined(rcptTo?: string[]): Promise<Envelope> {
    const env = await accepted(rcptTo);
    queue.take('scan', env.id);
    await ledger.planQuarantine(env.id, verdict('banned'), { kind: 'quarantined', reason: 'banned attachment', policySaidReject: false });
    return env;
  }

  const status = async (id: string) => (await store.get(id))?.status;

  it('accept: queued, with a scan job and the envelope kept whole (DSN parameters included)', async () => {
    const env = await accepted();
    expect(await status(env.id)).toBe('queued');
    expect(await queue.hasJob('scan', env.id)).toBe(true);
    expect((await store.get(env.id))?.envelope).toEqual(env);
  });

  it('planQuarantine: the body kept, the spool cleared, then quarantined; a final state', async () => {
    const env = await quarantined();
    expect(await status(env.id)).toBe('quarantined');
    expect(await readAll(blobs.open(env.id))).toContain('body');
    expect(await spool.committedIds()).toEqual([]);
    expect(lastOf(await store.events(env.id), 'quarantined')).toEqual({ kind: 'quarantined', reason: 'banned attachment', policySaidReject: false });
    expect(finals).toEqual([[env.id, 'quarantined']]);
  });

  it('planDeliver: delivering with its verdict and a delivery job; not from a final state', async () => {
    const env = await delivering();
    expect(await status(env.id)).toBe('delivering');
    expect((await store.get(env.id))?.verdict).toBe('clean');
    expect(await queue.hasJob('deliver', env.id)).toBe(true);
    const q = await quarantined();
    await ledger.planDeliver(q.id, verdict('clean'));
    expect(await status(q.id)).toBe('quarantined');
    expect((await store.get(q.id))?.verdict).toBe('banned'); // the refused move wrote nothing
  });

  it('refuse: refused with the reply, spool cleared; a message already settled is left as it is', async () => {
    const env = await accepted();
    expect(await ledger.refuse(env.id, '554 5.7.1 virus', { why: 'inline' })).toBe(true);
    expect(await status(env.id)).toBe('refused');
    expect((await store.get(env.id))?.lastReply).toBe('554 5.7.1 virus');
    expect(await spool.committedIds()).toEqual([]);
    const q = await quarantined();
    expect(await ledger.refuse(q.id, '554 5.7.1 virus')).toBe(false);
    expect(await status(q.id)).toBe('quarantined');
    expect((await store.events(q.id)).map((e) => e.kind)).not.toContain('refused');
  });

  it('defer then finish: deferred with the next attempt as a field, then delivered; the spool cleared', async () => {
    const env = await delivering();
    await ledger.defer(env.id, { kind: 'deferred', nextAttempt: '2026-12-05T00:00:00.000Z', recipients: 1, reply: '451 4.3.0 try later' });
    expect(await status(env.id)).toBe('deferred');
    expect(lastOf(await store.events(env.id), 'deferred')?.nextAttempt).toBe('2026-12-05T00:00:00.000Z');
    await store.recordDelivery(env.id, 'alice@example.test', 'delivered', '250 ok');
    expect(await ledger.finish(env.id, async () => expect.unreachable('no bounce for a delivered message'))).toBe('delivered');
    expect(await status(env.id)).toBe('delivered');
    expect(await spool.committedIds()).toEqual([]);
    expect(finals.at(-1)).toEqual([env.id, 'delivered']);
  });

  it('finishAllDelivered: the last results, the status and its event in one commit; refused (nothing written) when a recipient failed or the move is illegal', async () => {
    const env = await delivering(['alice@example.test', 'carol@example.test']);
    await store.recordDelivery(env.id, 'alice@example.test', 'delivered', '250 first');
    const commits = { n: 0 };
    const counted: MetadataStore = { ...store, step: (s) => (commits.n++, store.step(s)), recordDelivery: (...a) => (commits.n++, store.recordDelivery(...a)) };
    const one = openLedger({ store: counted, spool, queue, quarantine: blobs, logger: silentLogger(), onFinal: (id, st) => void finals.push([id, st]) });
    expect(await one.finishAllDelivered(env.id, [{ recipient: 'carol@example.test', reply: '250 second' }])).toBe(true);
    expect(commits.n).toBe(1);
    expect(await status(env.id)).toBe('delivered');
    expect((await store.deliveries(env.id)).map((d) => [d.recipient, d.outcome])).toEqual([
      ['alice@example.test', 'delivered'],
      ['carol@example.test', 'delivered'],
    ]);
    expect(lastOf(await store.events(env.id), 'delivered')?.results).toEqual([
      { recipient: 'alice@example.test', reply: '250 first' },
      { recipient: 'carol@example.test', reply: '250 second' },
    ]);
    expect((await store.get(env.id))?.lastReply).toBe('250 second');
    expect(await spool.committedIds()).toEqual([]);
    expect(finals.at(-1)).toEqual([env.id, 'delivered']);

    const failed = await delivering(['alice@example.test', 'carol@example.test']);
    await store.recordDelivery(failed.id, 'alice@example.test', 'failed', '550 5.1.1 unknown');
    expect(await ledger.finishAllDelivered(failed.id, [{ recipient: 'carol@example.test', reply: '250 ok' }])).toBe(false);
    expect(await status(failed.id)).toBe('delivering');
    expect((await store.deliveries(failed.id)).map((d) => d.recipient)).toEqual(['alice@example.test']);
    const q = await quarantined();
    expect(await ledger.finishAllDelivered(q.id, [{ recipient: 'alice@example.test', reply: '250 ok' }])).toBe(false);
    expect(await store.deliveries(q.id)).toEqual([]); // the refused move wrote no delivery row either
  });

  it('finishAllDelivered after a deferral, with the rows its caller read: a released message finishes as released, one never released as delivered; its summary gets every result without a read back', async () => {
    const reads = { deliveries: 0 };
    const known: KnownFacts[] = [];
    const counted: MetadataStore = { ...store, deliveries: (id) => (reads.deliveries++, store.deliveries(id)) };
    const one = openLedger({
      store: counted,
      spool,
      queue,
      quarantine: blobs,
      logger: silentLogger(),
      onFinal: (id, st, k) => void (finals.push([id, st]), known.push(k)),
    });
    const deferredOnce = async (env: Envelope) => {
      await store.recordDelivery(env.id, 'alice@example.test', 'delivered', '250 first');
      await store.recordDelivery(env.id, 'carol@example.test', 'deferred', '451 later');
      await one.defer(env.id, { kind: 'deferred', nextAttempt: '2026-12-05T00:00:00.000Z', recipients: 1, reply: '451 later' });
      expect(await status(env.id)).toBe('deferred');
      return store.deliveries(env.id);
    };
    const rcpts = ['alice@example.test', 'carol@example.test'];
    const released = await quarantined(rcpts);
    expect((await ledger.release(released.id, 'admin', async (out) => void out.write('released copy\r\n'))).ok).toBe(true);
    const plain = await delivering(rcpts);
    for (const [env, final] of [
      [released, 'released'],
      [plain, 'delivered'],
    ] as const) {
      const earlier = await deferredOnce(env);
      reads.deliveries = 0;
      expect(await one.finishAllDelivered(env.id, [{ recipient: 'carol@example.test', reply: '250 second' }], { earlier })).toBe(true);
      expect(await status(env.id)).toBe(final);
      expect(finals.at(-1)).toEqual([env.id, final]);
      expect(reads.deliveries).toBe(0);
      expect(known.at(-1)?.deliveries?.map((d) => [d.recipient, d.outcome, d.reply])).toEqual([
        ['alice@example.test', 'delivered', '250 first'],
        ['carol@example.test', 'delivered', '250 second'],
      ]);
      expect((await store.deliveries(env.id)).map((d) => [d.recipient, d.outcome, d.reply])).toEqual([
        ['alice@example.test', 'delivered', '250 first'],
        ['carol@example.test', 'delivered', '250 second'],
      ]);
    }
  });

  it('finish with a failed recipient: its copy kept, bounced, failed; defer from a final state is refused', async () => {
    const env = await delivering();
    await store.recordDelivery(env.id, 'alice@example.test', 'failed', '550 5.1.1 unknown');
    const bounced: string[] = [];
    expect(await ledger.finish(env.id, async (failed) => void bounced.push(...failed.map((f) => f.recipient)))).toBe('failed');
    expect(bounced).toEqual(['alice@example.test']);
    expect(finals.at(-1)).toEqual([env.id, 'bounced']);
    expect(await readAll(blobs.open(env.id))).toContain('X-Mailmoat-ID');
    await ledger.defer(env.id, { kind: 'deferred', nextAttempt: '2026-12-05T00:00:00.000Z', recipients: 1, reply: 'late' });
    expect(await status(env.id)).toBe('failed');
  });

  it('release: once, into the spool with the envelope as received, delivered as "released"', async () => {
    const env = await quarantined();
    const produce = async (out: NodeJS.WritableStream) => void out.write('released copy\r\n');
    const [a, b] = await Promise.all([ledger.release(env.id, 'admin', produce), ledger.release(env.id, 'admin', produce)]);
    expect([a.ok, b.ok].sort()).toEqual([false, true]);
    expect(await status(env.id)).toBe('releasing');
    expect(await spool.readEnvelope(env.id)).toEqual(env);
    expect(await spool.readOutput(env.id)).toBe('released copy\r\n');
    expect(await queue.hasJob('deliver', `${env.id}-release`)).toBe(true);
    await store.recordDelivery(env.id, 'alice@example.test', 'delivered', '250 ok');
    expect(await ledger.finish(env.id, async () => {})).toBe('released');
  });

  it('release that cannot write the copy: back in the quarantine, nothing left in the spool or the queue', async () => {
    const env = await quarantined();
    spool.failNext('restoreForDelivery');
    const r = await ledger.release(env.id, 'admin', async () => {});
    expect(r).toEqual({ ok: false, reason: 'release failed: injected failure: spool.restoreForDelivery' });
    expect(await status(env.id)).toBe('quarantined');
    expect(await spool.committedIds()).toEqual([]);
    expect(await queue.hasJob('deliver', `${env.id}-release`)).toBe(false);
  });

  it('deleteQuarantined: once; the body goes, the record stays; a message in flight is not deleted that way', async () => {
    const env = await quarantined();
    expect(await ledger.deleteQuarantined(env.id, 'admin')).toEqual({ ok: true, detail: 'deleted' });
    expect(await ledger.deleteQuarantined(env.id, 'admin')).toEqual({ ok: false, reason: 'not in quarantine (status: deleted)' });
    expect(await blobs.size(env.id)).toBeUndefined();
    const d = await delivering();
    expect((await ledger.deleteQuarantined(d.id, 'admin')).ok).toBe(false);
    expect(await status(d.id)).toBe('delivering');
  });

  it('hold and releaseHold: held from its stage, back to that stage with a fresh job; deleteSpooled only while held', async () => {
    const env = await delivering();
    queue.take('deliver', env.id);
    expect(await ledger.hold(env.id, 'deliver', 3, 'crashed')).toBe(true);
    expect(await status(env.id)).toBe('held');
    expect(lastOf(await store.events(env.id), 'held-poison')?.was).toBe('delivering');
    expect(await ledger.hold(env.id, 'deliver', 3, 'again')).toBe(false);
    expect(await ledger.releaseHold(env.id, 'admin')).toEqual({ ok: true, detail: 'released: queued for deliver again' });
    expect(await status(env.id)).toBe('delivering');
    expect(await queue.hasJob('deliver', env.id)).toBe(true);
    expect(await ledger.deleteSpooled(env.id, 'admin', 'poison hold')).toBe(false);
    queue.take('deliver', env.id);
    await ledger.hold(env.id, 'deliver', 3, 'crashed again');
    expect(await ledger.deleteSpooled(env.id, 'admin', 'poison hold')).toBe(true);
    expect(await status(env.id)).toBe('deleted');
    expect(await spool.committedIds()).toEqual([]);
  });

  it('expire: a quarantined message once (deleted, body gone); another final one keeps its status', async () => {
    const q = await quarantined();
    expect(await ledger.expire((await store.get(q.id))!, 30)).toBe('expired');
    expect(await status(q.id)).toBe('deleted');
    expect(await blobs.size(q.id)).toBeUndefined();
    const d = await delivering();
    await store.recordDelivery(d.id, 'alice@example.test', 'failed', '550 no');
    await ledger.finish(d.id, async () => {});
    expect(await ledger.expire((await store.get(d.id))!, 30)).toBe('removed');
    expect(await ledger.expire((await store.get(d.id))!, 30)).toBe('skipped');
    expect(await status(d.id)).toBe('failed');
  });

  it('abandonAccept: the spool entry goes even when the store refuses the refusal record', async () => {
    const env = envelope(`A${++n}${dialect}`);
    await spool.accept(env, 'body');
    await store.recordReceived(env);
    await ledger.abandonAccept(env.id, '451 4.3.0 queue unavailable');
    expect(await spool.committedIds()).toEqual([]);
    expect(await status(env.id)).toBe('refused');
    const other = envelope(`B${++n}${dialect}`);
    await spool.accept(other, 'body');
    const broken = openLedger({ store: { ...store, step: () => Promise.reject(new Error('store down')) }, spool, queue, logger: silentLogger() });
    await broken.abandonAccept(other.id, '451 4.3.0 queue unavailable');
    expect(await spool.committedIds()).toEqual([]);
  });

  it('a verb that needs a port the ledger was opened without throws, before writing anything', async () => {
    const env = await accepted();
    const storeOnly = openLedger({ store, logger: silentLogger() });
    await expect(storeOnly.planQuarantine(env.id, verdict('banned'), { kind: 'quarantined', reason: 'r', policySaidReject: false })).rejects.toThrow(
      /without the blob store/,
    );
    expect(await status(env.id)).toBe('queued');
    expect(await store.events(env.id)).toEqual([]);
  });

  it('submitGenerated: delivering with a delivery job, once per id', async () => {
    const env = { ...envelope(`G${++n}${dialect}`), mailFrom: '' };
    const produce = async (out: NodeJS.WritableStream) => void out.write('a notice\r\n');
    expect(await ledger.submitGenerated(env, produce, verdict('dsn'), 'dsn about x')).toBe(true);
    expect(await ledger.submitGenerated(env, produce, verdict('dsn'), 'dsn about x')).toBe(false);
    expect(await status(env.id)).toBe('delivering');
    expect(await queue.hasJob('deliver', env.id)).toBe(true);
    expect((await store.events(env.id)).map((e) => e.kind)).toEqual(['generated']);
  });

  it('planDeliverHere: delivering with its verdict and no job (its scan job attempts it); handToDelivery queues it; not twice', async () => {
    const env = await accepted();
    await spool.writeCopy(env.id, 'X-Mailmoat-ID: x\r\n\r\nbody\r\n');
    expect(await ledger.planDeliverHere(env.id, verdict('clean'))).toBe(true);
    expect(await status(env.id)).toBe('delivering');
    expect((await store.get(env.id))?.verdict).toBe('clean');
    expect(await queue.hasJob('deliver', env.id)).toBe(false);
    // A scan run again finds it planned already: the caller hands it on instead.
    expect(await ledger.planDeliverHere(env.id, verdict('clean'))).toBe(false);
    await ledger.handToDelivery(env.id, { delayMs: 1_000, attemptsBefore: 1 });
    expect(await queue.hasJob('deliver', env.id)).toBe(true);
    expect(lastOf(await store.events(env.id), 'requeued')).toBeNull();
    await ledger.handToDelivery(env.id, {}, 'scan job run again');
    expect(lastOf(await store.events(env.id), 'requeued')).toEqual({ kind: 'requeued', queue: 'deliver', by: 'scan job run again' });
  });

  describe('a crash between two steps, then start-up reconciliation', () => {
    const reconcile = () => reconcileSpool({ spool, store, quarantine: blobs, queue, logger: silentLogger() });

    it('quarantine: spool cleared but the status not yet written → finished as quarantined', async () => {
      const env = await accepted();
      queue.take('scan', env.id);
      const crashing = openLedger({
        store: { ...store, step: (s) => (s.to === 'quarantined' ? Promise.reject(new Error('crash')) : store.step(s)) },
        spool,
        queue,
        quarantine: blobs,
        logger: silentLogger(),
      });
      await expect(crashing.planQuarantine(env.id, verdict('banned'), { kind: 'quarantined', reason: 'r', policySaidReject: false })).rejects.toThrow('crash');
      expect(await status(env.id)).toBe('queued');
      await reconcile();
      expect(await status(env.id)).toBe('quarantined');
      expect(await queue.hasJob('scan', env.id)).toBe(false);
    });

    it('planDeliver: delivering written, the enqueue lost → queued again for delivery', async () => {
      const env = await accepted();
      queue.take('scan', env.id);
      await spool.writeCopy(env.id, 'copy');
      queue.failNextEnqueue();
      await expect(ledger.planDeliver(env.id, verdict('clean'))).rejects.toThrow('injected');
      expect(await reconcile()).toBe(1);
      expect(await queue.hasJob('deliver', env.id)).toBe(true);
      expect(lastOf(await store.events(env.id), 'requeued')).toEqual({ kind: 'requeued', queue: 'deliver' });
    });

    it('planDeliverHere: delivering written, its scan job lost with Redis before the attempt or hand-over → queued for delivery', async () => {
      const env = await accepted();
      await spool.writeCopy(env.id, 'copy');
      expect(await ledger.planDeliverHere(env.id, verdict('clean'))).toBe(true);
      queue.take('scan', env.id);
      expect(await reconcile()).toBe(1);
      expect(await queue.hasJob('deliver', env.id)).toBe(true);
      expect(await queue.hasJob('scan', env.id)).toBe(false);
      expect(lastOf(await store.events(env.id), 'requeued')).toEqual({ kind: 'requeued', queue: 'deliver' });
    });

    it('finish: delivered written, the spool not yet cleared → the leftover is removed, never sent again', async () => {
      const env = await delivering();
      queue.take('deliver', env.id);
      await store.recordDelivery(env.id, 'alice@example.test', 'delivered', '250 ok');
      spool.failNext('remove');
      await expect(ledger.finish(env.id, async () => {})).rejects.toThrow('injected');
      expect(await status(env.id)).toBe('delivered');
      expect(await reconcile()).toBe(0);
      expect(await spool.committedIds()).toEqual([]);
      expect(await queue.hasJob('deliver', env.id)).toBe(false);
    });

    it('accept: committed to the spool, the row never written → recorded and scanned', async () => {
      const env = envelope(`C${++n}${dialect}`);
      await spool.accept(env, 'body');
      expect(await reconcile()).toBe(1);
      expect(await status(env.id)).toBe('queued');
      expect(await queue.hasJob('scan', env.id)).toBe(true);
    });
  });
});
