// `mailmoat quarantine …`: list (with filters), show, release, delete. The command line acts as
// the superadmin, through the same operations and release-rights decision as the console.
import type { Config } from '../config/schema.ts';
import { attachedEndpoints } from '../endpoints.ts';
import { createLogger } from '../log.ts';
import { openQueue, openStores } from '../roles.ts';
import { deleteMessage, releaseMessage } from '../quarantine.ts';
import { decide } from '../../quarantine-ui/lib/rights.ts';
import type { Stores } from '../deps.ts';
import { UsageError } from './errors.ts';
import { safe, showMessage } from './show.ts';

const by = () => `cli:${process.env.USER ?? 'root'}`;

async function withStores<T>(config: Config, fn: (stores: Stores) => Promise<T>): Promise<T> {
  const stores = await openStores(config);
  try {
    return await fn(stores);
  } finally {
    await stores.store.close();
  }
}

/**
 * --since: an ISO date or time ("2026-12-01", "2026-12-01T08:00"), or an age ("30m", "12h", "7d").
 * Returns epoch ms.
 */
export function parseSince(text: string, now = Date.now()): number {
  const age = /^(\d+)\s*([smhdw])$/i.exec(text.trim());
  if (age) {
    const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[age[2].toLowerCase() as 's' | 'm' | 'h' | 'd' | 'w'];
    return now - Number(age[1]) * unit * 1000;
  }
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new UsageError(`--since: expected a date (2026-12-01, 2026-12-01T08:00) or an age (30m, 12h, 7d), got "${text}"`);
  return at;
}

export interface QuarantineFilter {
  limit: number;
  domain?: string;
  class?: string;
  since?: string;
  sender?: string;
  json?: boolean;
}

export function quarantineList(config: Config, o: QuarantineFilter): Promise<number> {
  const from = o.since === undefined ? undefined : parseSince(o.since);
  return withStores(config, async ({ store }) => {
    const { rows } = await store.searchMessages({
      scope: { all: true },
      statuses: ['quarantined'],
      verdict: o.class,
      domain: o.domain?.toLowerCase(),
      sender: o.sender,
      from,
      limit: o.limit,
    });
    if (o.json) {
      console.log(JSON.stringify(rows, null, 2));
      return 0;
    }
    if (rows.length === 0) console.log('quarantine is empty');
    for (const r of rows) {
      console.log(
        [
          r.id,
          new Date(r.receivedAt).toISOString(),
          r.verdict,
          safe(r.mailFrom) || '<>',
          r.rcptTo.map(safe).join(','),
          JSON.stringify(r.subject ?? ''),
          safe(r.reason),
        ].join('\t'),
      );
    }
    return 0;
  });
}

export function quarantineShow(config: Config, id: string, o: { json?: boolean }): Promise<number> {
  return withStores(config, async ({ store }) => {
    const record = await store.get(id);
    if (!record) throw new UsageError(`no message with id ${id}`);
    const events = await store.events(id);
    const deliveries = await store.deliveries(id);
    console.log(o.json ? JSON.stringify({ ...record, events, deliveries }, null, 2) : showMessage({ record, events, deliveries }));
    return 0;
  });
}

export function quarantineRelease(config: Config, id: string): Promise<number> {
  return withStores(config, async (stores) => {
    const record = await stores.store.get(id);
    if (!record) throw new UsageError(`no message with id ${id}`);
    const right = decide(config, record, 'superadmin', 'release');
    if (!right.allowed) throw new UsageError(`cannot release ${id}: ${right.reason}`);
    const queue = openQueue(config, attachedEndpoints(config).redis);
    try {
      const result = await releaseMessage({ config, ...stores, queue, logger: createLogger({ level: 'warn' }) }, id, by());
      if (!result.ok) throw new UsageError(`cannot release ${id}: ${result.reason}`);
      console.log(`${id} released: queued for delivery to ${record.rcptTo.join(', ')}`);
      return 0;
    } finally {
      await queue.close();
    }
  });
}

export function quarantineDelete(config: Config, id: string): Promise<number> {
  return withStores(config, async (stores) => {
    if (!(await stores.store.get(id))) throw new UsageError(`no message with id ${id}`);
    const result = await deleteMessage({ ...stores, logger: createLogger({ level: 'warn' }) }, id, by());
    if (!result.ok) throw new UsageError(`cannot delete ${id}: ${result.reason}`);
    console.log(`${id} deleted from the quarantine; its record is kept`);
    return 0;
  });
}
