// Slow clients over real sockets: a byte every 100 ms resets an idle timeout forever, so the front
// line has deadlines per command, for DATA (minimum rate and total) and per session. Small
// deadlines are configured; each client talks from its own loopback address. Also: the per-client
// session cap binds PROXY-protocol clients by their real address, even with the balancer trusted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtp, type Reply } from '../support/smtp-client.ts';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { mailboxMessages, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const TIMEOUT = '4.4.2 mx.gateway.test Error: timeout exceeded';
const ip = (n: number) => `127.0.0.${n}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `text` one byte every `everyMs` until the server answers or closes; returns the reply and how long it took. */
async function trickle(c: RawSmtp, text: string, everyMs = 100): Promise<{ reply: Reply; ms: number; sent: number }> {
  const started = Date.now();
  const answer = c.reply(10_000);
  let sent = 0;
  let answered = false;
  void answer.then(
    () => (answered = true),
    () => (answered = true),
  );
  while (!answered && !c.closed && sent < text.length) {
    c.write(text[sent++]!);
    await sleep(everyMs);
  }
  return { reply: await answer, ms: Date.now() - started, sent };
}

describe('session deadlines', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        smtp: {
          listen: { host: '127.0.0.1', port: 0 },
          maxMessageBytes: 200_000,
          deadlines: { commandMs: 800, dataMinBytesPerSec: 500, dataMs: 2_000, sessionMs: 3_000 },
        },
        proxy: { from: ['127.0.0.1'] },
        checks: { helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false }, limits: { connectionsPerClient: 2 } },
      },
    });
  });
  afterAll(() => gw?.stop());

  it.concurrent('a command trickled one byte per 100 ms after EHLO is cut off with 421 at the command deadline', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(60) });
    await c.hello();
    const { reply, ms, sent } = await trickle(c, 'MAIL FROM:<bob@good.test>\r\n');
    expect(`${reply.code} ${reply.text}`).toBe(`421 ${TIMEOUT}`);
    expect(sent).toBeLessThan(20); // long before the line was complete
    expect(ms).toBeGreaterThanOrEqual(700);
    await sleep(100);
    expect(c.closed).toBe(true);
  });

  it.concurrent('a message trickled one byte per 100 ms after 354 is cut off with 421 (minimum data rate)', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(61) });
    await c.hello();
    expect((await c.cmd('MAIL FROM:<bob@good.test>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<alice@example.test>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    const { reply, sent } = await trickle(c, `Subject: slow\r\n\r\n${'x'.repeat(100)}\r\n.\r\n`);
    expect(`${reply.code} ${reply.text}`).toBe(`421 ${TIMEOUT}`);
    expect(sent).toBeLessThan(20);
    await sleep(100);
    expect(c.closed).toBe(true);
    // the part that came is not kept (the client still has the message and will send it again)
    const incoming = path.join(gw.config.dataDir, 'spool', 'incoming');
    await waitFor(async () => ((await readdir(incoming)).length === 0 ? true : undefined), { timeoutMs: 3_000, what: 'spool/incoming empty' });
  });

  it.concurrent('a message sent fast enough but never ended is cut off at the total DATA deadline', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(62) });
    await c.hello();
    await c.cmd('MAIL FROM:<bob@good.test>');
    await c.cmd('RCPT TO:<alice@example.test>');
    expect((await c.cmd('DATA')).code).toBe(354);
    c.write('Subject: endless\r\n\r\n');
    const started = Date.now();
    const answer = c.reply(10_000);
    let answered = false;
    void answer.finally(() => (answered = true)).catch(() => {});
    while (!answered && !c.closed) {
      c.write(`${'y'.repeat(998)}\r\n`); // 10 KB/s, far above the minimum rate
      await sleep(100);
    }
    expect(`${(await answer).code} ${(await answer).text}`).toBe(`421 ${TIMEOUT}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_800);
  });

  it.concurrent('a session of quick commands ends at the session deadline, between commands', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(63) });
    await c.hello();
    const codes: number[] = [];
    for (let i = 0; i < 40; i++) {
      // the 421 may come while we sleep: it is then the next reply read
      const r = await c.cmd('NOOP').catch(() => undefined);
      if (!r) break;
      codes.push(r.code);
      if (r.code === 421) {
        expect(r.text).toBe(TIMEOUT);
        break;
      }
      await sleep(200);
    }
    expect(codes.at(-1)).toBe(421);
    expect(codes.filter((x) => x === 250).length).toBeGreaterThanOrEqual(8); // ~3 s of NOOPs first
  });

  it.concurrent('a slow but honest client is not cut off: pauses under the command deadline, DATA longer than it at a fair rate', async () => {
    const c = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(64) });
    await c.hello();
    await sleep(300);
    expect((await c.cmd('MAIL FROM:<bob@good.test>')).code).toBe(250);
    await sleep(300);
    expect((await c.cmd('RCPT TO:<alice@example.test>')).code).toBe(250);
    await sleep(300);
    expect((await c.cmd('DATA')).code).toBe(354);
    c.write('Subject: honest and slow\r\n\r\n');
    for (let i = 0; i < 6; i++) {
      await sleep(200); // 1.2 s in all: past the 800 ms command deadline, at ~5 KB/s
      c.write(`${String(i).repeat(998)}\r\n`);
    }
    c.write('.\r\n');
    const done = await c.reply();
    expect(done.code).toBe(250);
    expect((await c.cmd('QUIT')).code).toBe(221);
    const id = /queued as (\S+)/.exec(done.text)![1]!;
    await waitForStatus(gw, id, ['delivered']);
    const [m] = await mailboxMessages(gw, 'alice@example.test');
    expect(m!.toString('latin1')).toContain('5'.repeat(998));
  });

  it.concurrent('PROXY clients are capped by their real address, though the balancer is on a trusted network', async () => {
    const header = (client: string, port: number) => `PROXY TCP4 ${client} 127.0.0.1 ${port} 25\r\n`;
    const a = await RawSmtp.connect(gw.smtpPort, { proxy: header('192.0.2.77', 40001) });
    const b = await RawSmtp.connect(gw.smtpPort, { proxy: header('192.0.2.77', 40002) });
    expect((await a.reply()).code).toBe(220);
    expect((await b.reply()).code).toBe(220);
    const c = await RawSmtp.connect(gw.smtpPort, { proxy: header('192.0.2.77', 40003) });
    expect(await c.reply()).toMatchObject({
      code: 421,
      text: '4.7.0 Error: too many connections from [192.0.2.77] (at most 2 at a time), please try again later',
    });
    const other = await RawSmtp.connect(gw.smtpPort, { proxy: header('192.0.2.78', 40004) });
    expect((await other.reply()).code).toBe(220);
    for (const x of [a, b, c, other]) x.close();
  });

  it.concurrent('PROXY UNKNOWN (no client address) is not trusted as the balancer is: capped under its address', async () => {
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await RawSmtp.connect(gw.smtpPort, { proxy: 'PROXY UNKNOWN\r\n' }));
    const replies = await Promise.all(sessions.map((s) => s.reply()));
    expect(replies.map((r) => r.code)).toEqual([220, 220, 421]);
    expect(replies[2]!.text).toBe('4.7.0 Error: too many connections from [127.0.0.1] (at most 2 at a time), please try again later');
    for (const x of sessions) x.close();
  });
});

