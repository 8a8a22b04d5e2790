// NUL bytes in DATA (checks.protocol.nulBytes): refused by default with 550 5.6.0 and nothing is
// delivered; with "strip" the downstream receives the message without them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtp } from '../support/smtp-client.ts';
import { mailboxMessages, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const NO_DNS_CHECKS = { helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false } };
const body = (subject: string) => `From: bob@good.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n\r\nbefore\0after\r\nnul at the end\0\r\n.\r\n`;

async function send(gw: TestGateway, subject: string) {
  const c = await RawSmtp.connect(gw.smtpPort);
  await c.hello();
  const replies = await c.transaction('bob@good.test', ['alice@example.test'], body(subject));
  c.close();
  return replies.at(-1)!;
}

describe('NUL bytes in a message', () => {
  const gateways: TestGateway[] = [];
  const gateway = async (nulBytes?: string) => {
    const gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: { checks: { ...NO_DNS_CHECKS, ...(nulBytes ? { protocol: { nulBytes } } : {}) } },
    });
    gateways.push(gw);
    return gw;
  };
  let byDefault: TestGateway;
  beforeAll(async () => {
    byDefault = await gateway();
  });
  afterAll(async () => {
    for (const gw of gateways) await gw.stop();
  });

  it('are refused by default: 550 5.6.0 naming the reason, nothing queued or delivered', async () => {
    const r = await send(byDefault, 'with nul');
    expect(`${r.code} ${r.text}`).toBe('550 5.6.0 Error: message contains NUL bytes, which SMTP does not carry (RFC 2045 section 2.8)');
    expect(await byDefault.stores.store.countByStatus()).toEqual({});
    expect(await mailboxMessages(byDefault, 'alice@example.test')).toEqual([]);
  });

  it('with nulBytes: strip, the downstream receives the message without them', async () => {
    const gw = await gateway('strip');
    const r = await send(gw, 'stripped');
    expect(r.code).toBe(250);
    await waitForStatus(gw, /queued as (\S+)/.exec(r.text)![1]!, ['delivered']);
    const [m] = await mailboxMessages(gw, 'alice@example.test');
    expect(m!.includes(0)).toBe(false);
    expect(m!.toString('latin1')).toContain('beforeafter\r\nnul at the end\r\n');
  });
});
