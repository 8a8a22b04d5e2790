// Per-destination isolation: bounces stuck on a relay that accepts TCP and never greets must not
// starve delivery to the hosted domains' mailbox servers. The outside lane has one slot here and
// the whole process three: the stuck bounces hold one, and wait for it without holding any other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { startScriptedPeer, type ScriptedPeer } from '../support/scripted-peer.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const message = (to: string, subject: string) =>
  `From: bob@sender.test\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nbody\r\n`;
/** Long enough that the stuck bounces are still connecting when the test ends. */
const STALL_MS = 30_000;

describe('delivery lanes', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  let stalled: ScriptedPeer;
  let refusing: ScriptedPeer;
  let mailbox: ScriptedPeer;

  beforeAll(async () => {
    dns = await startFakeDns({ 'relay.stall.test': { A: ['127.0.0.1'] }, 'mbox.busy.test': { A: ['127.0.0.1'] }, 'mbox.fine.test': { A: ['127.0.0.1'] } });
    stalled = await startScriptedPeer({ greeting: { hang: true } });
    refusing = await startScriptedPeer({ rcpt: () => '550 5.1.1 no such user' });
    mailbox = await startScriptedPeer();
    gw = await startTestGateway({
      dns,
      overrides: {
        domains: {
          'busy.test': { downstream: [{ host: 'mbox.busy.test', port: refusing.port, tls: 'none' }] },
          'fine.test': { downstream: [{ host: 'mbox.fine.test', port: mailbox.port, tls: 'none' }] },
        },
        queue: { lockDurationMs: 3_000, deliverConcurrency: 3 },
        delivery: {
          retryDelayMs: 120_000,
          connectTimeoutMs: STALL_MS,
          externalConcurrency: 1,
          relay: [{ host: 'relay.stall.test', port: stalled.port, tls: 'none' }],
        },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await stalled?.close(); // lets the stuck deliveries end now rather than at their timeout
    await gw?.stop();
    for (const p of [refusing, mailbox]) await p?.close();
    await dns?.close();
  });

  it('delivers hosted mail while bounces to a stalled relay are still pending', async () => {
    const bounced: string[] = [];
    for (let i = 0; i < 4; i++) {
      const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['gone@busy.test'] }, message('gone@busy.test', `refused ${i}`));
      bounced.push(sent.id!);
    }
    const dsnIds = await Promise.all(
      bounced.map(async (id) => {
        await waitForStatus(gw, id, ['failed'], 60_000);
        const event = await waitFor(async () => (await gw.stores.store.events(id)).find((e) => e.kind === 'bounced'), { what: 'the bounce' });
        return /^DSN (\S+)/.exec(event.detail)![1]!;
      }),
    );
    await waitFor(() => stalled.connections >= 1, { what: 'a bounce stuck on the relay' });

    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['a@fine.test'] }, message('a@fine.test', 'hosted'));
    await waitForStatus(gw, sent.id!, ['delivered'], 60_000);
    expect(mailbox.accepted.filter((m) => m.data.includes(sent.id!))).toHaveLength(1);

    // The bounces are still waiting for the relay's greeting: none gave up (deferred) or got through,
    // and the outside lane held them to one connection.
    const states = await Promise.all(dsnIds.map(async (id) => (await gw.stores.store.get(id))?.status));
    expect(states).toEqual(['delivering', 'delivering', 'delivering', 'delivering']);
    expect(stalled.connections).toBe(1);
  }, 150_000);
});
