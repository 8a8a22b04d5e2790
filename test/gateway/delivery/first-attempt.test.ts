// The first delivery attempt made by the scan job (deliver.ts attemptFirstHere): what it does not
// finish goes to the deliver queue as the deliver job making attempt 1 would have gone on. Here the
// paths an end-to-end test cannot reach on purpose: an unexpected error in the attempt (a fault of
// attempt 1, retried after the fault delay) and every delivery slot of the process busy (nothing
// tried, the deliver queue has it at once). Real spool and SQLite store; the queue is the in-memory
// fake, which records what it was asked.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attemptFirstHere } from '../../../gateway/delivery/deliver.ts';
import { DeliveryRecorder } from '../../../gateway/delivery/recorded.ts';
import { DeliverySlots } from '../../../gateway/delivery/slots.ts';
import { DsnRateWindow } from '../../../gateway/delivery/notify.ts';
import { configSchema } from '../../../gateway/config/schema.ts';
import { silentLogger } from '../../../gateway/log.ts';
import type { Verdict } from '../../../gateway/ledger/ledger.ts';
import { acceptMessage, localParts, testEnvelope } from '../../support/local-parts.ts';

/** A clean verdict, nothing scanned (the tests here are about the attempt, not the scan). */
const clean: Verdict = {
  verdict: 'clean',
  reason: 'clean',
  report: { virus: { status: 'skipped', reason: 't' }, spam: { status: 'skipped', reason: 't' } },
  subject: 'hi',
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function planned(o: { maxAttempts?: number } = {}) {
  const parts = await localParts('mailmoat-first-', cleanups);
  const { dir, store, spool, queue, quarantine: keep } = parts;
  const recorder = new DeliveryRecorder({ store, logger: silentLogger(), journalDir: path.join(dir, 'journal'), retryMs: 100, pauseMs: 100 });
  await recorder.start();
  cleanups.push(() => recorder.stop());
  const config = configSchema.parse({
    hostname: 'mx.gateway.test',
    dataDir: dir,
    domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: 9 }] } },
  });
  const env = testEnvelope();
  const ledger = await acceptMessage(parts, env);
  queue.take('scan', env.id);
  const slots = new DeliverySlots({ externalConcurrency: 1, maxAttempts: o.maxAttempts ?? 4 });
  const deps = { config, spool, store, keep, queue, resolver: undefined as never, slots, dsnWindow: new DsnRateWindow(), logger: silentLogger(), recorder };
  return { env, spool, store, queue, ledger, slots, deps };
}

describe('the first delivery attempt, made by the scan job', () => {
  it('an unexpected error: a fault of attempt 1 in the message log, then the deliver queue after the fault delay', async () => {
    const { env, spool, store, queue, ledger, deps } = await planned();
    // The scanned copy cannot be read (a directory where the file should be): not a delivery outcome, a fault.
    await mkdir(spool.outputPath(env.id), { recursive: true });
    expect(await ledger.planDeliverHere(env.id, clean)).toBe(true);
    await attemptFirstHere(deps, env, { faultRetryMs: 700, isLastAttempt: false });
    expect(queue.asked.filter((a) => a.queue === 'deliver')).toEqual([
      { queue: 'deliver', id: env.id, o: { delayMs: 700, attemptsBefore: 1, faultsBefore: 1 } },
    ]);
    const fault = (await store.events(env.id)).find((e) => e.kind === 'fault');
    expect(fault?.data).toMatchObject({ queue: 'deliver', faults: 1 });
    expect((await store.get(env.id))?.status).toBe('delivering');
  });

  it('every delivery slot of the process busy: nothing tried, the deliver queue has it now', async () => {
    const { env, store, queue, ledger, slots, deps } = await planned({ maxAttempts: 1 });
    expect(await ledger.planDeliverHere(env.id, clean)).toBe(true);
    const taken = slots.tryStartAttempt();
    expect(taken.ok).toBe(true);
    await attemptFirstHere(deps, env, { faultRetryMs: 700, isLastAttempt: false });
    expect(queue.asked.filter((a) => a.queue === 'deliver')).toEqual([{ queue: 'deliver', id: env.id, o: {} }]);
    expect((await store.events(env.id)).map((e) => e.kind)).not.toContain('delivery-attempt');
    expect((await store.deliveries(env.id)).length).toBe(0);
  });
});
