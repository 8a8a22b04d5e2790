// Issue 5, step 3: mail authentication (mailauth on the gateway's one resolver, here pointed at an
// in-process DNS server), our Authentication-Results, DMARC policy, and ARC sealing of the copy.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate, dkimSign } from 'mailauth';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { mailboxMessages, sendRaw, splitMessage, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { createResolver } from '../../gateway/dns/resolver.ts';
import { mailDate } from '../support/mime.ts';

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const der = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), txt: `v=DKIM1; k=rsa; p=${der}`.match(/.{1,250}/g) ?? [] };
}

const message = (from: string, subject: string, extra = '') =>
  `From: ${from}\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@x.test>\r\n${extra}MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello Alice.\r\n`;
const unfold = (head: string) => head.replace(/\r\n[ \t]+/g, ' ');

describe('mail authentication', () => {
  let dns: FakeDns;
  let gw: TestGateway;
  const dkim = keyPair();
  const arc = keyPair();

  beforeAll(async () => {
    dns = await startFakeDns({
      'sel._domainkey.bank.test': { TXT: [dkim.txt] },
      'bank.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
      '_dmarc.bank.test': { TXT: ['v=DMARC1; p=reject'] },
      '_dmarc.corp.test': { TXT: ['v=DMARC1; p=quarantine'] },
      'arc._domainkey.gateway.test': { TXT: [arc.txt] },
    });
    const keyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'mailmoat-arc-')), 'arc.pem');
    writeFileSync(keyFile, arc.privateKey);
    gw = await startTestGateway({
      overrides: {
        dns: { servers: [dns.address], timeoutMs: 2_000 },
        authentication: { arcSeal: { domain: 'gateway.test', selector: 'arc', keyFile } },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await dns?.close();
  });

  async function send(rcpt: string, raw: string | Buffer, from = 'news@bank.test') {
    const sent = await sendRaw(gw.smtpPort, { from, to: [rcpt] }, raw);
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['delivered', 'quarantined']);
    return (await gw.stores.store.get(sent.id!))!;
  }

  it('DKIM and DMARC pass: delivered with our Authentication-Results, forged ones in our name removed, ARC-sealed', async () => {
    const forged = 'Authentication-Results: MX.Gateway.Test; dkim=pass header.d=bank.test; dmarc=pass\r\nAuthentication-Results: mx.other.test; spf=pass\r\n';
    const body = message('Bank <news@bank.test>', 'statement', forged);
    const key = { signingDomain: 'bank.test', selector: 'sel', privateKey: dkim.privateKey };
    // mailauth 7 signs what `signatureData` lists; its types also require the single-key fields.
    const { signatures } = await dkimSign(body, { ...key, signatureData: [key] });
    expect(signatures).toMatch(/^DKIM-Signature: /);
    const row = await send('a1@example.test', signatures + body);
    expect(row.verdict).toBe('clean');
    expect(row.report?.auth).toMatchObject({
      status: 'checked',
      spf: { result: 'fail' },
      dkim: [{ result: 'pass', domain: 'bank.test', aligned: true }],
      dmarc: { result: 'pass', policy: 'reject' },
    });
    const [got] = await mailboxMessages(gw, 'a1@example.test');
    const head = unfold(splitMessage(got).head);
    const ours = head.match(/^Authentication-Results: mx\.gateway\.test;.*$/gim) ?? [];
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/dkim=pass .*header\.d=bank\.test/);
    expect(ours[0]).toMatch(/dmarc=pass/);
    expect(head).not.toMatch(/MX\.Gateway\.Test; dkim=pass/);
    expect(head).toContain('Authentication-Results: mx.other.test; spf=pass');
    // The ARC set on top verifies against the key in DNS: the next hop can trust what we saw.
    expect(head).toMatch(/^ARC-Seal: i=1; .*cv=none/m);
    const verified = await authenticate(got, {
      resolver: createResolver({ servers: [dns.address], timeoutMs: 2_000, tries: 1 }).forMailauth(),
      ip: '127.0.0.1',
      sender: 'x@gateway.test',
      mta: 'next.test',
      disableBimi: true,
    });
    expect(verified.arc && verified.arc.status.result).toBe('pass');
  });

  it('DMARC fails for a p=reject domain: spoofed, quarantined', async () => {
    const row = await send('a2@example.test', message('Bank <news@bank.test>', 'urgent'));
    expect(row.verdict).toBe('spoofed');
    expect(row.status).toBe('quarantined');
    expect(row.reason).toBe("claims to come from bank.test but fails that domain's DMARC check, and bank.test asks receivers to reject such mail");
    expect(row.report?.auth).toMatchObject({ spf: { result: 'fail', domain: 'bank.test' }, dmarc: { result: 'fail', policy: 'reject' } });
    expect(await mailboxMessages(gw, 'a2@example.test')).toHaveLength(0);
  });

  it('DMARC fails for a p=quarantine domain: the score goes up, the message goes on', async () => {
    const row = await send('a3@example.test', message('Corp <info@corp.test>', 'hello'), 'info@corp.test');
    expect(row.report?.score).toMatchObject({ auth: 3 });
    expect(row.report?.auth).toMatchObject({ dmarc: { result: 'fail', policy: 'quarantine' } });
    expect(row.status).toBe('delivered');
  });
});
