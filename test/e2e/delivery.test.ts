// Delivery through downstream trouble: outages, refusals, failover, expiry, delay warnings.
// The downstream servers are real SMTP servers (the demo mailbox) on loopback; bounces to the
// sender go through the configured relay, which is another mailbox server we read.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMailbox, type Mailbox } from '../../gateway/demo/mailbox.ts';
import { closedPort, downForNowPort } from '../support/ports.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function mailbox(port = 0, hooks?: Parameters<typeof startMailbox>[0]['hooks']): Promise<Mailbox & { dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-downstream-'));
  const m = await startMailbox({ dir, host: '127.0.0.1', port, hooks });
  cleanups.push(() => m.close());
  return Object.assign(m, { dir });
}

async function gateway(
  downstream: { host: string; port: number; priority?: number }[],
  relayPort: number,
  delivery: Record<string, unknown> = {},
): Promise<TestGateway> {
  const gw = await startTestGateway({
    overrides: {
      domains: { 'example.test': { downstream } },
      delivery: {
        retryDelayMs: 300,
        maxRetryDelayMs: 1_000,
        connectTimeoutMs: 2_000,
        relay: [{ host: '127.0.0.1', port: relayPort, tls: 'none' }],
        ...delivery,
      },
    },
  });
  cleanups.push(() => gw.stop());
  return gw;
}

const plain = (subject: string) =>
  `From: bob@sender.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nbody of ${subject}\r\n`;

