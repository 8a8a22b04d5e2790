// Issue 18 point 4, "or whose outbound spam score rises": an account whose submitted mail, scanned
// by the real spamd, turns to spam (a replayed GTUBE burst) is flagged from the scan side: metric,
// the domain admin told, suspended (550 5.7.1 at MAIL); an account sending clean mail is not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtp, saslPlain } from '../../support/smtp-client.ts';
import { mailboxMessages, waitFor, waitForStatus, type TestGateway } from '../../support/gateway.ts';
import { metricValue } from '../../../gateway/metrics.ts';
import { startHijackGateway } from './hijack-gateway.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

describe('hijack detection: a rising outbound spam share', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // The volume measures stay quiet (minimum 100): only the spam share can flag here.
    gw = await startHijackGateway({ minimum: 100, spamShare: 0.5, spamMinimum: 3 });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  /** One authenticated session; each body sent as one message; the MAIL replies and the queued ids. */
  async function send(user: string, bodies: string[]): Promise<{ codes: number[]; ids: string[] }> {
    const c = await RawSmtp.connect(gw.front.ports.listeners.sub!);
    try {
      await c.hello();
      await c.starttls();
      await c.cmd('EHLO client.test');
      expect((await c.cmd(`AUTH PLAIN ${saslPlain(user, 'pw')}`)).code).toBe(235);
      const codes: number[] = [];
      const ids: string[] = [];
      for (const [i, body] of bodies.entries()) {
        const r = await c.transaction(
          user,
          ['bob@elsewhere.test'],
          `From: ${user}\r\nTo: bob@elsewhere.test\r\nSubject: note ${i}\r\nMessage-ID: <${user.replace(/\W/g, '')}${i}${Date.now()}@example.test>\r\n\r\n${body}\r\n.\r\n`,
        );
        codes.push(r[0]!.code);
        const id = /queued as (\S+)/.exec(r.at(-1)!.text)?.[1];
        if (id) ids.push(id);
        if (r[0]!.code !== 250) await c.cmd('RSET');
      }
      return { codes, ids };
    } finally {
      c.close();
    }
  }
  const settled = (ids: string[]) => Promise.all(ids.map((id) => waitForStatus(gw, id, ['delivered', 'quarantined', 'failed', 'deferred'])));
  /** One more plain message: its MAIL reply (scanned before going on, so the counts stay in order). */
  const mailCode = async (user: string) => {
    const r = await send(user, ['hello again']);
    await settled(r.ids);
    return r.codes[0];
  };

  it('GTUBE from a hijacked account: flagged once the spam share passes the policy, suspended, the admin told; a clean sender is not', async () => {
    const before = await metricValue('mailmoat_outbound_hijack_flags_total', { measure: 'spam' });
    const clean = await send('erin@example.test', ['lunch at noon?', 'minutes attached', 'see you', 'thanks']);
    const ham = await send('alice@example.test', ['the usual report', 'hello mum']);
    await settled([...clean.ids, ...ham.ids]);
    // Two spam of four scanned: 50 %, but below the minimum of three.
    const first = await send('alice@example.test', [GTUBE, GTUBE]);
    await settled(first.ids);
    expect(await metricValue('mailmoat_outbound_hijack_flags_total', { measure: 'spam' })).toBe(before);
    expect(await mailCode('alice@example.test')).toBe(250);
    // The third spam trips it: 3 spam of 6 scanned (2 ham, 2 spam, 1 ham, 1 spam) = 50 %.
    const second = await send('alice@example.test', [GTUBE]);
    expect(second.codes).toEqual([250]);
    await settled(second.ids);
    await waitFor(async () => (await metricValue('mailmoat_outbound_hijack_flags_total', { measure: 'spam' })) === before + 1 || undefined, {
      what: 'the spam flag',
    });
    expect(await mailCode('alice@example.test')).toBe(550);
    expect(await mailCode('erin@example.test')).toBe(250);
    const notice = await waitFor(async () => (await mailboxMessages(gw, 'postmaster@example.test')).map((m) => m.toString('utf8').replace(/=\r?\n/g, ''))[0], {
      what: 'the notice to the domain admin',
      timeoutMs: 20_000,
    });
    expect(notice).toContain('Subject: Unusual sending by alice@example.test');
    expect(notice).toMatch(/The account alice@example\.test sent 3 spam of 6 messages scanned in 3600 s \(50 %\)/);
  });
});
