// The scan worker: one job per spooled message. Scans with clamd and spamd in parallel, decides
// the verdict (rules/verdict.ts) and acts on it: deliver a stamped copy, quarantine, or try again
// later when a scanner is down. The job is idempotent: it can be run again after a crash at any
// point, and a message already handled (no longer in the spool) is left alone.
import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Spool, Envelope } from '../spool/spool.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { MetadataStore } from '../store/metadata.ts';
import { RetryLater, type JobContext, type JobQueue } from '../store/queue.ts';
import { decideVerdict, statusHeaders, type Verdict } from '../../rules/verdict.ts';
import { retryDelay } from '../../rules/retry.ts';
import type { ScanReport, SpamScan, VirusScan } from '../../scanners/types.ts';
import { stampMessage } from './stamp.ts';
import { receivedHeader } from './trace.ts';

export interface Scanners {
  virus(input: Readable): Promise<VirusScan>;
  spam(message: Buffer): Promise<SpamScan>;
}

export interface ScanDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  quarantine: BlobStore;
  queue: JobQueue;
  scanners: Scanners;
  logger: Logger;
}

/** Our own headers: removed from incoming mail before we add ours, so none can be forged. */
export const OWN_HEADER_PREFIXES = ['x-mailmoat-', 'x-spam-'];

export async function handleScanJob(deps: ScanDeps, job: JobContext): Promise<void> {
  const { spool, store, logger } = deps;
  const id = job.messageId;
  const envelope = await spool.readEnvelope(id);
  if (!envelope) {
    logger.debug({ id }, 'scan job for a message no longer in the spool: already handled');
    return;
  }
  const report = await scanMessage(deps, envelope);
  let verdict = decideVerdict(report, deps.config.spam);
  if (verdict.action === 'retry') {
    if (!job.isLastAttempt) {
      store.addEvent(id, 'scan-deferred', verdict.reason);
      logger.warn({ id, attempt: job.attempt, reason: verdict.reason }, 'scan deferred');
      throw new RetryLater(verdict.reason, retryDelay(job.attempt, deps.config.scan));
    }
    // Out of retries: never deliver unscanned mail; hold it for an administrator instead.
    verdict = { action: 'quarantine', class: 'unscannable', reason: `gave up scanning: ${verdict.reason}` };
  }
  if (verdict.action === 'quarantine') {
    await quarantineMessage(deps, envelope, report, verdict);
  } else {
    await prepareDelivery(deps, envelope, report, verdict);
  }
}

async function scanMessage(deps: ScanDeps, envelope: Envelope): Promise<ScanReport> {
  const { spool, scanners, config } = deps;
  const file = spool.messagePath(envelope.id);
  const spamInput: Promise<SpamScan> = !config.spamd.enabled
    ? Promise.resolve({ status: 'skipped', reason: 'spam scanning disabled' })
    : envelope.size > config.spamd.maxBytes
      ? Promise.resolve({ status: 'skipped', reason: `larger than ${config.spamd.maxBytes} bytes` })
      : fs.readFile(file).then((body) =>
          // spamd sees our trace header too, so it knows which relay handed the message to us.
          scanners.spam(Buffer.concat([Buffer.from(`Received: ${receivedHeader(envelope, config.hostname)}\r\n`), body])),
        );
  const [virus, spam] = await Promise.all([scanners.virus(createReadStream(file)), spamInput]);
  return { virus, spam };
}

async function quarantineMessage(deps: ScanDeps, envelope: Envelope, report: ScanReport, verdict: Verdict & { action: 'quarantine' }) {
  const { spool, store, quarantine, logger } = deps;
  const { id } = envelope;
  await quarantine.put(id, spool.messagePath(id));
  store.recordVerdict(id, { verdict: verdict.class, reason: verdict.reason, report, subject: await readSubject(spool.messagePath(id)) });
  store.transition(id, ['queued'], 'quarantined');
  store.addEvent(id, 'quarantined', verdict.reason);
  await spool.remove(id);
  logger.info({ id, verdict: verdict.class, reason: verdict.reason }, 'message quarantined');
}

async function prepareDelivery(deps: ScanDeps, envelope: Envelope, report: ScanReport, verdict: Verdict & { action: 'deliver' }) {
  const { spool, store, queue, config, logger } = deps;
  const { id } = envelope;
  let subject: string | null = null;
  await spool.writeOutput(id, async (out) => {
    const result = await stampMessage(createReadStream(spool.messagePath(id)), out, {
      prepend: [
        ['Received', receivedHeader(envelope, config.hostname)],
        ['X-Mailmoat-ID', id],
        ...statusHeaders(report, verdict, config.spam),
      ],
      removePrefixes: OWN_HEADER_PREFIXES,
      subjectTag: verdict.subjectTag,
    });
    subject = result.subject;
  });
  store.recordVerdict(id, { verdict: verdict.class, reason: verdict.reason, report, subject });
  store.transition(id, ['queued'], 'delivering');
  await queue.enqueue('deliver', id);
  logger.info({ id, verdict: verdict.class, reason: verdict.reason }, 'message scanned, queued for delivery');
}

/** The Subject of a quarantined message, for the quarantine list; the header block only is read. */
async function readSubject(file: string): Promise<string | null> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead).toString('latin1').split(/\r?\n\r?\n/)[0];
    const m = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
    return m ? m[1].replace(/\r?\n[ \t]+/g, ' ').trim() : null;
  } finally {
    await handle.close();
  }
}