describe('delivery', () => {
  it('defers while the downstream is down and delivers exactly once when it comes back', async () => {
    const bounces = await mailbox();
    const port = await downForNowPort();
    const gw = await gateway([{ host: '127.0.0.1', port }], bounces.port);
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, plain('outage'));
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['deferred']);
    expect((await gw.stores.store.get(sent.id!))?.lastReply).toMatch(/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    const downstream = await mailbox(port);
    await waitForStatus(gw, sent.id!, ['delivered']);
    await new Promise((r) => setTimeout(r, 1_500)); // a duplicate would arrive within the next retries
    expect(await mailboxMessages({ mailboxDir: downstream.dir }, 'alice@example.test')).toHaveLength(1);
    expect(await gw.stores.spool.committedIds()).not.toContain(sent.id);
  });

  it('bounces the refused recipient to the sender in a DSN and delivers the others once', async () => {
    const bounces = await mailbox();
    const downstream = await mailbox(0, {
      refuseRecipient: (a) =>
        a === 'nobody@example.test' ? { code: 550, text: '5.1.1 <nobody@example.test>: Recipient address rejected: User unknown' } : undefined,
    });
    const gw = await gateway([{ host: '127.0.0.1', port: downstream.port }], bounces.port);
    const sent = await sendRaw(
      gw.smtpPort,
      { from: 'bob@sender.test', to: ['alice@example.test', 'nobody@example.test', 'carol@example.test'] },
      plain('partial'),
    );
    await waitForStatus(gw, sent.id!, ['failed']);
    for (const r of ['alice@example.test', 'carol@example.test']) expect(await mailboxMessages({ mailboxDir: downstream.dir }, r)).toHaveLength(1);
    expect(await mailboxMessages({ mailboxDir: downstream.dir }, 'nobody@example.test')).toHaveLength(0);
    const [dsn] = await waitFor(
      async () => {
        const m = await mailboxMessages({ mailboxDir: bounces.dir }, 'bob@sender.test');
        return m.length ? m : undefined;
      },
      { what: 'the DSN' },
    );
    const text = dsn.toString();
    expect(text).toMatch(/^From: Mail Delivery System <MAILER-DAEMON@mx\.gateway\.test>/m);
    expect(text).toContain('Content-Type: multipart/report; report-type=delivery-status');
    expect(text).toContain('Final-Recipient: rfc822; nobody@example.test');
    expect(text).toContain('Action: failed');
    expect(text).toContain('Status: 5.1.1');
    expect(text).toContain('Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown');
    expect(text).toContain('Message-ID: <partial@sender.test>'); // the original headers come back
    expect(text).not.toContain('Final-Recipient: rfc822; alice@example.test');
    expect((await gw.stores.store.deliveries(sent.id!)).map((d) => [d.recipient, d.outcome])).toEqual([
      ['alice@example.test', 'delivered'],
      ['carol@example.test', 'delivered'],
      ['nobody@example.test', 'failed'],
    ]);
  });

  it('fails over to the next downstream by priority when the first is dead or says 4xx', async () => {
    const bounces = await mailbox();
    let busyTried = 0;
    const busy = await mailbox(0, {
      refuseRecipient: () => {
        busyTried++;
        return { code: 451, text: '4.3.2 try again later' };
      },
    });
    const backup = await mailbox();
    const dead = await closedPort();
    const gw = await gateway(
      [
        { host: '127.0.0.1', port: backup.port, priority: 30 },
        { host: '127.0.0.1', port: dead, priority: 10 },
        { host: '127.0.0.1', port: busy.port, priority: 20 },
      ],
      bounces.port,
    );
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, plain('failover'));
    await waitForStatus(gw, sent.id!, ['delivered']);
    expect(await mailboxMessages({ mailboxDir: backup.dir }, 'alice@example.test')).toHaveLength(1);
    expect((await gw.stores.store.deliveries(sent.id!))[0].reply).toContain(`127.0.0.1:${backup.port}: 250`);
    // priority order, not file order: the dead host (10) and the busy one (20) were tried first
    expect(busyTried).toBe(1);
  });

  it('warns the sender once after the delay-warning time and returns the message when its lifetime ends', async () => {
    const bounces = await mailbox();
    const dead = await closedPort();
    const gw = await gateway([{ host: '127.0.0.1', port: dead }], bounces.port, { delayWarningMs: 1_000, maxLifetimeMs: 4_000 });
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, plain('expiry'));
    await waitForStatus(gw, sent.id!, ['failed'], 20_000);
    const notices = await waitFor(
      async () => {
        const m = await mailboxMessages({ mailboxDir: bounces.dir }, 'bob@sender.test');
        return m.length >= 2 ? m.map((b) => b.toString()) : undefined;
      },
      { what: 'a delay warning and a bounce' },
    );
    expect(notices).toHaveLength(2);
    const delayed = notices.find((n) => n.includes('Action: delayed'))!;
    expect(delayed).toContain('Subject: Delayed Mail (still being retried)');
    expect(delayed).toMatch(/Status: 4\.\d\.\d/);
    expect(delayed).toContain('Will-Retry-Until:');
    const failed = notices.find((n) => n.includes('Action: failed'))!;
    expect(failed).toMatch(/message expired after \d+ seconds in the queue/);
    // the message itself is kept: an admin can still find and resend it
    expect((await gw.stores.store.get(sent.id!))?.status).toBe('failed');
    expect(await gw.stores.quarantine.size(sent.id!)).toBeGreaterThan(0);
  });

  it('never bounces to the null sender', async () => {
    const bounces = await mailbox();
    const downstream = await mailbox(0, { refuseRecipient: () => ({ code: 550, text: '5.1.1 unknown' }) });
    const gw = await gateway([{ host: '127.0.0.1', port: downstream.port }], bounces.port);
    const sent = await sendRaw(gw.smtpPort, { from: '', to: ['alice@example.test'] }, plain('nullsender'));
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['failed']);
    await new Promise((r) => setTimeout(r, 500));
    expect((await gw.stores.store.events(sent.id!)).map((e) => e.kind)).not.toContain('bounced');
    expect((await gw.stores.store.list({ limit: 10 })).filter((m) => m.verdict === 'dsn')).toHaveLength(0);
  });

  it('passes NOTIFY and ORCPT on downstream and sends no bounce for NOTIFY=NEVER', async () => {
    const bounces = await mailbox();
    const seen: unknown[] = [];
    const downstream = await mailbox(0, {
      refuseRecipient: (a) => (a === 'nobody@example.test' ? { code: 550, text: '5.1.1 unknown' } : undefined),
      beforeReply: async (_m, session) => {
        seen.push(...session.envelope.rcptTo.map((r) => ({ address: r.address, dsn: r.dsn })));
      },
    });
    const gw = await gateway([{ host: '127.0.0.1', port: downstream.port }], bounces.port);
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test', 'nobody@example.test'] }, plain('never'), {
      dsn: { id: 'env-42', return: 'headers', notify: ['NEVER'], recipient: 'orig@example.test' },
    });
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['failed']);
    expect(seen).toEqual([{ address: 'alice@example.test', dsn: { notify: ['NEVER'], orcpt: 'rfc822;orig@example.test' } }]);
    await new Promise((r) => setTimeout(r, 500));
    expect((await gw.stores.store.events(sent.id!)).map((e) => e.kind)).not.toContain('bounced');
    expect(await mailboxMessages({ mailboxDir: bounces.dir }, 'bob@sender.test')).toHaveLength(0);
  });
});
