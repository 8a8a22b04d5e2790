// Issue 18, DKIM: `mailmoat dkim keygen` (a real process) writes the key into the data dir and
// prints the TXT record; a fake DNS serves it; mail submitted with AUTH arrives signed (after
// every change the gateway makes) and the signature verifies with mailauth at the sink; the
// outbound copy carries no inbound-only headers; inbound mail is not signed.
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimVerify } from 'mailauth';
import { RawSmtp, saslPlain } from '../../support/smtp-client.ts';
import { startFakeDns, type FakeDns } from '../../support/fake-dns.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../../support/gateway.ts';
import { makeCert } from '../../support/certs.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { hashPassword } from '../../../gateway/passwords.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

describe('DKIM signing of outbound mail', () => {
  let gw: TestGateway;
  let dns: FakeDns;
  let resolver: Resolver;
  beforeAll(async () => {
    dns = await startFakeDns({});
    resolver = new Resolver({ timeout: 1_000, tries: 1 });
    resolver.setServers([dns.address]);
    gw = await startTestGateway({
      domains: { 'example.test': {}, 'elsewhere.test': {} },
      overrides: {
        inline: { enabled: false },
        tls: { certificates: [makeCert(['mx.gateway.test'])] },
        checks: { trusted: { networks: [] }, helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false } },
        submission: { listeners: [{ name: 'sub', port: 0 }] },
      },
    });
    await openAccountStore(gw.stores.sql).create({
      username: 'alice@example.test',
      role: 'user',
      addresses: ['alice@example.test'],
      passwordHash: await hashPassword('pw'),
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await dns?.close();
  });

  it('keygen prints the TXT record; a submitted message arrives signed, verifies, and has no inbound-only headers', async () => {
    const { stdout } = await run(path.join(REPO, 'bin/mailmoat'), ['dkim', 'keygen', 'example.test', '--selector', 's1', '--config', gw.configFile]);
    const record = /^(s1\._domainkey\.example\.test)\. IN TXT \( (.+) \)$/m.exec(stdout);
    expect(record).not.toBeNull();
    const txt = [...record![2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
    expect(txt).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+$/);
    dns.set(record![1]!, 'TXT', [txt]);

    const c = await RawSmtp.connect(gw.front.ports.listeners.sub!);
    await c.hello();
    await c.starttls();
    await c.cmd('EHLO client.test');
    expect((await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'pw')}`)).code).toBe(235);
    const msg =
      'From: Alice <alice@example.test>\r\nTo: bob@elsewhere.test\r\nSubject: signed\r\nDate: Fri, 04 Dec 2026 23:00:00 +0000\r\nMessage-ID: <signed@example.test>\r\nX-Spam-Flag: NO\r\n\r\nhello, signed world\r\n.\r\n';
    const r = await c.transaction('alice@example.test', ['bob@elsewhere.test'], msg);
    c.close();
    expect(r[3]!.code).toBe(250);
    await waitForStatus(gw, /queued as (\S+)/.exec(r[3]!.text)![1]!, ['delivered']);
    const [copy] = await mailboxMessages(gw, 'bob@elsewhere.test');
    const text = copy!.toString('latin1');
    expect(text).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test;/);
    expect(text).not.toMatch(/^Authentication-Results:/im);
    expect(text).not.toMatch(/^X-Spam-/im);
    expect(text).toMatch(/^X-Mailmoat-ID: /m);
    const verified = await dkimVerify(copy!, {
      resolver: async (name: string, type: string) => (type === 'TXT' ? resolver.resolveTxt(name) : resolver.resolve(name, type as 'A')),
    });
    expect(verified.results.map((x) => [x.signingDomain, x.status.result])).toEqual([['example.test', 'pass']]);
  });

  it('inbound mail (the MX port) is not signed and keeps its Authentication-Results', async () => {
    const sent = await sendRaw(
      gw.smtpPort,
      { from: 'someone@remote.test', to: ['alice@example.test'] },
      'From: someone@remote.test\r\nTo: alice@example.test\r\nSubject: inbound\r\n\r\nhi\r\n',
    );
    await waitForStatus(gw, sent.id!, ['delivered']);
    const [copy] = await mailboxMessages(gw, 'alice@example.test');
    const text = copy!.toString('latin1');
    expect(text).not.toMatch(/^DKIM-Signature:/m);
    expect(text).toMatch(/^Authentication-Results: /m);
  });
});
