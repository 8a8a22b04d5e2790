// Issue 18 point 6: MTA-STS (RFC 8461) honoured for domains reached by MX. The internet is a fake
// DNS (the `_mta-sts` TXT record, the MX and the policy host's address) and a local HTTPS server
// holding the policy, its certificate trusted through the process's default CA list (Node's
// tls.setDefaultCACertificates), its port given by `delivery.mtaSts.policyPort` (443 otherwise).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { startFakeDns, type FakeDns } from '../../support/fake-dns.ts';
import { startTestGateway, waitForStatus, type TestGateway } from '../../support/gateway.ts';
import { makeCert } from '../../support/certs.ts';
import { configSchema, type Config } from '../../../gateway/config/schema.ts';
import { createResolver } from '../../../gateway/dns/resolver.ts';
import type { DnsResolver } from '../../../core/dns.ts';
import { routeFor, type Target } from '../../../gateway/delivery/transport.ts';
import { sendToTarget } from '../../../gateway/delivery/smtp-send.ts';
import type { Envelope } from '../../../gateway/spool/spool.ts';
import { clearStsCache } from '../../../gateway/delivery/mta-sts.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { hashPassword } from '../../../gateway/passwords.ts';

// Policy host names served by the one HTTPS server (SNI picks nothing: one certificate names them all).
const POLICY_HOSTS = ['mta-sts.enforce.test', 'mta-sts.testing.test', 'mta-sts.cached.test'];
const policies: Record<string, string> = {
  'mta-sts.enforce.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx1.enforce.test\r\nmx: *.backup.enforce.test\r\nmax_age: 86400\r\n',
  'mta-sts.testing.test': 'version: STSv1\nmode: testing\nmx: mx1.testing.test\nmax_age: 86400\n',
  'mta-sts.cached.test': 'version: STSv1\nmode: enforce\nmx: mx1.cached.test\nmax_age: 86400\n',
};

