// What a sender sees when the gateway cannot keep its promise: a 4xx, never a 250.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configSchema } from '../../gateway/config/schema.ts';
import { metricValue } from '../../gateway/metrics.ts';
import { openQueue, openStores, runSmtp, type Stores } from '../../gateway/roles.ts';
import type { JobQueue } from '../../gateway/store/queue.ts';
import { mailboxMessages, sendRaw, startTestGateway, testConfigInput, waitFor, type TestGateway } from '../support/gateway.ts';
import { proxiedPostgres, type TestDatabase } from '../support/databases.ts';
import { type TcpProxy } from '../support/socket-proxy.ts';
import { mailDate } from '../support/mime.ts';

/** A logger whose JSON lines a test reads: what an operator finds in the journal. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { logger, lines };
}

describe('Redis unreachable', () => {
  const log = capturingLogger();
  let stores: Stores;
  let queue: JobQueue;
  let front: Awaited<ReturnType<typeof runSmtp>>;
  beforeAll(async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-noredis-'));
    const config = configSchema.parse(testConfigInput(dataDir, 9, { redis: { socket: path.join(dataDir, 'no-redis.sock') } }));
    stores = await openStores(config);
    queue = openQueue(config, { socketPath: config.redis.socket! });
    front = await runSmtp(config, stores, queue, log.logger);
  });
  afterAll(async () => {
    await front?.close(500);
    await queue?.close().catch(() => {});
    stores?.store.close();
  });

  it('answers 451 4.3.0 at the end of DATA and keeps no copy that could be delivered later; logs and counts it', async () => {
    const before = await metricValue('mailmoat_smtp_store_failures_total', { store: 'queue' });
    const sent = await sendRaw(front.port, { from: 'bob@sender.test', to: ['alice@example.test'] }, 'Subject: x\r\n\r\nbody\r\n');
    expect(sent.code).toBe(451);
    expect(sent.response).toMatch(/^451 4\.3\.0 Queue temporarily unavailable/);
    expect(await metricValue('mailmoat_smtp_store_failures_total', { store: 'queue' })).toBe(before + 1);
    expect(log.lines.filter((l) => l.store === 'queue')).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'could not store the message (queue); refused with 451',
        reply: expect.stringMatching(/^451 4\.3\.0 /),
        err: expect.anything(),
      }),
    ]);
    expect(await stores.spool.committedIds()).toEqual([]);
    const [row] = await stores.store.list({ limit: 1 });
    expect(row).toMatchObject({ status: 'refused', lastReply: expect.stringContaining('451 4.3.0') });
  });
});

describe('PostgreSQL unreachable (several machines: database.url)', () => {
  const log = capturingLogger();
  let gw: TestGateway;
  let proxy: TcpProxy;
  let database: TestDatabase;
  const message = (n: number) => `From: bob@sender.test\r\nTo: alice@example.test\r\nSubject: pg outage ${n}\r\nDate: ${mailDate()}\r\n\r\nbody ${n}\r\n`;
  const delivered = async () => (await mailboxMessages(gw, 'alice@example.test')).map((m) => /Subject: pg outage (\d+)/.exec(m.toString('latin1'))?.[1]);

  beforeAll(async () => {
    let url: string;
    ({ database, proxy, url } = await proxiedPostgres({ migrated: true }));
    gw = await startTestGateway({ overrides: { database: { url, poolSize: 4 } }, logger: log.logger });
  });
  afterAll(async () => {
    await gw?.stop();
    await proxy?.close();
    await database?.drop();
  });

  it('answers 451 4.3.0 while the database is away (logged and counted), delivers nothing it did not accept, and recovers', async () => {
    const first = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, message(1));
    expect(first.code).toBe(250);
    await waitFor(async () => ((await delivered()).includes('1') ? true : undefined), { what: 'message 1 delivered' });

    proxy.cut();
    const failuresBefore = await metricValue('mailmoat_smtp_store_failures_total', { store: 'database' });
    const during = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, message(2));
    expect(during.code).toBe(451);
    expect(during.response).toMatch(/^451 4\.3\.0 /);
    // The operator sees why: one error line naming the database, and the count on /metrics.
    expect(await metricValue('mailmoat_smtp_store_failures_total', { store: 'database' })).toBe(failuresBefore + 1);
    expect(log.lines.filter((l) => l.store === 'database')).toEqual([
      expect.objectContaining({ level: 50, msg: 'could not store the message (database); refused with 451', id: expect.any(String), err: expect.anything() }),
    ]);

    proxy.restore();
    const after = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, message(3));
    expect(after.code).toBe(250);
    await waitFor(async () => ((await delivered()).includes('3') ? true : undefined), { what: 'message 3 delivered' });
    expect((await delivered()).sort()).toEqual(['1', '3']);
  });
});
