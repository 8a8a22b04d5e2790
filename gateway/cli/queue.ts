// `mailmoat queue …`: mail still in the gateway's hands (gateway/delivery/queue-ops.ts).
import type { Config } from '../config/schema.ts';
import { attachedEndpoints } from '../endpoints.ts';
import { createLogger } from '../log.ts';
import { deliveryDeps, openQueue, openStores } from '../roles.ts';
import type { DeliveryDeps } from '../delivery/deliver.ts';
import { bounceMessage, deleteQueued, flushDeferred, listQueue, queueEntry, retryNow } from '../delivery/queue-ops.ts';
import { releasePoison } from '../poison.ts';
import type { Stores } from '../deps.ts';
import { UsageError } from './errors.ts';
import { localTime, safe, showMessage } from './show.ts';

const by = () => `cli:${process.env.USER ?? 'root'}`;

/** Opens the stores and the queue for one command, and closes them after it. */
async function withQueue<T>(config: Config, fn: (deps: DeliveryDeps, stores: Stores) => Promise<T>): Promise<T> {
  const stores = await openStores(config);
  const queue = openQueue(config, attachedEndpoints(config).redis);
  try {
    return await fn(deliveryDeps(config, stores, queue, createLogger({ level: 'warn' })), stores);
  } finally {
    await queue.close();
    await stores.store.close();
  }
}

export function queueList(config: Config, o: { limit: number; json?: boolean }): Promise<number> {
  return withQueue(config, async (deps) => {
    const entries = await listQueue(deps, o.limit);
    if (o.json) {
      console.log(JSON.stringify(entries, null, 2));
      return 0;
    }
    if (entries.length === 0) console.log('queue is empty');
    for (const e of entries) {
      const r = e.record;
      // Tab-separated for cut/awk; the receive time stays ISO (UTC) so that lines sort and parse.
      console.log(
        [
          r.id,
          r.status === 'held' ? 'held: poison' : r.status,
          new Date(r.receivedAt).toISOString(),
          safe(r.mailFrom) || '<>',
          r.rcptTo.map(safe).join(','),
          `next: ${e.nextAttempt ?? '-'}`,
          `job: ${e.job.queue}/${e.job.info?.state ?? 'none'}`,
          safe(r.lastReply ?? ''),
        ].join('\t'),
      );
    }
    return 0;
  });
}

export function queueCounts(config: Config): Promise<number> {
  return withQueue(config, async (deps, stores) => {
    console.log(JSON.stringify({ messages: await stores.store.countByStatus(), jobs: await deps.queue.counts() }, null, 2));
    return 0;
  });
}

export function queueShow(config: Config, id: string, o: { json?: boolean }): Promise<number> {
  return withQueue(config, async (deps, stores) => {
    const record = await stores.store.get(id);
    if (!record) throw new UsageError(`no message with id ${id}`);
    const entry = await queueEntry(deps, record);
    const events = await stores.store.events(id);
    const deliveries = await stores.store.deliveries(id);
    if (o.json) console.log(JSON.stringify({ ...entry, events, deliveries }, null, 2));
    else
      console.log(
        showMessage({ record, events, deliveries, queue: { job: `${entry.job.queue}/${entry.job.info?.state ?? 'none'}`, nextAttempt: entry.nextAttempt } }),
      );
    return 0;
  });
}

/** retry, bounce, delete: one message, by id. */
export function queueOp(config: Config, op: 'retry' | 'bounce' | 'delete' | 'release', id: string): Promise<number> {
  return withQueue(config, async (deps, stores) => {
    const record = await stores.store.get(id);
    if (!record) throw new UsageError(`no message with id ${id}`);
    if (record.status === 'held' && (op === 'retry' || op === 'bounce'))
      throw new UsageError(`${id} is held as poison: release it (process it once more) or delete it`);
    const ops = {
      retry: () => retryNow(deps, id),
      release: () => releasePoison(deps, id, by()),
      bounce: () => bounceMessage(deps, id, by()),
      delete: () => deleteQueued(deps, id, by()),
    };
    const result = await ops[op]();
    if (!result.ok) throw new UsageError(`cannot ${op} ${id}: ${result.reason}`);
    console.log(`${id}: ${result.detail}`);
    return 0;
  });
}

/** `queue flush [--domain D]`: every deferred message (for D) is tried now. */
export function queueFlush(config: Config, o: { domain?: string }): Promise<number> {
  return withQueue(config, async (deps) => {
    const { flushed, skipped } = await flushDeferred(deps, { domain: o.domain });
    for (const id of flushed) console.log(`${id}: tried again now`);
    for (const s of skipped) console.log(`${s.id}: skipped: ${s.reason}`);
    console.log(
      `${flushed.length} deferred message(s)${o.domain ? ` for ${o.domain}` : ''} tried again now${skipped.length ? `, ${skipped.length} skipped` : ''} (${localTime(Date.now())})`,
    );
    return 0;
  });
}
