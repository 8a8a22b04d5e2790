// A scan job that runs again (its worker died, or it failed, after it planned delivery and while
// its own first delivery attempt was under way) must never scan the message a second time nor drop
// it: in delivery, the deliver queue takes it as the interrupted attempt's deliver job would have
// gone on; already settled, what is left in the spool is a leftover. The scanners here throw if
// called: any rescan fails the test. Real spool and SQLite store; the queue is the in-memory fake,
// which records what it was asked.
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../gateway/config/schema.ts';
import { silentLogger } from '../../../gateway/log.ts';
import type { Verdict } from '../../../gateway/ledger/ledger.ts';
import { lastOf } from '../../../gateway/ledger/events.ts';
import { handleScanJob, type ScanDeps } from '../../../gateway/pipeline/scan.ts';
import { splitOff } from '../../../gateway/pipeline/act.ts';
import { acceptMessage, localParts, spoolMessage, testEnvelope } from '../../support/local-parts.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const skipped = { status: 'skipped' as const, reason: 'test' };
const clean: Verdict = { verdict: 'clean', reason: 'clean', report: { virus: skipped, spam: skipped }, subject: 'hi' };
const rescan = () => {
  throw new Error('scanned a second time');
};

async function inDelivery() {
  const parts = await localParts('mailmoat-scan-retry-', cleanups);
  const { dir, store, spool, queue, quarantine } = parts;
  const env = testEnvelope();
  const ledger = await acceptMessage(parts, env);
  const writeCopy = () => spool.writeScannedCopy(env.id, async (out) => void out.write('X-Mailmoat-ID: M1\r\nSubject: hi\r\n\r\nbody\r\n'));
  await writeCopy();
  // What a crash between the final state and the spool's clearing leaves behind.
  const spoolIt = async () => {
    await spoolMessage(spool, env);
    await writeCopy();
  };
  expect(await ledger.planDeliverHere(env.id, clean)).toBe(true);
  queue.asked.length = 0;
  const config = configSchema.parse({
    hostname: 'mx.gateway.test',
    dataDir: dir,
    domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: 9 }] } },
  });
  const scanners = new Proxy({}, { get: rescan }) as ScanDeps['scanners'];
  const deps: ScanDeps = { config, spool, store, quarantine, queue, scanners, logger: silentLogger(), deliverHere: async () => rescan() };
  // The job as BullMQ hands it over again: after a stall (a fault), or a retry.
  const runAgain = () => handleScanJob(deps, { messageId: env.id, attempt: 1, isLastAttempt: false, faults: 1 });
  return { env, store, spool, queue, ledger, runAgain, spoolIt };
}

describe('a scan job run again after it planned delivery', () => {
  it('finds the message in delivery: the deliver queue takes it, with the fault counted, and the message log says so', async () => {
    const { env, store, queue, runAgain } = await inDelivery();
    await runAgain();
    expect(queue.asked).toEqual([{ queue: 'deliver', id: env.id, o: { faultsBefore: 1 } }]);
    expect((await store.get(env.id))?.status).toBe('delivering');
    expect(lastOf(await store.events(env.id), 'requeued')).toEqual({ kind: 'requeued', queue: 'deliver', by: 'scan job run again' });
  });

  it('finds it deferred by its first attempt: the deliver queue takes it as attempt 2, at the announced time', async () => {
    const { env, store, queue, ledger, runAgain } = await inDelivery();
    const next = Date.now() + 60_000;
    await ledger.defer(env.id, { kind: 'deferred', nextAttempt: new Date(next).toISOString(), recipients: 1, reply: '451 4.3.0 later' });
    await runAgain();
    expect(queue.asked).toHaveLength(1);
    const { o } = queue.asked[0];
    expect(o).toMatchObject({ attemptsBefore: 1, faultsBefore: 1 });
    expect(o.delayMs).toBeGreaterThan(55_000);
    expect(o.delayMs).toBeLessThanOrEqual(60_000);
    expect((await store.get(env.id))?.status).toBe('deferred');
  });

  it('finds it delivered with its spool files left by a crash: they are removed, nothing is queued or sent', async () => {
    const { env, store, spool, queue, ledger, runAgain, spoolIt } = await inDelivery();
    expect(await ledger.finishAllDelivered(env.id, [{ recipient: 'alice@example.test', reply: '250 ok' }])).toBe(true);
    await spoolIt(); // what a crash between the final state and the spool's clearing leaves
    await runAgain();
    expect(await spool.committedIds()).toEqual([]);
    expect(queue.asked).toEqual([]);
    expect((await store.get(env.id))?.status).toBe('delivered');
  });
});

/**
 * A scan job that split recipients off (their copy spooled and recorded as "<id>-2") and died
 * before it acted. Its next run, a retry or a fresh job (a poison release, a requeue after Redis
 * lost its jobs: attempt 1 both), finds that part by its row and reuses it.
 */
async function splitThenDied() {
  const parts = await localParts('mailmoat-scan-split-', cleanups);
  const { dir, store, spool, queue, quarantine } = parts;
  const downstream = [{ host: '127.0.0.1', port: 9 }];
  const off = { virus: false, spam: false, attachments: false, html: false, auth: false, urls: false, lists: false, learner: false };
  const config = configSchema.parse({
    hostname: 'mx.gateway.test',
    dataDir: dir,
    policy: { checks: off },
    // Different plans for the two domains: one message per group.
    domains: { 'example.test': { downstream }, 'other.test': { downstream, policy: { actions: { clean: { do: 'headers' } } } } },
  });
  const env = testEnvelope({ id: 'S1', rcptTo: ['alice@example.test', 'carol@other.test'] });
  await acceptMessage(parts, env);
  // Every check is off: the scanners are never asked (the MIME walk runs on the event loop).
  const scanners: ScanDeps['scanners'] = { virus: async () => rescan(), spam: async () => rescan() };
  const deps: ScanDeps = { config, spool, store, quarantine, queue, scanners, logger: silentLogger() };
  await splitOff(deps, env, 'S1-2', ['carol@other.test']);
  queue.asked.length = 0;
  return { env, store, queue, deps };
}

describe('a scan job run again after it split the message off and before it acted', () => {
  for (const job of [
    { attempt: 2, faults: 0, as: 'a retry' },
    { attempt: 1, faults: 0, as: 'a fresh job (poison release, requeue)' },
  ])
    it(`reuses the part it split off, as ${job.as}: each recipient in one message, no second copy`, async () => {
      const { env, store, queue, deps } = await splitThenDied();
      await handleScanJob(deps, { messageId: env.id, attempt: job.attempt, isLastAttempt: false, faults: job.faults });
      expect((await store.get(env.id))?.rcptTo).toEqual(['alice@example.test']);
      expect((await store.get('S1-2'))?.rcptTo).toEqual(['carol@other.test']);
      expect(await store.get('S1-3')).toBeUndefined();
      expect(queue.asked.map((a) => [a.queue, a.id]).sort()).toEqual([
        ['deliver', 'S1'],
        ['deliver', 'S1-2'],
      ]);
      expect((await store.get(env.id))?.status).toBe('delivering');
      expect((await store.get('S1-2'))?.status).toBe('delivering');
    });
});
