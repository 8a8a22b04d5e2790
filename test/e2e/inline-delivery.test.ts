// The first delivery attempt is made by the scan job itself (gateway/delivery/deliver.ts
// attemptFirstHere). What a user must still see: a message the downstream defers waits in the
// queue listing with its next attempt, and its second attempt is the deliver queue's; a crash
// during that first attempt loses nothing and leaves nothing in delivery without a job; one
// downstream never gets more connections than its limit, nor the gateway more attempts at once
// than queue.deliverConcurrency, however many scan workers make first attempts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startMailbox, type Mailbox } from '../../gateway/demo/mailbox.ts';
import { listQueue } from '../../gateway/delivery/queue-ops.ts';
import { openRedis } from '../../gateway/store/queue.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const gateways: TestGateway[] = [];
const children: ChildProcess[] = [];
const mailboxes: Mailbox[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const g of gateways.splice(0)) await g.stop();
  for (const m of mailboxes.splice(0)) await m.close();
});
afterAll(async () => {
  for (const m of mailboxes) await m.close();
});

async function gateway(o: Parameters<typeof startTestGateway>[0]): Promise<TestGateway> {
  const gw = await startTestGateway(o);
  gateways.push(gw);
  return gw;
}

const kinds = async (gw: TestGateway, id: string) =>
  (await gw.stores.store.events(id)).map((e) => `${e.kind}${e.data && 'queue' in e.data ? `:${String(e.data.queue)}` : ''}`);

describe('the first delivery attempt, made by the scan job', () => {
  it('delivers a clean message with no deliver job at all', async () => {
    const gw = await gateway({});
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['grace@example.test'] }, 'Subject: one job\r\n\r\nclean\r\n');
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['delivered']);
    expect(await mailboxMessages(gw, 'grace@example.test')).toHaveLength(1);
    // A deliver job leaves no job behind (removed on completion), but BullMQ's event log of the queue records every one added.
    const redis = openRedis(gw.endpoints.redis, 'client');
    try {
      expect(await redis.xlen(`${gw.config.redis.prefix}:deliver:events`)).toBe(0);
      expect(await redis.xlen(`${gw.config.redis.prefix}:scan:events`)).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
    expect(await kinds(gw, sent.id!)).not.toContain('requeued:deliver');
  });

  it('hands a deferred message to the deliver queue: listed as deferred with its next attempt, attempt 2 by the deliver job delivers', async () => {
    let offers = 0;
    const gw = await gateway({
      overrides: { delivery: { retryDelayMs: 1_500, maxRetryDelayMs: 2_000, connectTimeoutMs: 3_000 } },
      mailboxHooks: { refuseRecipient: () => (++offers === 1 ? { code: 451, text: '4.3.0 come back later' } : undefined) },
    });
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['grace@example.test'] }, 'Subject: later\r\n\r\ndeferred once\r\n');
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['deferred', 'delivered']);
    // The listing `mailmoat queue` and the console print (the hand-over follows the 'deferred' record at once).
    const entry = await waitFor(
      async () => (await listQueue({ store: gw.stores.store, queue: gw.queue }, 10)).find((e) => e.record.id === sent.id && e.job.info !== undefined),
      { what: 'the deferred message in the queue listing' },
    );
    expect(entry.record.status).toBe('deferred');
    expect(entry.nextAttempt).not.toBeNull();
    expect(Date.parse(entry.nextAttempt!)).toBeGreaterThan(Date.now());
    expect(entry.job).toMatchObject({ queue: 'deliver', info: { state: 'delayed', attemptsMade: 1 } });
    await waitForStatus(gw, sent.id!, ['delivered']);
    expect(await mailboxMessages(gw, 'grace@example.test')).toHaveLength(1);
    expect(offers).toBe(2);
    // The retry is attempt 2 (its proof write says so), as if a deliver job had made attempt 1.
    const attempts = (await gw.stores.store.events(sent.id!)).filter((e) => e.kind === 'delivery-attempt').map((e) => e.detail);
    expect(attempts).toEqual(['attempt 2']);
    expect(await kinds(gw, sent.id!)).toContain('deferred');
  });

  it('never opens more connections to one downstream than its limit, nor more attempts than deliverConcurrency', async () => {
    // Transactions waiting for their reply at once: at one downstream, and at both together.
    const busy = { one: 0, all: 0 };
    const most = { one: 0, all: 0 };
    const holdFor = (one: boolean) => async () => {
      if (one) most.one = Math.max(most.one, ++busy.one);
      most.all = Math.max(most.all, ++busy.all);
      await new Promise((r) => setTimeout(r, 250));
      if (one) busy.one--;
      busy.all--;
    };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-inline-'));
    const one = await startMailbox({ dir: path.join(dir, 'one'), host: '127.0.0.1', port: 0, hooks: { beforeReply: holdFor(true) } });
    const many = await startMailbox({ dir: path.join(dir, 'many'), host: '127.0.0.1', port: 0, hooks: { beforeReply: holdFor(false) } });
    mailboxes.push(one, many);
    const gw = await gateway({
      overrides: {
        queue: { lockDurationMs: 3_000, scanConcurrency: 6, deliverConcurrency: 2 },
        delivery: { retryDelayMs: 500, maxRetryDelayMs: 2_000, connectTimeoutMs: 3_000, externalConcurrency: 1 },
        domains: {
          'example.test': { downstream: [{ host: '127.0.0.1', port: one.port, maxConnections: 1 }] },
          'wide.test': { downstream: [{ host: '127.0.0.1', port: many.port, maxConnections: 10 }] },
        },
      },
    });
    const ids = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const to = i % 2 === 0 ? `grace${i}@example.test` : `ada${i}@wide.test`;
        const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [to] }, `Subject: n${i}\r\n\r\nbody ${i}\r\n`);
        expect(sent.code).toBe(250);
        return sent.id!;
      }),
    );
    for (const id of ids) await waitForStatus(gw, id, ['delivered'], 30_000);
    expect(most.one).toBe(1);
    expect(most.all).toBe(2);
  });
});