describe('MTA-STS', () => {
  let dns: FakeDns;
  let server: https.Server;
  const fetched: string[] = [];
  let config: Config;
  let resolver: DnsResolver;
  const defaultCAs = tls.getCACertificates('default');
  // The MX host's certificate, trusted like the policy host's (a real CA would sign both).
  const mxCert = makeCert(['mx1.enforce.test']);

  beforeAll(async () => {
    const cert = makeCert(POLICY_HOSTS);
    tls.setDefaultCACertificates([...defaultCAs, readFileSync(cert.cert, 'utf8'), readFileSync(mxCert.cert, 'utf8')]);
    server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => {
      const host = String(req.headers.host);
      fetched.push(`${host}${req.url}`);
      const body = req.url === '/.well-known/mta-sts.txt' ? policies[host] : undefined;
      res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' }).end(body ?? 'not found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    // MX hosts get documentation addresses (192.0.2.0/24): routes are computed, never connected to.
    dns = await startFakeDns({
      '_mta-sts.enforce.test': { TXT: ['v=STSv1; id=20261205T01'] },
      'mta-sts.enforce.test': { A: ['127.0.0.1'] },
      'enforce.test': {
        MX: [
          { exchange: 'mx1.enforce.test', priority: 10 },
          { exchange: 'mx.evil.test', priority: 5 },
          { exchange: 'b1.backup.enforce.test', priority: 20 },
        ],
      },
      'mx1.enforce.test': { A: ['192.0.2.10'] },
      'mx.evil.test': { A: ['192.0.2.66'] },
      'b1.backup.enforce.test': { A: ['192.0.2.11'] },
      '_mta-sts.testing.test': { TXT: ['v=STSv1; id=1'] },
      'mta-sts.testing.test': { A: ['127.0.0.1'] },
      'testing.test': { MX: [{ exchange: 'mx.other.test', priority: 10 }] },
      'mx.other.test': { A: ['192.0.2.20'] },
      '_mta-sts.cached.test': { TXT: ['v=STSv1; id=one'] },
      'mta-sts.cached.test': { A: ['127.0.0.1'] },
      'cached.test': { MX: [{ exchange: 'mx1.cached.test', priority: 10 }] },
      'mx1.cached.test': { A: ['192.0.2.30'] },
      // Publishes a record but its policy host serves a certificate for other names: not trusted.
      '_mta-sts.badcert.test': { TXT: ['v=STSv1; id=1'] },
      'mta-sts.badcert.test': { A: ['127.0.0.1'] },
      'badcert.test': { MX: [{ exchange: 'mx.badcert.test', priority: 10 }] },
      'mx.badcert.test': { A: ['192.0.2.40'] },
      'nosts.test': { MX: [{ exchange: 'mx.nosts.test', priority: 10 }] },
      'mx.nosts.test': { A: ['192.0.2.50'] },
    });
    config = configSchema.parse({
      hostname: 'mx.gateway.test',
      dataDir: '/tmp/unused',
      domains: { 'hosted.test': { downstream: [{ host: '127.0.0.1', port: 2525 }] } },
      delivery: { mtaSts: { policyPort: port, timeoutMs: 2_000 } },
    });
    resolver = createResolver({ servers: [dns.address], timeoutMs: 500, tries: 1, cacheMaxEntries: 0 });
  });
  afterAll(async () => {
    tls.setDefaultCACertificates(defaultCAs);
    await new Promise((r) => server?.close(r));
    await dns?.close();
  });
  beforeEach(() => clearStsCache());

  const route = (domain: string) => routeFor(domain, config, resolver);

  it('enforce: only the MX hosts the policy names (a wildcard for one label), each with TLS verified', async () => {
    const r = await route('enforce.test');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.targets.map((t) => [t.host, t.address, t.tls])).toEqual([
      ['mx1.enforce.test', '192.0.2.10', 'verified'],
      ['b1.backup.enforce.test', '192.0.2.11', 'verified'],
    ]);
    expect(fetched).toContain('mta-sts.enforce.test/.well-known/mta-sts.txt');
  });

  it('enforce: an MX answer naming none of the policy’s hosts is deferred with 4.7.5, never a bounce', async () => {
    dns.set('enforce.test', 'MX', [{ exchange: 'mx.evil.test', priority: 10 }]);
    try {
      expect(await route('enforce.test')).toEqual({
        ok: false,
        temporary: true,
        reason: '4.7.5 MTA-STS policy of enforce.test (enforce) names none of its MX hosts (mx.evil.test); not delivered',
      });
    } finally {
      dns.set('enforce.test', 'MX', [
        { exchange: 'mx1.enforce.test', priority: 10 },
        { exchange: 'mx.evil.test', priority: 5 },
        { exchange: 'b1.backup.enforce.test', priority: 20 },
      ]);
    }
  });

  it('testing: delivery as usual (opportunistic TLS), with a note for the log', async () => {
    const r = await route('testing.test');
    expect(r).toMatchObject({ ok: true, notes: ['MTA-STS policy of testing.test (testing) does not name mx.other.test; delivered anyway'] });
    if (r.ok) expect(r.targets.map((t) => t.tls)).toEqual(['opportunistic']);
  });

  it('no record, or a policy host whose certificate does not verify: no policy (opportunistic), the failure noted', async () => {
    const none = await route('nosts.test');
    expect(none.ok && none.targets.map((t) => t.tls)).toEqual(['opportunistic']);
    const bad = await route('badcert.test');
    expect(bad.ok && bad.targets.map((t) => t.tls)).toEqual(['opportunistic']);
    expect(bad.ok && bad.notes?.[0]).toMatch(/^MTA-STS policy of badcert\.test could not be fetched: .*(altname|Hostname)/i);
  });

  it('cache: fetched once per policy id while max_age lasts; a new id is fetched; a policy host that vanishes leaves the cached policy in force', async () => {
    const count = () => fetched.filter((f) => f.startsWith('mta-sts.cached.test')).length;
    await route('cached.test');
    await route('cached.test');
    expect(count()).toBe(1);
    dns.set('_mta-sts.cached.test', 'TXT', ['v=STSv1; id=two']);
    await route('cached.test');
    expect(count()).toBe(2);
    // The attacker's move: policy host gone and the MX swapped. The cached enforce policy holds.
    dns.set('_mta-sts.cached.test', 'TXT', ['v=STSv1; id=three']);
    dns.remove('mta-sts.cached.test');
    dns.set('cached.test', 'MX', [{ exchange: 'mx.evil.test', priority: 10 }]);
    const r = await route('cached.test');
    expect(r).toMatchObject({ ok: false, temporary: true, reason: expect.stringMatching(/^4\.7\.5 MTA-STS policy of cached\.test/) });
  });

  it('enforce with a matching MX: delivered over STARTTLS with the certificate verified for the MX name; an untrusted one defers, never plaintext', async () => {
    const r = await route('enforce.test');
    if (!r.ok) throw new Error(r.reason);
    const mx1 = r.targets[0]!;
    expect([mx1.host, mx1.tls]).toEqual(['mx1.enforce.test', 'verified']);
    const received: { secure: boolean; servername?: string }[] = [];
    const mxServer = (c: { cert: string; key: string }) =>
      new SMTPServer({
        cert: readFileSync(c.cert),
        key: readFileSync(c.key),
        authOptional: true,
        logger: false,
        disableReverseLookup: true,
        onData(stream, session, callback) {
          stream.resume();
          stream.on('end', () => {
            received.push({ secure: session.secure, servername: (session as { servername?: string }).servername });
            callback();
          });
        },
      });
    const good = mxServer(mxCert);
    const rogue = mxServer(makeCert(['mx1.enforce.test'])); // same name, not signed by anyone we trust
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-sts-'));
    const file = path.join(dir, 'm.eml');
    writeFileSync(file, 'From: a@hosted.test\r\nTo: b@enforce.test\r\nSubject: sts\r\n\r\nhello\r\n');
    const envelope = { id: 'sts1', mailFrom: 'a@hosted.test', rcptTo: ['b@enforce.test'] } as Envelope;
    try {
      const ports = await Promise.all(
        [good, rogue].map((srv) => new Promise<number>((res) => srv.listen(0, '127.0.0.1', () => res((srv.server.address() as AddressInfo).port)))),
      );
      // The route's target, reached on loopback (a real MX has a public address; our loop guard keeps DNS-found hosts off loopback).
      const at = (port: number): Target => ({ ...mx1, address: '127.0.0.1', port });
      const delivered = await sendToTarget(config, at(ports[0]!), envelope, file, ['b@enforce.test']);
      expect(delivered[0]!.outcome).toBe('delivered');
      expect(received).toEqual([{ secure: true, servername: 'mx1.enforce.test' }]);
      const refused = await sendToTarget(config, at(ports[1]!), envelope, file, ['b@enforce.test']);
      expect(refused[0]).toMatchObject({ outcome: 'deferred', reply: expect.stringMatching(/self.signed certificate.*\(STARTTLS failed\)/i) });
      expect(received).toHaveLength(1);
    } finally {
      await Promise.all([good, rogue].map((srv) => new Promise<void>((res) => srv.close(() => res()))));
    }
  });

  describe('through a gateway', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startTestGateway({
        dns,
        domains: { 'hosted.test': {} },
        overrides: {
          tls: { certificates: [makeCert(['mx.gateway.test'])] },
          submission: { listeners: [{ name: 'sub', port: 0 }] },
          delivery: {
            retryDelayMs: 500,
            maxRetryDelayMs: 2_000,
            connectTimeoutMs: 3_000,
            mtaSts: { policyPort: (server.address() as AddressInfo).port, timeoutMs: 2_000 },
          },
        },
      });
      await openAccountStore(gw.stores.sql).create({
        username: 'ann@hosted.test',
        role: 'user',
        addresses: ['ann@hosted.test'],
        passwordHash: await hashPassword('ann pw', { logN: 10, r: 8, p: 1 }),
      });
    });
    afterAll(async () => {
      await gw?.stop();
    });

    it('a customer’s mail to an enforce domain whose MX is not in the policy is deferred (4.7.5), not sent', async () => {
      dns.set('enforce.test', 'MX', [{ exchange: 'mx.evil.test', priority: 10 }]);
      const t = createTransport({
        host: '127.0.0.1',
        port: gw.front.ports.listeners.sub!,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: 'ann@hosted.test', pass: 'ann pw' },
      });
      const info = await t.sendMail({
        envelope: { from: 'ann@hosted.test', to: ['bob@enforce.test'] },
        raw: 'From: ann@hosted.test\r\nTo: bob@enforce.test\r\nSubject: sts\r\n\r\nhello\r\n',
      });
      t.close();
      const id = /queued as (\S+)/.exec(String(info.response))![1]!;
      await waitForStatus(gw, id, ['deferred']);
      expect((await gw.stores.store.get(id))?.lastReply).toMatch(
        /4\.7\.5 MTA-STS policy of enforce\.test \(enforce\) names none of its MX hosts \(mx\.evil\.test\)/,
      );
    });
  });
});
