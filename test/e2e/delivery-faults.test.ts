// Crash repro (first cut of the fault matrix).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { startScriptedPeer, type ScriptedPeer } from '../support/scripted-peer.ts';
import { sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const plain = (to: string, subject: string) => `From: bob@sender.test\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nbody of ${subject}\r\n`;

describe('crash repro', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  let refuser: ScriptedPeer;
  beforeAll(async () => {
    dns = await startFakeDns({ 'sender.test': { MX: [{ exchange: 'mx.broken-sender.test', priority: 10 }] } });
    refuser = await startScriptedPeer({ rcpt: () => '550 5.1.1 no such user' });
    gw = await startTestGateway({
      dns,
      overrides: {
        domains: {
          'nxhost.test': { downstream: [{ host: 'mailhost.nowhere.test', port: 25 }] },
          'refuse.test': { downstream: [{ host: '127.0.0.1', port: refuser.port, tls: 'none' }] },
        },
        delivery: { retryDelayMs: 60_000, connectTimeoutMs: 1_000 },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await refuser?.close();
    await dns?.close();
  });
  it('a downstream host name that does not resolve defers', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['a@nxhost.test'] }, plain('a@nxhost.test', 'nx'));
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['deferred'], 15_000);
  });
  it('a bounce to a sender whose MX host does not resolve', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['a@refuse.test'] }, plain('a@refuse.test', 'bounce'));
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['failed'], 15_000);
    await new Promise((r) => setTimeout(r, 3000));
  });
});
