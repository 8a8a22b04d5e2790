// Retention: quarantined messages are deleted after retention.quarantineDays (like MailScanner's
// 30-day quarantine clean-up), the copies kept of other messages are removed then too, and the
// message log is pruned after retention.logDays (like MailWatch). Every worker process runs it
// (runWorkers), so it is safe when several do at once: a quarantined message is expired by a
// compare-and-set, its event is written once, body deletes are idempotent, and the log purge
// skips the rows another process is deleting.
import type { Config } from './config/schema.ts';
import type { Logger } from './log.ts';
import type { BlobStore } from './store/blobs.ts';
import type { MetadataStore } from './store/metadata.ts';
import { openLedger } from './ledger/ledger.ts';

const DAY_MS = 86_400_000;
/** Messages (or refusals) handled per store call, so that no query or transaction is unbounded. */
const BATCH = 500;

export interface RetentionDeps {
  config: Pick<Config, 'retention'>;
  store: MetadataStore;
  quarantine: BlobStore;
  logger: Logger;
}

export interface RetentionCounts {
  /** Quarantined messages deleted by this call. */
  expired: number;
  /** Messages of another final status whose kept copy (if any) this call removed. */
  keptRemoved: number;
  /** Messages removed from the log, with their events and deliveries. */
  purgedMessages: number;
  purgedRefusals: number;
}

/** One pass: expires what is older than the configured days. An aborted `signal` ends it after the current batch. */
export async function expireOnce(deps: RetentionDeps, now = Date.now(), signal?: AbortSignal): Promise<RetentionCounts> {
  const { quarantineDays, logDays } = deps.config.retention;
  const counts: RetentionCounts = { expired: 0, keptRemoved: 0, purgedMessages: 0, purgedRefusals: 0 };
  if (quarantineDays > 0) {
    const before = now - quarantineDays * DAY_MS;
    for (;;) {
      const batch = await deps.store.expiredKept(before, BATCH);
      let handled = 0;
      for (const m of batch) {
        try {
          const outcome = await openLedger(deps).expire(m, quarantineDays);
          if (outcome === 'expired') counts.expired++;
          if (outcome === 'removed') counts.keptRemoved++;
          handled++;
        } catch (err) {
          deps.logger.warn({ id: m.id, err }, 'retention: could not expire a message; it is tried again next time');
        }
      }
      // A message that failed stays in the next batch: stop when a batch made no progress.
      if (batch.length < BATCH || handled === 0 || signal?.aborted) break;
    }
  }
  if (logDays > 0 && !signal?.aborted) {
    const before = now - logDays * DAY_MS;
    for (;;) {
      const purged = await deps.store.purgeLog(before, BATCH);
      counts.purgedMessages += purged.messages;
      counts.purgedRefusals += purged.refusals;
      if ((purged.messages < BATCH && purged.refusals < BATCH) || signal?.aborted) break;
    }
  }
  if (Object.values(counts).some((n) => n > 0)) deps.logger.info({ ...counts, quarantineDays, logDays }, 'retention: expired old messages');
  return counts;
}

/**
 * Runs expireOnce shortly after start, then every `everyMs` (never two at once in this process).
 * Errors are logged, never thrown. stop() ends a pass under way after its current batch and waits for it.
 */
export function startRetention(deps: RetentionDeps, everyMs: number, o: { firstDelayMs?: number } = {}): { stop(): Promise<void> } {
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number) => {
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  const tick = () => {
    running = expireOnce(deps, Date.now(), stopping.signal)
      .then(
        () => {},
        (err: unknown) => deps.logger.error({ err }, 'retention: the expiry pass failed; it runs again at the next check'),
      )
      .finally(() => {
        running = undefined;
        if (!stopping.signal.aborted) schedule(everyMs);
      });
  };
  schedule(o.firstDelayMs ?? 60_000);
  return {
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
