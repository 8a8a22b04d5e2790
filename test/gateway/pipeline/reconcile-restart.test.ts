// A worker restarted after Redis lost its data (the README's advice) on the several-machines
// storage (PostgreSQL, shared spool): reconciliation queues every message again from the spool and
// evicts this node's local copies. Workers must take jobs only after that, or a scan job reads a
// copy that was just evicted (ENOENT on spool/<id>.eml, once an uncaught stream error that ended
// the process). Every message must arrive, once.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../../support/gateway.ts';

describe('restarting the workers after Redis lost its data', () => {
  let gw: TestGateway;
  afterAll(async () => {
    await gw?.stop();
  });

  it('requeues every spooled message and delivers each once, with no stream error', async () => {
    gw = await startTestGateway({ database: 'postgres' });
    await gw.stopWorkers();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [`user${i}@example.test`] }, `Subject: lost ${i}\r\n\r\nbody ${i}\r\n`);
      expect(sent.code).toBe(250);
      ids.push(sent.id!);
    }
    // Redis loses its data: every key of this gateway goes.
    const redis = new Redis({ path: (gw.endpoints.redis as { socketPath: string }).socketPath });
    try {
      const keys = await redis.keys(`${gw.config.redis.prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    await gw.startWorkers();
    for (const id of ids) await waitForStatus(gw, id, ['delivered'], 20_000);
    for (let i = 0; i < 6; i++) {
      const copies = await mailboxMessages(gw, `user${i}@example.test`);
      expect(copies).toHaveLength(1);
      expect(copies[0].toString()).toContain(`body ${i}`);
    }
  }, 60_000);
});
