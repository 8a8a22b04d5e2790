// The delivery fault matrix: what a misbehaving next hop or DNS does to a message, through the real
// gateway (SMTP front, scan, delivery worker, Redis, SQLite). Each hosted domain below has its own
// scripted downstream (test/support/scripted-peer.ts) reached by a host NAME that the fake DNS
// answers; DSNs go through a relay (also a name) to a collecting peer, where we read what the
// sender would. Each row states its outcome: delivered once, deferred, or failed with a DSN —
// and nothing crashes (an uncaught error fails the file) and nothing arrives twice.
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../support/ports.ts';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { startBlackholePort, startScriptedPeer, type PeerScript, type ScriptedPeer } from '../support/scripted-peer.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { makeCert } from '../support/certs.ts';

const plain = (to: string[], subject: string, extra = '') =>
  `${extra}From: bob@sender.test\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\nbody of ${subject}\r\n`;

/** Short deadlines so that each stalled row settles within a few seconds; retries far away, so a deferral stays one. */
const DELIVERY = { retryDelayMs: 120_000, maxRetryDelayMs: 120_000, connectTimeoutMs: 1_000, socketTimeoutMs: 1_500, transactionTimeoutMs: 2_500 };

type Expect = 'delivered' | 'deferred' | 'failed';
interface Row {
  name: string;
  script?: PeerScript;
  tls?: 'none' | 'opportunistic' | 'required' | 'verified';
  /** How the domain's downstream is reached instead of a scripted peer. */
  special?: 'nxdomain' | 'dns-timeout' | 'refused' | 'blackhole';
  rcpt?: string[];
  expect: Expect;
  /** The recorded reply (last reply of the message) matches. */
  reply: RegExp;
  /** Messages the peer must have accepted (default: 1 if delivered, else 0). */
  accepted?: number;
  /** The DSN the sender gets (failed rows): its Status and Diagnostic-Code. */
  dsn?: RegExp[];
  /** Connections the peer saw (default: not checked). */
  connections?: number;
}

const rows: Row[] = [
  { name: 'host name that does not resolve', special: 'nxdomain', expect: 'deferred', reply: /^4\.4\.4 .*mailhost\.nowhere\.test: host not found/ },
  { name: 'DNS timeout', special: 'dns-timeout', expect: 'deferred', reply: /^4\.4\.4 .*lookup failed: .*ETIMEOUT/ },
  { name: 'connection refused', special: 'refused', expect: 'deferred', reply: /ECONNREFUSED/ },
  { name: 'connect timeout', special: 'blackhole', expect: 'deferred', reply: /Connection timeout|ETIMEDOUT/i },
  { name: 'greeting 421', script: { greeting: '421 4.3.2 too busy' }, expect: 'deferred', reply: /421 4\.3\.2 too busy/ },
  {
    name: 'greeting 554',
    script: { greeting: '554 5.7.1 go away' },
    expect: 'failed',
    reply: /554 5\.7\.1 go away/,
    dsn: [/Status: 5\.7\.1/, /Remote-MTA: dns; mbox\.greeting-554\.test\r\n/, /Diagnostic-Code: smtp; 554 5\.7\.1 go away/],
  },
  { name: 'banner never sent', script: { greeting: { hang: true } }, expect: 'deferred', reply: /Greeting never received|timeout/i },
  { name: 'STARTTLS handshake fails, tls none', tls: 'none', script: { starttls: '220 2.0.0 go ahead' }, expect: 'delivered', reply: /250 2\.0\.0 queued/ },
  // Postfix's level "may": the handshake failed, so the same host is tried again without TLS.
  {
    name: 'STARTTLS handshake fails, tls opportunistic',
    tls: 'opportunistic',
    script: { starttls: '220 2.0.0 go ahead' },
    expect: 'delivered',
    reply: /250 2\.0\.0 queued/,
    connections: 2,
  },
  { name: 'STARTTLS handshake fails, tls required', tls: 'required', script: { starttls: '220 2.0.0 go ahead' }, expect: 'deferred', reply: /STARTTLS failed/ },
  { name: 'STARTTLS handshake fails, tls verified', tls: 'verified', script: { starttls: '220 2.0.0 go ahead' }, expect: 'deferred', reply: /STARTTLS failed/ },
  { name: 'reset in the middle of DATA', script: { resetInDataAfter: 20 }, expect: 'deferred', reply: /ECONNRESET|closed unexpectedly/i },
  { name: '250 then reset before QUIT', script: { afterDot: 'reset' }, expect: 'delivered', reply: /250 2\.0\.0 queued/ },
  { name: '451 after the final dot', script: { dot: () => '451 4.3.0 local error in processing' }, expect: 'deferred', reply: /451 4\.3\.0 local error/ },
  {
    name: 'multi-line replies',
    script: {
      greeting: '220-peer.test ESMTP\n220-no UCE\n220 welcome',
      rcpt: (to) => (to.startsWith('gone') ? '550-5.1.1 no such user\n550 5.1.1 see https://help.test' : '250 2.1.5 ok'),
      dot: () => '250-2.0.0 queued as A1\n250 2.0.0 thanks',
    },
    rcpt: ['a', 'gone'],
    expect: 'failed',
    reply: /550.*5\.1\.1 no such user/,
    accepted: 1,
    dsn: [/Final-Recipient: rfc822; gone@/, /Status: 5\.1\.1/],
  },
  {
    name: 'a peer that sends one byte a second',
    script: { byteDelayMs: 1_000 },
    expect: 'deferred',
    reply: /4\.4\.2 no answer within 2500 ms \(transaction deadline\)/,
  },
];

