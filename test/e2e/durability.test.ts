// What mailmoat promises when things break: nothing that got a 250 is lost, and nothing is
// delivered unscanned. Real processes, real engines, a real tmpfs for the full disk.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { startMailbox } from '../../gateway/demo/mailbox.ts';
import { freePort } from '../../gateway/services/managed.ts';
import { mailboxMessages, sendRaw, startTestGateway, testConfigInput, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { startSocketProxy } from '../support/socket-proxy.ts';
import { inject } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function gateway(o: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  const gw = await startTestGateway(o);
  cleanups.push(() => gw.stop());
  return gw;
}
const send = (gw: { smtpPort: number }, subject: string, rcpt = 'alice@example.test') =>
  sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [rcpt] }, `Subject: ${subject}\r\nX-Marker: ${subject}\r\n\r\n${subject}\r\n`);

describe('durability', () => {
  it('rebuilds the queue from the spool when Redis lost its jobs', async () => {
    const gw = await gateway();
    await gw.stopWorkers();
    const sent = await send(gw, 'redis-lost');
    expect(sent.code).toBe(250);
    const scan = new Queue('scan', { connection: { path: inject('services').redisSocket }, prefix: gw.config.redis.prefix });
    await scan.obliterate({ force: true }); // as if Redis had restarted without its data
    await scan.close();
    await gw.startWorkers(); // reconciliation at start queues it again
    await waitForStatus(gw, sent.id!, ['delivered']);
    expect((await gw.stores.store.events(sent.id!)).map((e) => e.kind)).toContain('requeued');
  });

  it('finishes a quarantine that a crash interrupted (body kept, spool cleared, status not yet set)', async () => {
    const gw = await gateway();
    await gw.stopWorkers();
    const id = 'CRASHEDQUARANTINE0000000001';
    const { store, quarantine } = gw.stores;
    await store.recordReceived({
      id,
      receivedAt: Date.now(),
      clientIp: '192.0.2.1',
      helo: 'h.test',
      mailFrom: 'bob@sender.test',
      rcptTo: ['alice@example.test'],
      size: 5,
    });
    const file = path.join(gw.config.dataDir, 'body.eml');
    await fs.writeFile(file, 'Subject: held\r\n\r\nbody\r\n');
    await quarantine.put(id, file);
    await store.addEvent(id, 'quarantined', 'virus: Test');
    await gw.startWorkers();
    expect((await store.get(id))?.status).toBe('quarantined');
  });

  it('keeps mail while clamd is down (never delivered unscanned) and delivers it once clamd is back', async () => {
    const proxy = await startSocketProxy(inject('services').clamdSocket);
    cleanups.push(() => proxy.close());
    proxy.up = false;
    const gw = await gateway({ overrides: { clamd: { socket: proxy.socketPath, timeoutMs: 2_000 } } });
    const sent = await send(gw, 'clamd-down');
    expect(sent.code).toBe(250);
    await waitFor(async () => (await gw.stores.store.events(sent.id!)).find((e) => e.kind === 'scan-deferred'), { what: 'a deferred scan' });
    expect((await gw.stores.store.get(sent.id!))?.status).toBe('queued');
    expect(await mailboxMessages(gw, 'alice@example.test')).toHaveLength(0);
    proxy.up = true;
    await waitForStatus(gw, sent.id!, ['delivered']);
    expect(String((await mailboxMessages(gw, 'alice@example.test'))[0])).toMatch(/X-Mailmoat-Status: clean; virus=clean/);
  });

  it('follows the outage policy: quarantine at once, or pass with a header that says it was not scanned', async () => {
    const proxy = await startSocketProxy(inject('services').clamdSocket);
    cleanups.push(() => proxy.close());
    proxy.up = false;
    const gw2 = await gateway({ overrides: { clamd: { socket: proxy.socketPath, timeoutMs: 2_000 }, policy: { outage: { virus: 'pass' } } } });
    const passed = await send(gw2, 'clamd-down-pass');
    await waitForStatus(gw2, passed.id!, ['delivered']);
    const [copy] = await mailboxMessages(gw2, 'alice@example.test');
    expect(String(copy)).toMatch(/X-Mailmoat-Status: clean; virus=NOT SCANNED \(virus scanner unavailable\)/);

    const gw3 = await gateway({ overrides: { clamd: { socket: proxy.socketPath, timeoutMs: 2_000 }, policy: { outage: { virus: 'quarantine' } } } });
    const held = await send(gw3, 'clamd-down-hold');
    await waitForStatus(gw3, held.id!, ['quarantined']);
    expect(await gw3.stores.store.get(held.id!)).toMatchObject({ verdict: 'unscannable', reason: expect.stringContaining('virus scanner unavailable') });
  });

  it('answers 451 4.7.1 inline while clamd is down, and keeps nothing (the client retries)', async () => {
    const proxy = await startSocketProxy(inject('services').clamdSocket);
    cleanups.push(() => proxy.close());
    proxy.up = false;
    const gw = await gateway({
      overrides: {
        clamd: { socket: proxy.socketPath, timeoutMs: 2_000 },
        inline: { enabled: true, deadlineMs: 20_000 },
        policy: { actions: { virus: 'reject' }, checks: { auth: false } },
      },
    });
    const sent = await send(gw, 'clamd-down-inline');
    expect(sent.code).toBe(451);
    expect(sent.response).toMatch(/^451 4\.7\.1 Content scanner temporarily unavailable/);
    expect(await gw.stores.spool.committedIds()).toEqual([]);
    expect(await mailboxMessages(gw, 'alice@example.test')).toHaveLength(0);
  });

  it.runIf(process.getuid?.() === 0)('answers 452 4.3.1 when the spool disk is full and loses nothing it accepted', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-fulldisk-'));
    const spoolDir = path.join(dataDir, 'spool');
    await fs.mkdir(spoolDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', spoolDir]);
    cleanups.push(() => {
      execFileSync('umount', ['-l', spoolDir]);
    });
    const gw = await gateway({ dataDir, overrides: { smtp: { listen: { host: '127.0.0.1', port: 0 }, maxMessageBytes: 300_000 } } });
    const body = `${'y'.repeat(998)}\r\n`.repeat(280);
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, `Subject: big ${i}\r\n\r\n${body}`)),
    );
    const codes = results.map((r) => r.code).sort();
    expect(codes.every((c) => c === 250 || c === 452)).toBe(true);
    expect(codes).toContain(452);
    for (const r of results.filter((r) => r.code === 452)) expect(r.response).toMatch(/^452 4\.3\.1 Insufficient system storage/);
    const accepted = results.filter((r) => r.code === 250);
    for (const r of accepted) await waitForStatus(gw, r.id!, ['delivered']);
    expect(await mailboxMessages(gw, 'alice@example.test')).toHaveLength(accepted.length);
    expect(await fs.readdir(path.join(spoolDir, 'incoming'))).toEqual([]);
  });
});