describe('a worker killed with SIGKILL during the first attempt its scan job makes', () => {
  it('is handed to the deliver queue after the restart (not scanned again) and delivered', async () => {
    let attempts = 0;
    let firstAttemptSeen!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (firstAttemptSeen = resolve));
    let letItFail!: () => void;
    const failing = new Promise<void>((resolve) => (letItFail = resolve));
    const gw = await gateway({
      mailboxHooks: {
        // The downstream stalls the first transaction after the data until the worker is dead,
        // then drops it without a reply: the gateway never got its 250.
        async beforeReply() {
          if (++attempts === 1) {
            firstAttemptSeen();
            await failing;
            throw new Error('connection lost');
          }
        },
      },
    });
    await gw.stopWorkers(); // only the child process works on the queue
    const worker = () => {
      const c = spawn(path.join(REPO, 'node_modules/.bin/node'), [path.join(REPO, 'gateway/cli.ts'), 'worker', '--config', gw.configFile], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(c);
      return c;
    };
    const first = worker();
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['grace@example.test'] }, 'Subject: survive\r\n\r\nstill here\r\n');
    expect(sent.code).toBe(250);
    await firstAttempt;
    // The attempt is the scan job's: in delivery, and no deliver job exists.
    expect((await gw.stores.store.get(sent.id!))?.status).toBe('delivering');
    expect(await gw.queue.hasJob('deliver', sent.id!)).toBe(false);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    letItFail();

    worker();
    await waitForStatus(gw, sent.id!, ['delivered'], 45_000);
    const copies = await mailboxMessages(gw, 'grace@example.test');
    expect(copies).toHaveLength(1);
    expect(copies[0].toString()).toContain('still here');
    expect(attempts).toBe(2);
    // The scan job, run again after the crash, found it in delivery and handed it on.
    await waitFor(async () => (await kinds(gw, sent.id!)).includes('requeued:deliver'), { what: 'the hand-over event' });
    // The cut attempt is on record (the soak allows a second copy only for an attempt so cut).
    expect(await kinds(gw, sent.id!)).toContain('fault:scan');
    // What the message's history says of it (the console shows these sentences).
    const handOver = (await gw.stores.store.events(sent.id!)).find((e) => e.kind === 'requeued');
    expect(handOver?.detail).toBe('handed to the deliver queue: its scan job ran again after its first delivery attempt was cut off (a crash or a stall)');
  });
});
