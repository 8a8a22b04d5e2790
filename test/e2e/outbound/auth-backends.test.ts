// Issue 18, auth backends: mailbox credentials through a real (private) Dovecot's auth socket,
// remembered for a while, and a backend that is down answers 454 4.7.0, never a pass; sender
// ownership by the mailbox's address or domain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtp, saslPlain } from '../../support/smtp-client.ts';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { startDovecot, type PrivateDovecot } from '../../support/dovecot.ts';
import { makeCert } from '../../support/certs.ts';

describe('AUTH through Dovecot', () => {
  let gw: TestGateway;
  let dovecot: PrivateDovecot;
  beforeAll(async () => {
    dovecot = await startDovecot({ 'bob@c.test': 'mailbox pw', 'carol@c.test': 'carol pw' });
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        tls: { certificates: [makeCert(['mx.gateway.test'])] },
        submission: {
          listeners: [{ name: 'sub', port: 0 }],
          backend: { type: 'dovecot', socket: dovecot.socket, timeoutMs: 10_000, cacheTtlSec: 60 },
          senders: { ownership: 'domain', checkFromHeader: true },
        },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await dovecot?.stop();
  });

  const session = async (user: string, pass: string, sender?: string) => {
    const c = await RawSmtp.connect(gw.front.ports.listeners.sub!);
    await c.hello();
    await c.starttls();
    await c.cmd('EHLO client.test');
    const auth = await c.cmd(`AUTH PLAIN ${saslPlain(user, pass)}`);
    const mail = sender ? await c.cmd(`MAIL FROM:<${sender}>`) : undefined;
    c.close();
    return { auth, mail };
  };

  it('the mailbox password logs in (235); a wrong one gets 535 5.7.8', async () => {
    expect((await session('bob@c.test', 'mailbox pw')).auth.code).toBe(235);
    expect(await session('bob@c.test', 'wrong').then((r) => r.auth)).toMatchObject({ code: 535, text: '5.7.8 Authentication credentials invalid' });
    expect((await session('nobody@c.test', 'x')).auth.code).toBe(535);
  });

  it('ownership "domain": any sender of the mailbox’s own domain, no other (553 5.7.1)', async () => {
    expect((await session('bob@c.test', 'mailbox pw', 'sales@c.test')).mail!.code).toBe(250);
    expect(await session('bob@c.test', 'mailbox pw', 'ceo@bank.test').then((r) => r.mail)).toMatchObject({
      code: 553,
      text: '5.7.1 <ceo@bank.test>: Sender address rejected: not owned by user bob@c.test',
    });
  });

  it('checkFromHeader: a From header of another domain (or a second From) is refused at the end of DATA with 553 5.7.1', async () => {
    const send = async (headers: string) => {
      const c = await RawSmtp.connect(gw.front.ports.listeners.sub!);
      await c.hello();
      await c.starttls();
      await c.cmd('EHLO client.test');
      await c.cmd(`AUTH PLAIN ${saslPlain('bob@c.test', 'mailbox pw')}`);
      const r = await c.transaction('bob@c.test', ['carol@example.test'], `${headers}Subject: hi\r\n\r\nhello\r\n.\r\n`);
      c.close();
      return r[3]!;
    };
    expect((await send('From: "Bob" <bob@c.test>\r\n')).code).toBe(250);
    expect(await send('From: "Bob" <ceo@bank.test>\r\n')).toMatchObject({
      code: 553,
      text: '5.7.1 From header address ceo@bank.test is not owned by user bob@c.test',
    });
    expect((await send('From: bob@c.test\r\nFrom: ceo@bank.test\r\n')).code).toBe(553);
  });

  it('Dovecot down: remembered logins still work, anything else is 454 4.7.0 (never 235)', async () => {
    expect((await session('carol@c.test', 'carol pw')).auth.code).toBe(235); // now cached
    await dovecot.stop();
    expect((await session('carol@c.test', 'carol pw')).auth.code).toBe(235);
    expect(await session('bob@c.test', 'not cached').then((r) => r.auth)).toMatchObject({ code: 454, text: '4.7.0 Temporary authentication failure' });
    expect((await session('carol@c.test', 'other pw')).auth.code).toBe(454);
  });
});
