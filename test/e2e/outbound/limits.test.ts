// Issue 18, limits that hold across sessions and machines: two gateways (two SMTP fronts with
// their own processes' state) share one Redis; the per-account and per-domain sending limits and
// the AUTH lockout count across both.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { RawSmtp, type Reply, saslPlain } from '../../support/smtp-client.ts';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { makeCert } from '../../support/certs.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { hashPassword } from '../../../gateway/passwords.ts';
import { metricValue } from '../../../gateway/metrics.ts';

const body = (from: string) => `From: ${from}\r\nTo: x@elsewhere.test\r\nSubject: limits\r\n\r\nhello\r\n.\r\n`;

describe('outbound limits across two gateways sharing Redis', () => {
  const gws: TestGateway[] = [];
  beforeAll(async () => {
    const cert = makeCert(['mx.gateway.test']);
    // The same key prefix for both: that is what makes them count together (their workers are
    // stopped: the two would otherwise take each other's scan jobs).
    const prefix = `tlimits${path.basename(cert.cert).length}${Date.now()}`;
    for (let i = 0; i < 2; i++) {
      const gw = await startTestGateway({
        domains: { 'example.test': {}, 'other.test': {} },
        overrides: {
          redis: { socket: inject('services').redisSocket, prefix },
          inline: { enabled: false },
          checks: { trusted: { networks: [] } },
          tls: { certificates: [cert] },
          submission: {
            listeners: [{ name: 'sub', port: 0, maxAuthFailures: 3 }],
            backend: { cacheTtlSec: 0 },
            limits: { perAccount: { messagesPerHour: 3 }, perDomain: { recipientsPerHour: 5 } },
            authLockout: { maxFailuresPerAccount: 3, maxFailuresPerIp: 5, windowSec: 60, lockoutSec: 1, maxLockoutSec: 10 },
          },
        },
      });
      await gw.stopWorkers();
      const accounts = openAccountStore(gw.stores.sql);
      for (const u of ['alice@example.test', 'carol@other.test', 'dave@other.test', 'erin@example.test']) {
        await accounts.create({ username: u, role: 'user', addresses: [u], passwordHash: await hashPassword('pw') });
      }
      gws.push(gw);
    }
  });
  afterAll(async () => {
    for (const gw of gws) await gw.stop();
  });

  /** One session on gateway `n`: AUTH, then the transaction (or only AUTH without `to`). */
  async function session(n: number, o: { user: string; pass?: string; to?: string[]; ip?: string }): Promise<{ auth: Reply; replies: Reply[] }> {
    const c = await RawSmtp.connect(gws[n]!.front.ports.listeners.sub!, o.ip ? { localAddress: o.ip } : {});
    try {
      await c.hello();
      await c.starttls();
      await c.cmd('EHLO client.test');
      const auth = await c.cmd(`AUTH PLAIN ${saslPlain(o.user, o.pass ?? 'pw')}`);
      const replies = o.to && auth.code === 235 ? await c.transaction(o.user, o.to, body(o.user)) : [];
      return { auth, replies };
    } finally {
      c.close();
    }
  }

  it('messages per hour per account: the 4th message, on either gateway, gets 450 4.7.1 naming the limit and when it resets', async () => {
    for (const n of [0, 1, 0])
      expect((await session(n, { user: 'alice@example.test', to: ['x@elsewhere.test'] })).replies.map((r) => r.code)).toEqual([250, 250, 354, 250]);
    const before = await metricValue('mailmoat_outbound_limited_total', { limit: 'account.messagesPerHour' });
    const [mail] = (await session(1, { user: 'alice@example.test', to: ['x@elsewhere.test'] })).replies;
    expect(mail!.code).toBe(450);
    expect(mail!.text).toMatch(
      /^4\.7\.1 Sending limit reached: account alice@example\.test: 3 messages per hour; it resets at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    const resets = Date.parse(/resets at (\S+)$/.exec(mail!.text)![1]!);
    expect(resets).toBeGreaterThan(Date.now() + 3_000_000);
    expect(await metricValue('mailmoat_outbound_limited_total', { limit: 'account.messagesPerHour' })).toBe(before + 1);
    // Another account is not affected.
    expect((await session(1, { user: 'erin@example.test', to: ['x@elsewhere.test'] })).replies[0]!.code).toBe(250);
  });

  it('recipients per hour per sender domain: two accounts of other.test share 5', async () => {
    const a = await session(0, { user: 'carol@other.test', to: ['1@elsewhere.test', '2@elsewhere.test', '3@elsewhere.test'] });
    expect(a.replies.map((r) => r.code)).toEqual([250, 250, 250, 250, 354, 250]);
    const b = await session(1, { user: 'dave@other.test', to: ['4@elsewhere.test', '5@elsewhere.test', '6@elsewhere.test'] });
    expect(b.replies.map((r) => r.code)).toEqual([250, 250, 250, 450, 354, 250]);
    expect(b.replies[3]!.text).toMatch(/^4\.7\.1 Sending limit reached: domain other\.test: 5 recipients per hour; it resets at /);
  });

  it('AUTH lockout per account across sessions and gateways: the right password is refused while locked; the next lockout is twice as long', async () => {
    const user = 'erin@example.test';
    const ip = (i: number) => `127.0.0.${100 + i}`;
    for (const [i, n] of [0, 1, 0].entries()) expect((await session(n, { user, pass: 'wrong', ip: ip(i) })).auth.code).toBe(535);
    const locked = await session(1, { user, ip: ip(3) });
    expect(locked.auth).toMatchObject({ code: 454, text: `4.7.0 Too many failed logins for ${user}; try again in 1 s` });
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await session(0, { user, ip: ip(4) })).auth.code).toBe(235);
    for (const [i, n] of [1, 0, 1].entries()) expect((await session(n, { user, pass: 'wrong', ip: ip(5 + i) })).auth.code).toBe(535);
    expect((await session(0, { user, ip: ip(8) })).auth).toMatchObject({ code: 454, text: `4.7.0 Too many failed logins for ${user}; try again in 2 s` });
  });

  it('AUTH lockout per client address: many usernames from one address', async () => {
    const ip = '127.0.0.90';
    const before = await metricValue('mailmoat_auth_lockouts_total', { by: 'ip' });
    for (let i = 0; i < 5; i++) expect((await session(i % 2, { user: `guess${i}@example.test`, pass: 'x', ip })).auth.code).toBe(535);
    expect((await session(0, { user: 'alice@example.test', ip })).auth).toMatchObject({
      code: 454,
      text: '4.7.0 Too many failed logins for your address 127.0.0.90; try again in 1 s',
    });
    expect(await metricValue('mailmoat_auth_lockouts_total', { by: 'ip' })).toBe(before + 1);
  });
});
