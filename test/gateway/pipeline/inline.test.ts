// The inline-verdict handshake on the suite's real Redis: exactly one side decides, and a worker
// can never drop a message whose session was told 250 (or never waited).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { redisInlineVerdicts, type InlineVerdicts } from '../../../gateway/pipeline/inline.ts';
import { silentLogger } from '../../../gateway/log.ts';

const REPLY = { code: 554, enhanced: '5.7.1', text: 'Message refused: virus: Eicar' };

describe('inline verdict handshake', () => {
  let smtp: InlineVerdicts;
  let worker: InlineVerdicts;
  let n = 0;
  const id = () => `inline-test-${process.pid}-${Date.now()}-${++n}`;

  beforeAll(() => {
    const target = { socketPath: inject('services').redisSocket };
    const prefix = `inl${process.pid}`;
    smtp = redisInlineVerdicts(target, { prefix, logger: silentLogger() });
    worker = redisInlineVerdicts(target, { prefix, logger: silentLogger() });
  });
  afterAll(async () => {
    await smtp?.close();
    await worker?.close();
  });

  it('a waiting session gets the refusal as soon as the worker announces it', async () => {
    const m = id();
    const started = Date.now();
    const waiting = smtp.wait(m, 10_000);
    // The refusal is taken once the session's wait is registered (a moment, longer on a loaded machine).
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      refused = await worker.refuse(m, REPLY);
      if (!refused) await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(true);
    await worker.announce(m);
    expect(await waiting).toEqual(REPLY);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a session answers at once when the worker accepts', async () => {
    const m = id();
    const waiting = smtp.wait(m, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    await worker.accept(m);
    expect(await waiting).toBeNull();
  });

  it('past the deadline the session accepts, and the worker can no longer refuse', async () => {
    const m = id();
    expect(await smtp.wait(m, 30)).toBeNull();
    expect(await worker.refuse(m, REPLY)).toBe(false);
  });

  it('a message nobody waits for is never refused by the worker', async () => {
    expect(await worker.refuse(id(), REPLY)).toBe(false);
  });

  it('a worker that decided before the session started waiting: the session gets the decision without waiting', async () => {
    const m = id();
    await worker.accept(m);
    const started = Date.now();
    expect(await smtp.wait(m, 10_000)).toBeNull();
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a retried worker finds its own refusal decided', async () => {
    const m = id();
    const waiting = smtp.wait(m, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(await worker.refuse(m, REPLY)).toBe(true);
    expect(await worker.refuse(m, REPLY)).toBe(true); // the next attempt drops it again
    await worker.announce(m);
    expect(await waiting).toEqual(REPLY);
  });
});
