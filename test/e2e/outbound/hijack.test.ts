// Issue 18, hijack detection: a replayed burst from one account goes past its baseline; the
// account is flagged (metric, log), its domain's administrator gets a mail, it is suspended
// (550 5.7.1 at MAIL) while another account of the domain is not, and `mailmoat relay lift`
// (a real process) lets it send again.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtp, saslPlain } from '../../support/smtp-client.ts';
import { mailboxMessages, waitFor, type TestGateway } from '../../support/gateway.ts';
import { metricValue } from '../../../gateway/metrics.ts';
import { startHijackGateway } from './hijack-gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

describe('hijack detection', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startHijackGateway({ baselineWindows: 3, factor: 3, minimum: 4 });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  /** One authenticated session sending `n` messages to the same recipient; the MAIL replies. */
  async function burst(user: string, n: number): Promise<number[]> {
    const c = await RawSmtp.connect(gw.front.ports.listeners.sub!);
    try {
      await c.hello();
      await c.starttls();
      await c.cmd('EHLO client.test');
      expect((await c.cmd(`AUTH PLAIN ${saslPlain(user, 'pw')}`)).code).toBe(235);
      const codes: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await c.transaction(user, ['bob@elsewhere.test'], `From: ${user}\r\nTo: bob@elsewhere.test\r\nSubject: burst ${i}\r\n\r\nbuy now\r\n.\r\n`);
        codes.push(r[0]!.code);
        if (r[0]!.code !== 250) await c.cmd('RSET');
      }
      return codes;
    } finally {
      c.close();
    }
  }

  it('a burst past the baseline: flagged once, the admin is told, the account suspended until lifted', async () => {
    const before = await metricValue('mailmoat_outbound_hijack_flags_total', { measure: 'messages' });
    expect(await burst('alice@example.test', 4)).toEqual([250, 250, 250, 250]);
    expect(await metricValue('mailmoat_outbound_hijack_flags_total', { measure: 'messages' })).toBe(before);
    // The 5th goes past the floor: it is the one that trips the flag; what follows is refused.
    expect(await burst('alice@example.test', 3)).toEqual([250, 550, 550]);
    expect(await metricValue('mailmoat_outbound_hijack_flags_total', { measure: 'messages' })).toBe(before + 1);
    const c = await RawSmtp.connect(gw.front.ports.listeners.sub!);
    await c.hello();
    await c.starttls();
    await c.cmd('EHLO client.test');
    await c.cmd(`AUTH PLAIN ${saslPlain('alice@example.test', 'pw')}`);
    expect(await c.cmd('MAIL FROM:<alice@example.test>')).toMatchObject({
      code: 550,
      text: '5.7.1 Account alice@example.test is suspended for unusual sending; your mail administrator can lift it',
    });
    c.close();

    const notice = await waitFor(async () => (await mailboxMessages(gw, 'postmaster@example.test')).map((m) => m.toString('utf8').replace(/=\r?\n/g, ''))[0], {
      what: 'the notice to the domain admin',
      timeoutMs: 20_000,
    });
    expect(notice).toContain('Subject: Unusual sending by alice@example.test');
    expect(notice).toContain('The account alice@example.test sent 5 messages in 3600 s, against a baseline of 0.0.');
    expect(notice).toContain('mailmoat relay lift alice@example.test');

    // Another account of the same domain sends as usual.
    expect(await burst('erin@example.test', 1)).toEqual([250]);

    const { stdout } = await run(path.join(REPO, 'bin/mailmoat'), ['relay', 'lift', 'alice@example.test', '--config', gw.configFile]);
    expect(stdout).toBe('alice@example.test may send again\n');
    // Lifted: still above its baseline in this window, but flagged only once per window.
    expect(await burst('alice@example.test', 1)).toEqual([250]);
  });
});
