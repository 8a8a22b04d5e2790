// One machine's parts for the tests of a message's life below the job runners (the scan job run
// again, the first delivery attempt): a data dir of its own with a real SQLite store and spool, the
// in-memory queue that records what it was asked, a blob store; and a message accepted into them
// as the SMTP side would have (spooled, committed, its row written by the ledger).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../gateway/log.ts';
import { openLedger, type Ledger } from '../../gateway/ledger/ledger.ts';
import { Spool, type Envelope } from '../../gateway/spool/spool.ts';
import { fileBlobStore, type BlobStore } from '../../gateway/store/blobs.ts';
import { openMetadataStore, type MetadataStore } from '../../gateway/store/metadata.ts';
import { openTestSql } from './databases.ts';
import { RecordingQueue } from './fake-queue.ts';

export interface LocalParts {
  dir: string;
  store: MetadataStore;
  spool: Spool;
  queue: RecordingQueue;
  quarantine: BlobStore;
}

/** A fresh data dir (named after `prefix`) with its parts; each is undone through `cleanups`. */
export async function localParts(prefix: string, cleanups: (() => Promise<unknown>)[]): Promise<LocalParts> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const db = await openTestSql('sqlite');
  cleanups.push(() => db.close());
  const spool = new Spool(path.join(dir, 'spool'));
  await spool.init();
  return { dir, store: openMetadataStore(db.sql), spool, queue: new RecordingQueue(), quarantine: fileBlobStore(path.join(dir, 'kept')) };
}

/** An envelope from bob@sender.test (id M1, to alice@example.test unless given). */
export function testEnvelope(o: { id?: string; rcptTo?: string[] } = {}): Envelope {
  return {
    id: o.id ?? 'M1',
    receivedAt: Date.now(),
    clientIp: '192.0.2.1',
    clientHostname: null,
    helo: 'h.test',
    mailFrom: 'bob@sender.test',
    rcptTo: o.rcptTo ?? ['alice@example.test'],
    size: 10,
    tls: false,
  };
}

/** The body the accepted message has. */
export const TEST_BODY = 'Subject: hi\r\n\r\nbody\r\n';

/** The message spooled and committed (what a crash may leave again: the tests call it twice). */
export async function spoolMessage(spool: Spool, env: Envelope): Promise<void> {
  await spool.receive(env.id, Readable.from([Buffer.from(TEST_BODY)]), 1_000);
  await spool.commit(env);
}

/** The message spooled, committed and recorded as accepted; the ledger over these parts. */
export async function acceptMessage(parts: LocalParts, env: Envelope): Promise<Ledger> {
  await spoolMessage(parts.spool, env);
  const ledger = openLedger({ store: parts.store, spool: parts.spool, queue: parts.queue, quarantine: parts.quarantine, logger: silentLogger() });
  await ledger.accept(env);
  return ledger;
}
