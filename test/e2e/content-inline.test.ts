// Issue 5, step 7: inline verdicts. The SMTP session waits for the scan worker (through Redis) and
// a message every recipient's policy refuses is refused with 550/554 and the reason; nothing is
// kept. Past the deadline, or when some recipient would take it, it is accepted as usual.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EICAR } from '../support/eicar.ts';
import { FAKE_PE, attachment, buildMessage, text } from '../support/mime.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const HEADERS = ['From: bob@sender.test', 'To: alice@example.test', 'Subject: test', 'MIME-Version: 1.0'];
const withFile = (name: string, content: Buffer | string) =>
  buildMessage({ multipart: 'mixed', parts: [text('see attached\r\n'), attachment(name, content)] }, HEADERS);
const plain = (body: string) => buildMessage(text(body), HEADERS);
const REFUSE = { virus: 'reject', banned: 'reject', malformed: 'reject', 'high-spam': 'reject' };

describe('inline verdicts', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: {
        'example.test': { policy: { actions: REFUSE } },
        'lenient.test': {}, // default policy: quarantines, never refuses
      },
      overrides: { inline: { enabled: true, deadlineMs: 20_000 }, policy: { checks: { auth: false } } },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const send = (to: string[], raw: Buffer) => sendRaw(gw.smtpPort, { from: 'bob@sender.test', to }, raw);

  /** The row of the last message received (a refused message gets no id in the reply). */
  const lastRow = async () => (await gw.stores.store.list({ limit: 1 }))[0];

  it('a virus is refused with 554 5.7.1 and the virus name; nothing is kept', async () => {
    const res = await send(['alice@example.test'], withFile('eicar.txt', EICAR));
    expect(res.code).toBe(554);
    expect(res.response).toMatch(/^554 5\.7\.1 Message refused: contains the virus .*Eicar/i);
    const row = await lastRow();
    expect(row).toMatchObject({ status: 'refused', verdict: 'virus' });
    expect(row.lastReply).toMatch(/^554 5\.7\.1 Message refused: contains the virus/);
    expect(row.report?.outcome?.action).toBe('refused');
    expect(existsSync(path.join(gw.config.dataDir, 'quarantine', `${row.id}.eml`))).toBe(false);
    expect(await gw.stores.spool.readEnvelope(row.id)).toBeUndefined();
    expect(await mailboxMessages(gw, 'alice@example.test')).toHaveLength(0);
  });

  it('a banned attachment and high-scoring spam are refused with the reason', async () => {
    const banned = await send(['alice@example.test'], withFile('invoice.pdf', FAKE_PE));
    expect(banned.response).toBe('554 5.7.1 Message refused: the attachment "invoice.pdf" is not allowed: content is a Windows/DOS executable (MZ)');
    const spam = await send(['alice@example.test'], plain(`${GTUBE}\r\n`));
    expect(spam.response).toMatch(/^550 5\.7\.1 Message refused as spam \(score \d+\.\d\)$/);
  });

  it('a malformed message is refused with 554 5.6.0', async () => {
    const parts = Array.from({ length: 600 }, (_, i) => text(`${i}\r\n`));
    const res = await send(['alice@example.test'], buildMessage({ multipart: 'mixed', parts }, HEADERS));
    expect(res.response).toBe('554 5.6.0 Message refused: the message structure is broken: more than 500 MIME parts');
  });

  it('a clean message is accepted once the verdict is in, and delivered', async () => {
    const res = await send(['alice@example.test'], plain('hello\r\n'));
    expect(res.code).toBe(250);
    await waitForStatus(gw, res.id!, ['delivered']);
  });

  it('several recipients: refused only when every one refuses; otherwise accepted, and the refusing one quarantined', async () => {
    const both = await send(['a@example.test', 'b@example.test'], withFile('eicar.txt', EICAR));
    expect(both.code).toBe(554);
    const mixed = await send(['c@example.test', 'd@lenient.test'], withFile('eicar.txt', EICAR));
    expect(mixed.code).toBe(250);
    await waitForStatus(gw, mixed.id!, ['quarantined']);
    const row = (await gw.stores.store.get(mixed.id!))!;
    expect(row.rcptTo).toEqual(['c@example.test']);
    expect(row.report?.outcome?.action).toBe('quarantine (reject: accepted before the verdict)');
    await waitForStatus(gw, `${mixed.id}-2`, ['quarantined']);
    expect((await gw.stores.store.get(`${mixed.id}-2`))?.rcptTo).toEqual(['d@lenient.test']);
  });
});

describe('inline verdicts past the deadline', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      overrides: { inline: { enabled: true, deadlineMs: 1 }, policy: { actions: { virus: 'reject' }, checks: { auth: false } } },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('accepts as usual and quarantines what would have been refused', async () => {
    const res = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, withFile('eicar.txt', EICAR));
    expect(res.code).toBe(250);
    await waitForStatus(gw, res.id!, ['quarantined']);
    expect(await gw.stores.store.get(res.id!)).toMatchObject({ verdict: 'virus' });
    expect((await gw.stores.store.events(res.id!)).find((e) => e.kind === 'quarantined')?.detail).toMatch(
      /policy says reject, but the message had been accepted/,
    );
  });
});
