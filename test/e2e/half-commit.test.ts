// A message cut half-way through its commit by a crash (SIGKILL) must end in a defined state at
// the next start, never stay "queued" for ever: found by the soak (test/e2e/soak.test.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../gateway/spool/spool.ts';
import { mailboxMessages, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function stoppedGateway(): Promise<TestGateway> {
  const gw = await startTestGateway();
  cleanups.push(() => gw.stop());
  await gw.stopWorkers();
  return gw;
}
const envelopeOf = (id: string, mailFrom = 'bob@sender.test'): Envelope => ({
  id,
  receivedAt: Date.now(),
  clientIp: '192.0.2.1',
  clientHostname: null,
  helo: 'h.test',
  mailFrom,
  rcptTo: ['alice@example.test'],
  size: 20,
  tls: false,
});

describe('a commit cut by a crash', () => {
  it('refuses a message whose envelope was written but whose body is still in incoming/ (no 250 was sent)', async () => {
    const gw = await stoppedGateway();
    const id = 'HALFCOMMITTED00000000000001';
    const env = envelopeOf(id);
    await gw.stores.store.recordReceived(env);
    const spoolDir = path.join(gw.config.dataDir, 'spool');
    await fs.writeFile(path.join(spoolDir, `${id}.json`), JSON.stringify(env));
    await fs.writeFile(path.join(spoolDir, 'incoming', `${id}.eml`), 'Subject: half\r\n\r\nbody\r\n');
    await gw.startWorkers();
    expect(await waitForStatus(gw, id, ['delivered', 'failed', 'quarantined', 'refused', 'held'], 10_000)).toBe('refused');
    expect((await gw.stores.store.get(id))?.lastReply).toMatch(/never committed/);
    expect(await fs.readdir(spoolDir)).not.toContain(`${id}.json`);
    expect(await fs.readdir(path.join(spoolDir, 'incoming'))).not.toContain(`${id}.eml`);
  });

  it('commits the body before the envelope: a failed envelope write leaves no envelope without its body', async () => {
    const gw = await stoppedGateway();
    const id = 'ORDERCHECK0000000000000001';
    const spoolDir = path.join(gw.config.dataDir, 'spool');
    await fs.writeFile(path.join(spoolDir, 'incoming', `${id}.eml`), 'Subject: order\r\n\r\nbody\r\n');
    // The envelope's temp file cannot be created (a directory is in its place): the commit fails at
    // the envelope. Body first means the body had already moved; either way nothing may remain.
    await fs.mkdir(path.join(spoolDir, `${id}.json.tmp`));
    const seen: string[] = [];
    const watcher = fs.watch(spoolDir);
    const watching = (async () => {
      for await (const e of watcher) if (e.filename) seen.push(e.filename);
    })().catch(() => {});
    await expect(gw.stores.spool.commit(envelopeOf(id))).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toContain(`${id}.eml`); // the body was moved in before the envelope was attempted
    await fs.rmdir(path.join(spoolDir, `${id}.json.tmp`));
    void watching;
  });

  it('delivers a generated message (a DSN) cut before its move to delivering, instead of scanning a body it never had', async () => {
    const gw = await stoppedGateway();
    const id = 'HALFGENERATED00000000000001';
    const env = { ...envelopeOf(id, ''), clientHostname: gw.config.hostname };
    const dsn = 'Subject: Delivery Status Notification\r\nX-Marker: half-dsn\r\n\r\nbounced\r\n';
    await gw.stores.spool.restoreForDelivery(env, async (out) => {
      out.write(dsn);
    });
    await gw.stores.store.recordReceived(env);
    await gw.stores.store.recordVerdict(id, {
      verdict: 'dsn',
      reason: 'bounce',
      report: { virus: { status: 'skipped', reason: 'generated' }, spam: { status: 'skipped', reason: 'generated' } },
      subject: 'Delivery Status Notification',
    });
    await gw.startWorkers(); // the kill came before store.transition(queued → delivering)
    expect(await waitForStatus(gw, id, ['delivered', 'failed', 'quarantined', 'refused', 'held'], 10_000)).toBe('delivered');
    const got = await mailboxMessages(gw, 'alice@example.test');
    expect(got.some((m) => m.toString().includes('X-Marker: half-dsn'))).toBe(true);
  });

  it('holds for an administrator a queued message whose body is missing, with the reason', async () => {
    const gw = await stoppedGateway();
    await gw.startWorkers();
    const id = 'BODYLOST000000000000000001';
    const env = envelopeOf(id);
    await gw.stores.store.recordReceived(env);
    await fs.writeFile(path.join(gw.config.dataDir, 'spool', `${id}.json`), JSON.stringify(env));
    await gw.queue.enqueue('scan', id);
    expect(await waitForStatus(gw, id, ['delivered', 'failed', 'quarantined', 'refused', 'held'], 10_000)).toBe('held');
    const events = await gw.stores.store.events(id);
    expect(events.map((e) => e.detail).join('\n')).toMatch(/body is missing/);
  });
});
