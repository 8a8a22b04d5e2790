// Where bounces go, and when they do not: DSNs routed by the sender domain's MX through the
// gateway's resolver (the fake DNS), mail loops, the hop count, and the backscatter rules. The
// gateway has no relay here, so a DSN goes by MX; every sender domain below is broken in its own
// way, so no connection ever leaves the machine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../gateway/services/managed.ts';
import { DSN_SUPPRESSED_EVENT } from '../../gateway/delivery/deliver.ts';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { startScriptedPeer, type ScriptedPeer } from '../support/scripted-peer.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const message = (from: string, to: string, subject: string, o: { head?: string; body?: string } = {}) =>
  `${o.head ?? ''}From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\n${o.body ?? `body of ${subject}`}\r\n`;

describe('bounce routing, loops and backscatter', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  let mailbox: ScriptedPeer;

  beforeAll(async () => {
    dns = await startFakeDns({
      'mxgone.test': { MX: [{ exchange: 'mx.nowhere.test', priority: 10 }] },
      'nullmx.test': { MX: [{ exchange: '', priority: 0 }] },
      'quiet.test': { MX: [{ exchange: '', priority: 0 }] },
      'chatty.test': { MX: [{ exchange: '', priority: 0 }] },
      'loopmx.test': { MX: [{ exchange: 'mx.loopmx.test', priority: 10 }] },
      'mx.loopmx.test': { A: ['127.0.0.1'] },
      'privmx.test': { MX: [{ exchange: 'mx.privmx.test', priority: 10 }] },
      'mx.privmx.test': { A: ['10.9.8.7'] },
      'mbox.refuse.test': { A: ['127.0.0.1'] },
      // A domain that says no host may send its mail: our client at 127.0.0.1 fails SPF.
      'forged.test': { TXT: ['v=spf1 -all'], MX: [{ exchange: '', priority: 0 }] },
    });
    dns.servfail('servfail.test');
    mailbox = await startScriptedPeer({ rcpt: (to) => (to.startsWith('gone') ? '550 5.1.1 no such user' : '250 2.1.5 ok') });
    const smtpPort = await freePort();
    gw = await startTestGateway({
      dns,
      overrides: {
        smtp: { listen: { host: '127.0.0.1', port: smtpPort }, maxMessageBytes: 200_000, maxRecipients: 5 },
        domains: {
          'refuse.test': { downstream: [{ host: 'mbox.refuse.test', port: mailbox.port, tls: 'none' }] },
          // A downstream that is this gateway's own listener: a loop, whatever the transport map says.
          'self.test': { downstream: [{ host: '127.0.0.1', port: smtpPort, tls: 'none' }] },
        },
        // GTUBE scores about 1000: with this threshold it is "spam" (delivered tagged), not quarantined.
        spam: { threshold: 5, highThreshold: 5000 },
        delivery: { retryDelayMs: 120_000, maxRetryDelayMs: 120_000, connectTimeoutMs: 1_000, maxDsnPerDomainPerHour: 2, maxReceivedHeaders: 50 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await mailbox?.close();
    await dns?.close();
  });

  async function send(from: string, to: string, subject: string, o?: { head?: string; body?: string }): Promise<string> {
    const sent = await sendRaw(gw.smtpPort, { from, to: [to] }, message(from, to, subject, o));
    expect(sent.code).toBe(250);
    return sent.id!;
  }
  /** The id of the DSN sent about a message, once its 'bounced' event is there. */
  async function dsnOf(id: string): Promise<string> {
    const event = await waitFor(async () => (await gw.stores.store.events(id)).find((e) => e.kind === 'bounced'), {
      what: `the DSN about ${id}`,
      timeoutMs: 15_000,
    });
    return /^DSN (\S+)/.exec(event.detail)![1]!;
  }

  it.each([
    ['MX host does not resolve', 'mxgone.test', 'failed', /: 5\.4\.4 no usable address for mxgone\.test: mx\.nowhere\.test: host not found/],
    ['domain does not exist', 'nxdomain.test', 'failed', /: 5\.1\.2 nxdomain\.test: no such domain/],
    ['domain has a null MX', 'nullmx.test', 'failed', /: 5\.1\.10 nullmx\.test does not accept mail \(null MX\)/],
    ['MX is on loopback', 'loopmx.test', 'failed', /: 5\.4\.6 mail for loopmx\.test loops back to myself: mx\.loopmx\.test\[127\.0\.0\.1\]/],
    ['MX is on a private address', 'privmx.test', 'failed', /: 5\.4\.6 .*mx\.privmx\.test\[10\.9\.8\.7\] is a private address, not in the transport map/],
    ['MX lookup gets SERVFAIL', 'servfail.test', 'deferred', /^4\.4\.3 MX lookup for servfail\.test failed/],
  ] as const)('a bounce to a sender whose %s (%s): the DSN is %s, nothing crashes', async (_name, domain, outcome, reply) => {
    const id = await send(`bob@${domain}`, 'gone@refuse.test', `bounce ${domain}`);
    await waitForStatus(gw, id, ['failed'], 15_000);
    const dsn = await dsnOf(id);
    await waitForStatus(gw, dsn, [outcome], 15_000);
    expect((await gw.stores.store.get(dsn))?.lastReply).toMatch(reply);
  });

  it('never delivers to our own listener, even when the transport map says so (5.4.6)', async () => {
    const id = await send('bob@quiet.test', 'a@self.test', 'self loop');
    await waitForStatus(gw, id, ['failed'], 15_000);
    expect((await gw.stores.store.get(id))?.lastReply).toMatch(/: 5\.4\.6 mail for self\.test loops back to myself: 127\.0\.0\.1:\d+ is our own SMTP listener/);
  });

  it('returns a message with more than 50 Received headers (5.4.6) and delivers nothing', async () => {
    const received = Array.from({ length: 51 }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Thu, 3 Dec 2026 10:00:00 +0000\r\n`).join('');
    const id = await send('bob@quiet.test', 'a@refuse.test', 'looping', { head: received });
    await waitForStatus(gw, id, ['failed'], 15_000);
    expect((await gw.stores.store.get(id))?.lastReply).toMatch(/: 5\.4\.6 too many hops: 5\d Received headers \(limit 50\), mail loop/);
    expect(mailbox.accepted.filter((m) => m.data.includes(id))).toHaveLength(0);
    await dsnOf(id); // the sender is told
  });

  it('sends no DSN for a message classed spam, and says so in the message log', async () => {
    const id = await send('bob@quiet.test', 'gone@refuse.test', 'spam bounce', { body: GTUBE });
    await waitForStatus(gw, id, ['failed'], 20_000);
    expect((await gw.stores.store.get(id))?.verdict).toBe('spam');
    expect((await gw.stores.store.deliveries(id)).map((d) => [d.recipient, d.outcome])).toEqual([['gone@refuse.test', 'failed']]);
    const events = await gw.stores.store.events(id);
    expect(events.map((e) => e.kind)).not.toContain('bounced');
    expect(events.find((e) => e.kind === DSN_SUPPRESSED_EVENT)?.detail).toBe(
      'no bounce to <bob@quiet.test> for gone@refuse.test: message classed spam (backscatter)',
    );
  });

  it('sends no DSN to a sender that failed SPF', async () => {
    const id = await send('bob@forged.test', 'gone@refuse.test', 'forged bounce');
    await waitForStatus(gw, id, ['failed'], 20_000);
    const report = (await gw.stores.store.get(id))?.report;
    expect(report?.auth?.status === 'checked' && report.auth.spf.result).toBe('fail');
    const events = await gw.stores.store.events(id);
    expect(events.map((e) => e.kind)).not.toContain('bounced');
    expect(events.find((e) => e.kind === DSN_SUPPRESSED_EVENT)?.detail).toMatch(/sender failed SPF \(backscatter\)/);
  });

  it('limits DSNs per sender domain per hour', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = await send('bob@chatty.test', 'gone@refuse.test', `chatty ${i}`);
      await waitForStatus(gw, id, ['failed'], 15_000);
      ids.push(id);
    }
    const kinds = await Promise.all(ids.map(async (id) => (await gw.stores.store.events(id)).map((e) => e.kind)));
    expect(kinds.map((k) => k.includes('bounced'))).toEqual([true, true, false]);
    const suppressed = (await gw.stores.store.events(ids[2]!)).find((e) => e.kind === DSN_SUPPRESSED_EVENT);
    expect(suppressed?.detail).toMatch(/2 DSNs to chatty\.test in the last hour \(rate limit\)/);
  });
});
