// A message released from quarantine is delivered with the envelope it was received with: the
// DSN parameters (RFC 3461 RET, ENVID, NOTIFY, ORCPT) reach the downstream, and a bounce of the
// released message honours them. The envelope is kept with the message's record (the ledger),
// never rebuilt from its columns (a rebuilt one had lost every DSN parameter).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMailbox, type Mailbox } from '../../gateway/demo/mailbox.ts';
import { releaseMessage } from '../../gateway/quarantine.ts';
import { silentLogger } from '../../gateway/log.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus } from '../support/gateway.ts';

// Held for a banned attachment: a class whose sender is still trusted with a bounce (spam or a
// virus would have its DSN withheld as backscatter, rules/backscatter.ts).
const HELD = [
  'From: bob@sender.test',
  'To: alice@example.test',
  'Subject: held then released',
  'Message-ID: <held-released@sender.test>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain',
  '',
  'the body of the held message',
  '--b1',
  'Content-Type: application/octet-stream; name="setup.exe"',
  'Content-Disposition: attachment; filename="setup.exe"',
  'Content-Transfer-Encoding: base64',
  '',
  'TVqQAAMAAAAEAAAA',
  '--b1--',
  '',
].join('\r\n');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function mailbox(hooks?: Parameters<typeof startMailbox>[0]['hooks']): Promise<Mailbox & { dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-release-dsn-'));
  const m = await startMailbox({ dir, host: '127.0.0.1', port: 0, hooks });
  cleanups.push(() => m.close());
  return Object.assign(m, { dir });
}

describe('a released message', () => {
  it('keeps its DSN parameters: RET/ENVID/NOTIFY/ORCPT reach the downstream, and its bounce honours them', async () => {
    const bounces = await mailbox();
    const seen: { mail: unknown; rcpt: unknown[] }[] = [];
    const downstream = await mailbox({
      refuseRecipient: (a) => (a === 'nobody@example.test' ? { code: 550, text: '5.1.1 unknown' } : undefined),
      beforeReply: async (_m, session) => {
        const envelope = session.envelope as typeof session.envelope & { dsn?: { ret: string | null; envid: string | null } };
        seen.push({ mail: { ret: envelope.dsn?.ret, envid: envelope.dsn?.envid }, rcpt: envelope.rcptTo.map((r) => ({ address: r.address, dsn: r.dsn })) });
      },
    });
    const gw = await startTestGateway({
      overrides: {
        domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: downstream.port }] } },
        delivery: { retryDelayMs: 300, maxRetryDelayMs: 1_000, connectTimeoutMs: 2_000, relay: [{ host: '127.0.0.1', port: bounces.port, tls: 'none' }] },
      },
    });
    cleanups.push(() => gw.stop());
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test', 'nobody@example.test'] }, HELD, {
      dsn: { id: 'env-77', return: 'full', notify: ['FAILURE', 'DELAY'], recipient: 'orig@example.test' },
    });
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['quarantined']);
    expect((await gw.stores.store.get(sent.id!))?.verdict).toBe('banned');

    expect(await releaseMessage({ config: gw.config, ...gw.stores, queue: gw.queue, logger: silentLogger() }, sent.id!, 'test')).toEqual({ ok: true });
    await waitForStatus(gw, sent.id!, ['failed']);

    expect(seen).toEqual([
      {
        mail: { ret: 'FULL', envid: 'env-77' },
        rcpt: [{ address: 'alice@example.test', dsn: { notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;orig@example.test' } }],
      },
    ]);
    const bounce = await waitFor(
      async () => {
        const m = await mailboxMessages({ mailboxDir: bounces.dir }, 'bob@sender.test');
        return m.length > 0 ? m : undefined;
      },
      { what: 'the bounce of the released message' },
    );
    expect(bounce).toHaveLength(1);
    const text = bounce[0]!.toString('latin1');
    expect(text).toMatch(/Original-Envelope-Id: env-77/);
    expect(text).toMatch(/Original-Recipient: rfc822;orig@example\.test/);
    // RET=FULL: the whole released message comes back, body included.
    expect(text).toContain('the body of the held message');
  });
});
