// Sends a DSN about a message: the report is a message of its own (null sender, its own id),
// committed to the spool like any accepted message and delivered by the same worker, so it is as
// durable as the mail it reports on. It is not scanned: we wrote it.
import { promises as fs } from 'node:fs';
import { ulid } from 'ulid';
import { domainOf } from '../../rules/envelope.ts';
import { readHeaderBlock } from '../spool/files.ts';
import type { Envelope } from '../spool/spool.ts';
import { commitGenerated, type NotifyDeps } from './generated.ts';
import { buildDsn, type DsnRecipient } from './dsn.ts';

export async function sendNotification(
  deps: NotifyDeps & { now?: () => number },
  about: Envelope,
  kind: 'failed' | 'delayed',
  recipients: DsnRecipient[],
): Promise<string> {
  const { config, spool } = deps;
  const now = (deps.now ?? Date.now)();
  const original = spool.outputPath(about.id);
  const full = about.dsn?.ret?.toUpperCase() === 'FULL' && kind === 'failed' && about.size <= config.delivery.returnFullMaxBytes;
  const message = buildDsn({
    kind,
    reportingMta: config.hostname,
    messageId: about.id,
    sender: about.mailFrom,
    arrivalDate: about.receivedAt,
    now,
    recipients,
    originalHeaders: await readHeaderBlock(original),
    originalMessage: full ? await fs.readFile(original) : undefined,
    envid: about.dsn?.envid,
    willRetryUntil: about.receivedAt + config.delivery.maxLifetimeMs,
  });
  const id = ulid();
  await commitGenerated(deps, {
    id,
    rcptTo: [about.mailFrom],
    verdict: 'dsn',
    reason: `${kind} notice for ${about.id}`,
    subject: kind === 'failed' ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)',
    about: about.id,
    size: message.length,
    produce: async (out) => {
      out.write(message);
    },
  });
  return id;
}

/** Times of recent DSNs per sender domain, for delivery.maxDsnPerDomainPerHour (this process only). */
export class DsnRateWindow {
  private readonly sent = new Map<string, number[]>();

  countLastHour(sender: string, now: number): number {
    const key = domainOf(sender);
    const recent = (this.sent.get(key) ?? []).filter((t) => t > now - 3600_000);
    if (recent.length === 0) this.sent.delete(key);
    else this.sent.set(key, recent);
    return recent.length;
  }

  note(sender: string, now: number): void {
    const key = domainOf(sender);
    this.sent.set(key, [...(this.sent.get(key) ?? []), now]);
  }
}