const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

describe('delivery fault matrix', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  let collector: ScriptedPeer;
  let partial: ScriptedPeer;
  const peers = new Map<string, ScriptedPeer>();
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dns = await startFakeDns({ 'relay.gateway.test': { A: ['127.0.0.1'] } });
    collector = await startScriptedPeer();
    const domains: Record<string, unknown> = {};
    for (const row of rows) {
      const domain = `${slug(row.name)}.test`;
      const host = `mbox.${domain}`;
      let port: number;
      if (row.special === 'nxdomain') {
        domains[domain] = { downstream: [{ host: 'mailhost.nowhere.test', port: 25 }] };
        continue;
      }
      if (row.special === 'refused') port = await closedPort();
      else if (row.special === 'blackhole') {
        const hole = await startBlackholePort();
        cleanups.push(() => hole.close());
        port = hole.port;
      } else if (row.special === 'dns-timeout') {
        port = 25;
        dns.hang(host);
      } else {
        const peer = await startScriptedPeer(row.script);
        peers.set(row.name, peer);
        cleanups.push(() => peer.close());
        port = peer.port;
      }
      if (row.special !== 'dns-timeout') dns.set(host, 'A', ['127.0.0.1']);
      domains[domain] = { downstream: [{ host, port, tls: row.tls ?? 'none' }] };
    }
    partial = await startScriptedPeer({ rcpt: (to) => (to.startsWith('later') ? '452 4.2.2 mailbox full' : '250 2.1.5 ok') });
    cleanups.push(() => partial.close());
    dns.set('mbox.partial.test', 'A', ['127.0.0.1']);
    domains['partial.test'] = { downstream: [{ host: 'mbox.partial.test', port: partial.port, tls: 'none' }] };
    gw = await startTestGateway({
      dns,
      overrides: { domains, delivery: { ...DELIVERY, relay: [{ host: 'relay.gateway.test', port: collector.port, tls: 'none' }] } },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    for (const c of cleanups) await c();
    await collector?.close();
    await dns?.close();
  });

  // The rows run at once (each has its own domain and peer), so the file takes as long as its slowest row.
  it.concurrent.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const domain = `${slug(row.name)}.test`;
    const to = (row.rcpt ?? ['a']).map((l) => `${l}@${domain}`);
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to }, plain(to, row.name));
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, [row.expect], 20_000);
    const record = await gw.stores.store.get(sent.id!);
    const replies = (await gw.stores.store.deliveries(sent.id!)).map((d) => d.reply).join(' | ');
    expect(`${record?.lastReply} | ${replies}`).toMatch(row.reply);
    const peer = peers.get(row.name);
    const expectedCopies = row.accepted ?? (row.expect === 'delivered' ? 1 : 0);
    if (peer) {
      await new Promise((r) => setTimeout(r, 500)); // a duplicate would have to arrive now: retries are 2 minutes away
      expect(peer.accepted.filter((m) => m.data.includes(sent.id!))).toHaveLength(expectedCopies);
      if (row.connections !== undefined) expect(peer.connections).toBe(row.connections);
    }
    const dsns = () => collector.accepted.filter((m) => m.rcptTo.includes('bob@sender.test') && m.data.includes(`X-Mailmoat-ID: ${sent.id}`));
    if (row.expect === 'failed') {
      const [dsn] = await waitFor(() => (dsns().length ? dsns() : undefined), { what: `the DSN for ${row.name}`, timeoutMs: 15_000 });
      const text = dsn!.data.toString();
      expect(text).toContain('Action: failed');
      for (const re of row.dsn ?? []) expect(text).toMatch(re);
    } else {
      expect(dsns()).toHaveLength(0);
    }
  });

  it('452 for some recipients: the others are delivered once, the rest later, each exactly once', async () => {
    const peer = partial;
    const to = ['now@partial.test', 'later@partial.test'];
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to }, plain(to, 'partial 452'));
    await waitForStatus(gw, sent.id!, ['deferred'], 20_000);
    expect((await gw.stores.store.deliveries(sent.id!)).map((d) => [d.recipient, d.outcome]).sort()).toEqual([
      ['later@partial.test', 'deferred'],
      ['now@partial.test', 'delivered'],
    ]);
    peer.setScript({});
    expect(await gw.queue.retryNow('deliver', sent.id!)).toBe(true);
    await waitForStatus(gw, sent.id!, ['delivered'], 20_000);
    const copies = peer.accepted.filter((m) => m.data.includes(sent.id!));
    expect(copies.map((m) => m.rcptTo)).toEqual([['now@partial.test'], ['later@partial.test']]);
  });
});

