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
import { envelopeOf, openLedger } from './ledger/ledger.ts';

export type QuarantineDeps = CoreDeps;

export function listQuarantine(store: MetadataStore, o: { limit: number; offset?: number }): Promise<MessageRecord[]> {
  return store.list({ status: 'quarantined', limit: o.limit, offset: o.offset });
}

export function openQuarantined(quarantine: BlobStore, id: string): Readable {
  return quarantine.open(id);
}

export type ReleaseResult = { ok: true } | { ok: false; reason: string };

export async function releaseMessage(deps: QuarantineDeps, id: string, by: string): Promise<ReleaseResult> {
  const { quarantine, config, logger } = deps;
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
  return { ok: true };
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
