// The one learning implementation (console buttons, report-spam uploads, reportspam@ later).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { learnMessage, notAMessage } from '../../gateway/learning.ts';
import { openLearnLog, type LearnLog } from '../../gateway/store/learnlog.ts';
import { migrate } from '../../gateway/store/migrations.ts';
import { openSql, type Sql } from '../../gateway/store/sql.ts';

const msg = Buffer.from('Received: from x\r\nFrom: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n');

describe('notAMessage', () => {
  it.each([
    ['', 'it is empty'],
    ['hello world\nno headers here\n', 'it does not start with mail headers'],
    ['X-Foo: 1\r\nX-Bar: 2\r\n\r\nbody', 'it has no From, Received'],
  ])('%j → %s', (input, want) => expect(notAMessage(Buffer.from(input), 1000)).toContain(want));
  it('accepts a message, an mbox "From " line and folded headers', () => {
    expect(notAMessage(msg, 1000)).toBeUndefined();
    expect(notAMessage(Buffer.from(`From a@b Mon Jan 1 00:00:00 2026\n${msg.toString().replace(/\r/g, '')}`), 1000)).toBeUndefined();
    expect(notAMessage(Buffer.from('Subject: a\r\n long fold\r\nFrom: x@y.test\r\n\r\n'), 1000)).toBeUndefined();
  });
  it('refuses oversized input', () => expect(notAMessage(msg, 10)).toContain('larger than the limit of 10'));
});

describe('learnMessage', () => {
  let sql: Sql;
  let log: LearnLog;
  beforeAll(async () => {
    sql = await openSql({ sqlite: ':memory:' });
    await migrate(sql);
    log = openLearnLog(sql);
  });
  afterAll(() => sql?.close());
  const teacher = (didSet: string[] | Error) => ({
    calls: 0,
    async tell() {
      this.calls++;
      if (didSet instanceof Error) throw didSet;
      return { didSet, didRemove: [] };
    },
  });
  const req = { as: 'spam' as const, actor: 'alice', source: 'upload' as const, maxBytes: 10_000 };

  it('learns, records, and recognises the same message the next time without asking spamd', async () => {
    const t = teacher(['local']);
    expect((await learnMessage({ spamd: t, log }, msg, req)).outcome).toBe('learned');
    expect((await learnMessage({ spamd: t, log }, msg, req)).outcome).toBe('already-learned');
    expect(t.calls).toBe(1);
    // as ham it is a different lesson
    expect((await learnMessage({ spamd: t, log }, msg, { ...req, as: 'ham' })).outcome).toBe('learned');
    expect((await log.recent({ actor: 'alice', limit: 5 })).map((r) => r.outcome)).toEqual(['learned', 'already-learned', 'learned']);
  });
  it('treats an EX_OK answer without DidSet as a failure (spamd learned nothing)', async () => {
    const r = await learnMessage({ spamd: teacher([]), log }, Buffer.from(`${msg}x`), req);
    expect(r).toMatchObject({ outcome: 'failed', detail: expect.stringContaining('spamd learned nothing') });
  });
  it('reports a spamd error', async () => {
    const r = await learnMessage({ spamd: teacher(new Error('connect ECONNREFUSED')), log }, Buffer.from(`${msg}y`), req);
    expect(r).toMatchObject({ outcome: 'failed', detail: 'spamd could not learn it: connect ECONNREFUSED' });
  });
  it('never sends a non-message to spamd', async () => {
    const t = teacher(['local']);
    expect((await learnMessage({ spamd: t, log }, Buffer.from('hello'), req)).outcome).toBe('refused');
    expect(t.calls).toBe(0);
  });
});