describe('TLS to a next hop reached by name', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  let server: SMTPServer;
  const seen: { servername?: string; secure: boolean; rcpt: string[] }[] = [];

  beforeAll(async () => {
    const { cert, key } = makeCert(['mbox.required.test', 'mbox.verified.test']);
    server = new SMTPServer({
      key: readFileSync(key),
      cert: readFileSync(cert),
      authOptional: true,
      logger: false,
      disableReverseLookup: true,
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          seen.push({
            servername: (session as { servername?: string }).servername,
            secure: session.secure,
            rcpt: session.envelope.rcptTo.map((r) => r.address),
          });
          callback();
        });
      },
    });
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.server.address() as { port: number }).port;
    dns = await startFakeDns({ 'mbox.required.test': { A: ['127.0.0.1'] }, 'mbox.verified.test': { A: ['127.0.0.1'] } });
    gw = await startTestGateway({
      dns,
      overrides: {
        domains: {
          'required.test': { downstream: [{ host: 'mbox.required.test', port, tls: 'required' }] },
          'verified.test': { downstream: [{ host: 'mbox.verified.test', port, tls: 'verified' }] },
        },
        delivery: DELIVERY,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await dns?.close();
  });

  it('connects to the address and gives the name for SNI: required takes any certificate, verified refuses an untrusted one', async () => {
    const required = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['a@required.test'] }, plain(['a@required.test'], 'tls required'));
    const verified = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['a@verified.test'] }, plain(['a@verified.test'], 'tls verified'));
    await waitForStatus(gw, required.id!, ['delivered'], 20_000);
    await waitForStatus(gw, verified.id!, ['deferred'], 20_000);
    expect(seen).toEqual([{ servername: 'mbox.required.test', secure: true, rcpt: ['a@required.test'] }]);
    expect((await gw.stores.store.get(verified.id!))?.lastReply).toMatch(
      /mbox\.verified\.test\[127\.0\.0\.1\]:\d+: .*self.signed certificate.*\(STARTTLS failed\)/i,
    );
  });
});
