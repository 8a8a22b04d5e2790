// The delivery worker: sends the scanned copy of a message to each hosted domain's downstream
// servers with the original envelope. Per-recipient results are recorded, so a retry never sends
// again to a recipient the downstream already accepted. A 4xx or a dead host moves on to the
// next downstream host, then retries later with backoff; a 5xx fails that recipient. Nothing is
// removed from the spool before every recipient has a final outcome, and a message that failed
// keeps its body (in the message store) so that nothing is lost.
import { createReadStream } from 'node:fs';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Spool } from '../spool/spool.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DeliveryOutcome, MetadataStore } from '../store/metadata.ts';
import { RetryLater, type JobContext } from '../store/queue.ts';
import { domainOf } from '../../rules/envelope.ts';
import { retryDelay } from '../../rules/retry.ts';

export interface DeliveryDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  /** Where a message that could not be delivered is kept (the quarantine store). */
  keep: BlobStore;
  logger: Logger;
}

/** The event kind that marks a message released from quarantine (its delivery ends as 'released'). */
export const RELEASE_EVENT = 'released';

export interface RecipientResult {
  recipient: string;
  outcome: DeliveryOutcome;
  reply: string;
}

export async function handleDeliverJob(deps: DeliveryDeps, job: JobContext): Promise<void> {
  const { spool, store, config, logger } = deps;
  const id = job.messageId;
  const envelope = await spool.readEnvelope(id);
  if (!envelope || !(await spool.hasOutput(id))) {
    logger.debug({ id }, 'delivery job for a message no longer in the spool: already handled');
    return;
  }
  const final = new Set(store.deliveries(id).filter((d) => d.outcome !== 'deferred').map((d) => d.recipient));
  const pending = envelope.rcptTo.filter((r) => !final.has(r));
  for (const [domain, recipients] of groupByDomain(pending)) {
    const hosts = config.domains[domain]?.downstream ?? [];
    const results = hosts.length
      ? await deliverToHosts(deps, hosts, envelope.mailFrom, recipients, spool.outputPath(id))
      : recipients.map((recipient) => ({ recipient, outcome: 'deferred' as const, reply: `no downstream configured for ${domain}` }));
    for (const r of results) {
      store.recordDelivery(id, r.recipient, r.outcome, r.reply);
      logger.info({ id, rcpt: r.recipient, outcome: r.outcome, reply: r.reply }, 'delivery attempt');
    }
  }
  const deferred = store.deliveries(id).filter((d) => d.outcome === 'deferred');
  if (deferred.length > 0) {
    if (!job.isLastAttempt) {
      const delay = retryDelay(job.attempt, config.delivery);
      store.transition(id, ['delivering', 'releasing', 'deferred'], 'deferred', deferred[0].reply);
      throw new RetryLater(`${deferred.length} recipient(s) deferred: ${deferred[0].reply}`, delay);
    }
    for (const d of deferred) store.recordDelivery(id, d.recipient, 'failed', `gave up after ${job.attempt} attempts: ${d.reply}`);
  }
  await finish(deps, id);
}

/** Every recipient has a final outcome: record the message's state and clear it from the spool. */
async function finish(deps: DeliveryDeps, id: string): Promise<void> {
  const { spool, store, keep, logger } = deps;
  const results = store.deliveries(id);
  const failed = results.filter((d) => d.outcome === 'failed');
  if (failed.length > 0) {
    await keep.put(id, spool.outputPath(id));
    store.transition(id, ['delivering', 'releasing', 'deferred'], 'failed', `${failed[0].recipient}: ${failed[0].reply}`);
    store.addEvent(id, 'failed', failed.map((f) => `${f.recipient}: ${f.reply}`).join('; '));
  } else {
    const wasReleased = store.events(id).some((e) => e.kind === RELEASE_EVENT);
    store.transition(id, ['delivering', 'releasing', 'deferred'], wasReleased ? 'released' : 'delivered', results.at(-1)?.reply);
    store.addEvent(id, 'delivered', results.map((r) => `${r.recipient}: ${r.reply}`).join('; '));
  }
  await spool.remove(id);
  logger.info({ id, delivered: results.length - failed.length, failed: failed.length }, 'message done');
}

