// What a sender sees when the gateway cannot keep its promise: a 4xx, never a 250.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/config/schema.ts';
import { silentLogger } from '../../gateway/log.ts';
import { openQueue, openStores, runSmtp, type Stores } from '../../gateway/roles.ts';
import type { JobQueue } from '../../gateway/store/queue.ts';
import { sendRaw, testConfigInput } from '../support/gateway.ts';

describe('Redis unreachable', () => {
  let stores: Stores;
  let queue: JobQueue;
  let front: Awaited<ReturnType<typeof runSmtp>>;
  beforeAll(async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-noredis-'));
    const config = configSchema.parse(testConfigInput(dataDir, 9, { redis: { socket: path.join(dataDir, 'no-redis.sock') } }));
    stores = await openStores(config);
    queue = openQueue(config, { socketPath: config.redis.socket! });
    front = await runSmtp(config, stores, queue, silentLogger());
  });
  afterAll(async () => {
    await front?.close(500);
    await queue?.close().catch(() => {});
    stores?.store.close();
  });

  it('answers 451 4.3.0 at the end of DATA and keeps no copy that could be delivered later', async () => {
    const sent = await sendRaw(front.port, { from: 'bob@sender.test', to: ['alice@example.test'] }, 'Subject: x\r\n\r\nbody\r\n');
    expect(sent.code).toBe(451);
    expect(sent.response).toMatch(/^451 4\.3\.0 Queue temporarily unavailable/);
    expect(await stores.spool.committedIds()).toEqual([]);
    const [row] = await stores.store.list({ limit: 1 });
    expect(row).toMatchObject({ status: 'refused', lastReply: expect.stringContaining('451 4.3.0') });
  });
});
