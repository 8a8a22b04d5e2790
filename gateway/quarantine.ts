// Quarantine operations shared by the CLI and the console: list, show, release, delete. A release is a
// compare-and-set quarantined → releasing, so one message is released (and delivered) once, even
// when two admins click at the same moment.
import type { Readable } from 'node:stream';
import type { CoreDeps } from './deps.ts';
import type { BlobStore } from './store/blobs.ts';
import type { MessageRecord, MetadataStore } from './store/metadata.ts';
import { stampMessage } from './pipeline/stamp.ts';
import { receivedHeader } from './pipeline/trace.ts';
import { OWN_HEADER_PREFIXES } from './pipeline/scan.ts';
import type { Learner } from './learner/learner.ts';
import { TEXT_BYTES } from '../scanners/learner/features.ts';
import { domainOf } from '../rules/envelope.ts';
import { envelopeOf, openLedger } from './ledger/ledger.ts';

export interface QuarantineDeps extends CoreDeps {
  /** The learned filter: a released spam is learned as ham for the recipients' domains. */
  learner?: Pick<Learner, 'teach'>;
}

export function listQuarantine(store: MetadataStore, o: { limit: number; offset?: number }): Promise<MessageRecord[]> {
  return store.list({ status: 'quarantined', limit: o.limit, offset: o.offset });
}

export function openQuarantined(quarantine: BlobStore, id: string): Readable {
  return quarantine.open(id);
}

export type ReleaseResult = { ok: true } | { ok: false; reason: string };

export async function releaseMessage(deps: QuarantineDeps, id: string, by: string): Promise<ReleaseResult> {
  const { quarantine, config, logger } = deps;
  const record = await deps.store.get(id);
  if (!record) return { ok: false, reason: 'no such message' };
  const result = await openLedger(deps).release(id, by, async (out, record) => {
    // Only the copy is made here; its envelope is the one the message was received with (ledger).
    const envelope = envelopeOf(record);
    await stampMessage(quarantine.open(id), out, {
      prepend: [
        ['Received', receivedHeader(envelope, config.hostname)],
        ['X-Mailmoat-ID', id],
        ['X-Mailmoat-Status', `released; was quarantined as ${record.verdict ?? 'unknown'} (${record.reason ?? ''}); released by ${by}`],
      ],
      removePrefixes: OWN_HEADER_PREFIXES,
      subjectTag: null,
    });
  });
  if (!result.ok) return result;
  logger.info({ id, by }, 'released from quarantine');
  if (deps.learner && (record.verdict === 'spam' || record.verdict === 'high-spam')) await learnReleaseAsHam(deps, record, by);
  return { ok: true };
}

/**
 * A released spam was wanted mail: the learner learns it as ham for each hosted recipient domain,
 * with one person's weight (rules/learner.ts); an administrator's "learn as not spam" confirms it.
 * The release stands whatever happens here; a failure is an event on the message.
 */
async function learnReleaseAsHam(deps: QuarantineDeps, record: MessageRecord, by: string): Promise<void> {
  const domains = [...new Set(record.rcptTo.map(domainOf))].filter((d) => deps.config.domains[d]);
  try {
    const head = await readHead(deps.quarantine.open(record.id), TEXT_BYTES + 200);
    for (const domain of domains) {
      const t = await deps.learner!.teach(head, { as: 'ham', reporter: by, domain, trusted: false });
      await deps.store.addEvent(record.id, 'learned', `release: ${t.detail}`);
    }
  } catch (err) {
    await deps.store.addEvent(record.id, 'learn-failed', `release not learned as ham: ${(err as Error).message}`).catch(() => {});
  }
}

async function readHead(input: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of input) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size >= n) break;
  }
  input.destroy();
  return Buffer.concat(chunks).subarray(0, n);
}

export type DeleteResult = { ok: true } | { ok: false; reason: string };

/**
 * Deletes a quarantined message: a compare-and-set quarantined → deleted (so a message being
 * released cannot also be deleted, and two deletes do one), then its body is removed. The row
 * and its events stay, so the message log still shows what happened and who did it.
 */
export async function deleteMessage(deps: Pick<QuarantineDeps, 'store' | 'quarantine' | 'logger'>, id: string, by: string): Promise<DeleteResult> {
  const result = await openLedger(deps).deleteQuarantined(id, by);
  if (!result.ok) return result;
  deps.logger.info({ id, by }, 'deleted from quarantine');
  return { ok: true };
}
