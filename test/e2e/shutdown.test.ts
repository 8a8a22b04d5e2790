// Graceful shutdown: on SIGTERM the SMTP front answers 421 to new connections and new
// transactions, lets the transaction in flight finish (it gets its 250), and then closes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { RawSmtp } from '../support/smtp-client.ts';

describe('shutting down the SMTP front', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('refuses new work with 421 4.3.2 and lets the transaction in flight finish', async () => {
    const inFlight = await RawSmtp.connect(gw.smtpPort);
    await inFlight.hello();
    expect((await inFlight.cmd('MAIL FROM:<bob@sender.test>')).code).toBe(250);
    expect((await inFlight.cmd('RCPT TO:<alice@example.test>')).code).toBe(250);
    expect((await inFlight.cmd('DATA')).code).toBe(354);
    inFlight.write('Subject: last one\r\n\r\nsent while the gateway stops\r\n');

    const closed = gw.front.close(10_000);
    await new Promise((r) => setTimeout(r, 200));
    const late = await RawSmtp.connect(gw.smtpPort, { greeting: false });
    const greeting = await late.reply();
    expect(`${greeting.code} ${greeting.text}`).toBe('421 4.3.2 Service shutting down, please try again later');

    inFlight.write('.\r\n');
    const done = await inFlight.reply();
    expect(done.code).toBe(250);
    const id = /queued as (\S+)/.exec(done.text)![1];
    const next = await inFlight.cmd('MAIL FROM:<bob@sender.test>');
    expect(`${next.code} ${next.text}`).toBe('421 4.3.2 Service shutting down, please try again later');
    await closed;
    await waitForStatus(gw, id, ['delivered']);
  });
});
