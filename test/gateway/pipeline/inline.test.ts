// The inline-verdict handshake on the suite's real Redis: exactly one side decides, and a worker
// can never drop a message whose session was told 250 (or never waited).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { redisInlineVerdicts, refuseIfInlineVerdict, type InlineVerdicts } from '../../../gateway/pipeline/inline.ts';
import { silentLogger } from '../../../gateway/log.ts';
import { configSchema } from '../../../gateway/config/schema.ts';
import { SmtpRefusal } from '../../../rules/replies.ts';

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

// The gate in the SMTP session: whether it waits depends on the recipients' policies of the config
// generation it is given (layered once per generation, gateway/pipeline/policy.ts), never on an
// older one: a reload that adds or removes a `reject` is followed by the next message.
describe('the inline-verdict gate at accept time', () => {
  let smtp: InlineVerdicts;
  let worker: InlineVerdicts;
  let n = 0;
  const id = () => `inline-gate-${process.pid}-${Date.now()}-${++n}`;
  const downstream = [{ host: '127.0.0.1', port: 9 }];
  const generation = (virusAt: 'reject' | 'quarantine') =>
    configSchema.parse({
      hostname: 'mx.gateway.test',
      dataDir: '/nonexistent',
      inline: { deadlineMs: 5_000 },
      domains: { 'example.test': { downstream, policy: { actions: { virus: { do: virusAt } } } }, 'other.test': { downstream } },
    });
  const envelope = (m: string, rcptTo: string[]) => ({ id: m, mailFrom: 'bob@sender.test', clientIp: '192.0.2.1', rcptTo });

  beforeAll(() => {
    const target = { socketPath: inject('services').redisSocket };
    const prefix = `gate${process.pid}`;
    smtp = redisInlineVerdicts(target, { prefix, logger: silentLogger() });
    worker = redisInlineVerdicts(target, { prefix, logger: silentLogger() });
  });
  afterAll(async () => {
    await smtp?.close();
    await worker?.close();
  });

  /** The session's outcome when the worker refuses the message as soon as anyone waits for it. */
  async function gate(config: ReturnType<typeof generation>, rcptTo: string[]): Promise<string> {
    const m = id();
    const waited = refuseIfInlineVerdict({ config, logger: silentLogger(), inline: smtp }, envelope(m, rcptTo));
    // The worker's refusal wins only over a session that is waiting (else the message is accepted).
    for (let i = 0; i < 25 && !(await worker.refuse(m, REPLY)); i++) await new Promise((r) => setTimeout(r, 20));
    await worker.announce(m);
    return waited.then(
      () => 'accepted',
      (err: unknown) => (err instanceof SmtpRefusal ? `refused ${err.reply.code}` : `error ${String(err)}`),
    );
  }

  it('waits when every recipient may be refused, not otherwise; a reloaded config is followed by the next message', async () => {
    const strict = generation('reject');
    expect(await gate(strict, ['alice@example.test'])).toBe('refused 554');
    expect(await gate(strict, ['alice@example.test', 'dave@example.test'])).toBe('refused 554');
    expect(await gate(strict, ['alice@example.test', 'carol@other.test'])).toBe('accepted');
    expect(await gate(generation('quarantine'), ['alice@example.test'])).toBe('accepted');
    expect(await gate(strict, ['alice@example.test'])).toBe('refused 554');
  });
});