function groupByDomain(recipients: string[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const r of recipients) {
    const d = domainOf(r);
    groups.set(d, [...(groups.get(d) ?? []), r]);
  }
  return groups;
}

/** Tries the hosts in order; recipients deferred by one host are offered to the next. */
async function deliverToHosts(
  deps: DeliveryDeps,
  hosts: { host: string; port: number }[],
  from: string,
  recipients: string[],
  file: string,
): Promise<RecipientResult[]> {
  const settled: RecipientResult[] = [];
  let open = recipients;
  let lastDeferred: RecipientResult[] = [];
  for (const host of hosts) {
    if (open.length === 0) break;
    const results = await sendTransaction(deps, host, from, open, file);
    settled.push(...results.filter((r) => r.outcome !== 'deferred'));
    lastDeferred = results.filter((r) => r.outcome === 'deferred');
    open = lastDeferred.map((r) => r.recipient);
  }
  return [...settled, ...lastDeferred];
}

/** One SMTP transaction with one downstream host; every recipient gets an outcome. */
function sendTransaction(
  deps: DeliveryDeps,
  host: { host: string; port: number },
  from: string,
  recipients: string[],
  file: string,
): Promise<RecipientResult[]> {
  const { config } = deps;
  const where = `${host.host}:${host.port}`;
  const all = (outcome: DeliveryOutcome, reply: string) => recipients.map((recipient) => ({ recipient, outcome, reply }));
  return new Promise((resolve) => {
    const conn = new SMTPConnection({
      host: host.host,
      port: host.port,
      name: config.hostname,
      connectionTimeout: config.delivery.connectTimeoutMs,
      greetingTimeout: config.delivery.connectTimeoutMs,
      socketTimeout: 5 * 60_000,
      opportunisticTLS: true,
      // Downstream servers are the hosted domains' own, often with internal certificates.
      tls: { rejectUnauthorized: false },
      allowInternalNetworkInterfaces: true,
    });
    let done = false;
    const finish = (results: RecipientResult[]) => {
      if (done) return;
      done = true;
      conn.quit();
      resolve(results);
    };
    conn.once('error', (err: Error & { responseCode?: number }) => finish(all('deferred', `${where}: ${describe(err)}`)));
    conn.connect(() => {
      conn.send({ from, to: recipients }, createReadStream(file), (err, info) => {
        if (err) {
          const e = err as Error & { responseCode?: number; rejectedErrors?: (Error & { recipient?: string; responseCode?: number; response?: string })[] };
          const perRecipient = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient ?? '', r]));
          return finish(
            recipients.map((recipient) => {
              const r = perRecipient.get(recipient) ?? e;
              return { recipient, outcome: outcomeOf(r.responseCode), reply: `${where}: ${describe(r)}` };
            }),
          );
        }
        const rejected = new Map((info.rejectedErrors ?? []).map((r) => [(r as { recipient?: string }).recipient ?? '', r as Error & { responseCode?: number }]));
        finish(
          recipients.map((recipient) => {
            const r = rejected.get(recipient);
            return r
              ? { recipient, outcome: outcomeOf(r.responseCode), reply: `${where}: ${describe(r)}` }
              : { recipient, outcome: 'delivered', reply: `${where}: ${info.response}` };
          }),
        );
      });
    });
  });
}

/** A reply code of 5xx fails the recipient; 4xx, no reply at all (network) or anything else defers it. */
function outcomeOf(responseCode: number | undefined): DeliveryOutcome {
  return responseCode !== undefined && responseCode >= 500 ? 'failed' : 'deferred';
}

function describe(err: Error & { response?: string }): string {
  return err.response ?? err.message;
}