describe('the whole gateway killed with SIGKILL under load', () => {
  it('delivers every message that got a 250 after a restart', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-kill-'));
    const mailboxDir = path.join(dataDir, 'mailbox');
    const sink = await startMailbox({ dir: mailboxDir, host: '127.0.0.1', port: 0 });
    cleanups.push(() => sink.close());
    const smtpPort = await freePort();
    const input = testConfigInput(dataDir, sink.port, { smtp: { listen: { host: '127.0.0.1', port: smtpPort }, maxMessageBytes: 200_000, maxRecipients: 5 } });
    const configFile = path.join(dataDir, 'mailmoat.yaml');
    await fs.writeFile(configFile, JSON.stringify(input));
    const children: ChildProcess[] = [];
    cleanups.push(() => children.forEach((c) => c.kill('SIGKILL')));
    const startGateway = async () => {
      const child = spawn(path.join(REPO, 'node_modules/.bin/node'), [path.join(REPO, 'gateway/cli.ts'), 'start', '--config', configFile], { stdio: 'ignore' });
      children.push(child);
      await waitFor(async () => (await send({ smtpPort }, `probe-${children.length}`, 'probe@example.test')).code === 250 || undefined, { what: 'gateway up' });
      return child;
    };
    const first = await startGateway();
    const accepted: string[] = [];
    let killed = false;
    const client = async (n: number) => {
      for (let i = 0; i < 10; i++) {
        const marker = `load-${n}-${i}`;
        const r = await send({ smtpPort }, marker);
        if (r.code === 250) accepted.push(marker);
        if (!killed && accepted.length >= 12) {
          killed = true;
          first.kill('SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    expect(killed).toBe(true);
    await startGateway();
    const delivered = await waitFor(
      async () => {
        const got = new Set((await mailboxMessages({ mailboxDir }, 'alice@example.test')).map((m) => /X-Marker: (\S+)/.exec(String(m))?.[1]));
        return accepted.every((m) => got.has(m)) ? got : undefined;
      },
      { timeoutMs: 60_000, what: 'every accepted message at the sink' },
    );
    expect(accepted.length).toBeGreaterThanOrEqual(12);
    for (const m of accepted) expect(delivered.has(m)).toBe(true);
  });
});
