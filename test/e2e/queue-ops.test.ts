// Queue operations an administrator runs on deferred mail: list, retry now, bounce, delete.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailbox, type Mailbox } from '../../gateway/demo/mailbox.ts';
import { bounceMessage, deleteQueued, listQueue, retryNow } from '../../gateway/delivery/queue-ops.ts';
import { silentLogger } from '../../gateway/log.ts';
import { deliveryDeps } from '../../gateway/roles.ts';
import { freePort } from '../../gateway/services/managed.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

describe('queue operations on deferred mail', () => {
  let gw: TestGateway;
  let bounces: Mailbox & { dir: string };
  let downstreamPort: number;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-bounces-'));
    bounces = Object.assign(await startMailbox({ dir, host: '127.0.0.1', port: 0 }), { dir });
    downstreamPort = await freePort();
    gw = await startTestGateway({
      overrides: {
        domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: downstreamPort }] } },
        // long enough that nothing retries by itself during the test
        delivery: { retryDelayMs: 600_000, maxRetryDelayMs: 600_000, connectTimeoutMs: 1_000, relay: [{ host: '127.0.0.1', port: bounces.port, tls: 'none' }] },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await bounces?.close();
  });
  const deps = () => deliveryDeps(gw.config, gw.stores, gw.queue, silentLogger());
  const send = async (subject: string) => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, `Subject: ${subject}\r\n\r\n${subject}\r\n`);
    await waitForStatus(gw, sent.id!, ['deferred']);
    return sent.id!;
  };

  it('lists a deferred message with its next attempt and last reply, in the CLI too', async () => {
    const id = await send('listed');
    const [entry] = (await listQueue(deps(), 100)).filter((e) => e.record.id === id);
    expect(entry.record.status).toBe('deferred');
    expect(entry.job).toMatchObject({ queue: 'deliver', id, info: { state: 'delayed' } });
    expect(Date.parse(entry.nextAttempt!)).toBeGreaterThan(Date.now() + 500_000);
    const { stdout } = await run(path.join(REPO, 'bin/mailmoat'), ['queue', 'list', '--config', gw.configFile]);
    expect(stdout).toMatch(
      new RegExp(`^${id}\\tdeferred\\t.*\\tbob@sender\\.test\\talice@example\\.test\\tnext: \\S+Z\\tjob: deliver/delayed\\t.*ECONNREFUSED`, 'm'),
    );
  });

  it('retry now delivers at once when the downstream is back', async () => {
    const id = await send('hurry');
    const downstream = await startMailbox({ dir: path.join(gw.mailboxDir, 'late'), host: '127.0.0.1', port: downstreamPort });
    try {
      expect(await retryNow(deps(), id)).toMatchObject({ ok: true });
      await waitForStatus(gw, id, ['delivered'], 10_000);
    } finally {
      await downstream.close();
    }
  });

  it('bounce returns the message to its sender with a DSN', async () => {
    const id = await send('give-up');
    expect(await bounceMessage(deps(), id, 'cli:test')).toEqual({ ok: true, detail: '1 recipient(s) returned to <bob@sender.test>' });
    expect((await gw.stores.store.get(id))?.status).toBe('failed');
    const dsn = await waitFor(
      async () => {
        const m = (await mailboxMessages({ mailboxDir: bounces.dir }, 'bob@sender.test')).map(String).filter((t) => t.includes(id));
        return m.length ? m[0] : undefined;
      },
      { what: 'DSN' },
    );
    expect(dsn).toContain('Status: 5.3.0');
    expect(dsn).toContain('returned to sender by the administrator (cli:test)');
  });

  it('delete removes it from the queue and keeps its record', async () => {
    const id = await send('unwanted');
    expect(await deleteQueued(deps(), id, 'cli:test')).toMatchObject({ ok: true });
    expect(await gw.stores.store.get(id)).toMatchObject({ status: 'deleted', lastReply: 'deleted from the queue by cli:test' });
    expect(await gw.queue.jobInfo('deliver', id)).toBeUndefined();
    expect(await gw.stores.spool.committedIds()).not.toContain(id);
    expect(await deleteQueued(deps(), id, 'cli:test')).toEqual({ ok: false, reason: 'not in the queue (status: deleted)' });
  });
});