describe('under load (Postfix stress)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: { 'example.test': {} },
      overrides: {
        smtp: {
          listen: { host: '127.0.0.1', port: 0 },
          maxClients: 4,
          deadlines: { commandMs: 5_000, commandUnderLoadMs: 400, underLoadAt: 0.75 },
        },
        checks: { helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false } },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('the command deadline shrinks while the listener is nearly full, and is back to normal once it is not', async () => {
    const idle = [await RawSmtp.connect(gw.smtpPort, { localAddress: ip(70) }), await RawSmtp.connect(gw.smtpPort, { localAddress: ip(71) })];
    for (const c of idle) expect((await c.reply()).code).toBe(220);
    const slow = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(72) });
    await slow.hello(); // 3 of 4 sessions: under load from now on
    const { reply, ms } = await trickle(slow, 'MAIL FROM:<bob@good.test>\r\n');
    expect(`${reply.code} ${reply.text}`).toBe(`421 ${TIMEOUT}`);
    expect(ms).toBeLessThan(2_000);
    for (const c of idle) c.close();
    await sleep(300);
    const calm = await RawSmtp.connect(gw.smtpPort, { localAddress: ip(73) });
    await calm.hello();
    await sleep(800); // twice the stressed deadline, far below the normal one
    expect((await calm.cmd('NOOP')).code).toBe(250);
    calm.close();
  });
});
