// One message must not stall the gateway: an HTML part of 100,000 nested <div> (1.1 MB, under
// every size limit) took over 60 s of the event loop in the text scan's URL extraction, while
// SMTP greetings, /healthz and job-lock renewals waited. Now the nesting bound stops it before
// any parser runs (mime.maxHtmlDepth), and when the bounds are lifted, the analysis runs in a
// worker thread whose time budget (scan.analysisTimeMs) ends it — while other mail flows.
import { afterEach, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthServer } from '../../gateway/health.ts';
import { silentLogger } from '../../gateway/log.ts';
import { buildMessage, mailDate, text } from '../support/mime.ts';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const LEVELS = 100_000;
const headers = (subject: string) => ['From: a@sender.test', 'To: deep@example.test', `Subject: ${subject}`, `Date: ${mailDate()}`, 'MIME-Version: 1.0'];
const nestedDivMessage = () =>
  buildMessage(
    {
      contentType: 'text/html; charset=utf-8',
      encoding: '7bit',
      body: `<html><body>\r\n${'<div>'.repeat(LEVELS)}x${'</div>'.repeat(LEVELS)}\r\n</body></html>\r\n`,
    },
    headers('deep'),
  );
const smtp = { listen: { host: '127.0.0.1', port: 0 }, maxMessageBytes: 3_000_000, maxRecipients: 5 };

let gw: TestGateway | undefined;
let health: HealthServer | undefined;
afterEach(async () => {
  await health?.close();
  await gw?.stop();
  gw = health = undefined;
});

describe('a deeply nested HTML part', () => {
  it('is quarantined as unscannable by the nesting bound, without being parsed', async () => {
    gw = await startTestGateway({ overrides: { smtp } });
    const raw = nestedDivMessage();
    expect(raw.length).toBeGreaterThan(1_000_000);
    const sent = await sendRaw(gw.smtpPort, { from: 'a@sender.test', to: ['deep@example.test'] }, raw);
    expect(sent.code).toBe(250);
    expect(await waitForStatus(gw, sent.id!, ['quarantined', 'delivered'])).toBe('quarantined');
    const row = (await gw.stores.store.get(sent.id!))!;
    expect(row.verdict).toBe('unscannable');
    expect(row.reason).toBe('the HTML of message part 1 could not be checked: HTML nested deeper than 512 elements');
  });

  it('with the bounds lifted: its analysis ends at the time budget, and meanwhile other mail is accepted and delivered', async () => {
    const unbounded = { maxHtmlDepth: 10_000_000, maxHtmlElements: 10_000_000 };
    gw = await startTestGateway({
      overrides: { smtp, mime: unbounded, scan: { retryDelayMs: 500, maxRetryDelayMs: 2_000, maxAttempts: 10, analysisTimeMs: 3_000 } },
    });
    const queue = gw.queue;
    health = await startHealthServer({
      listen: { host: '127.0.0.1', port: 0 },
      role: 'start',
      checks: { redis: () => queue.counts() },
      logger: silentLogger(),
    });

    const deep = await sendRaw(gw.smtpPort, { from: 'a@sender.test', to: ['deep@example.test'] }, nestedDivMessage());
    expect(deep.code).toBe(250);
    // While the deep message is analysed: a new session is greeted and gets its 250, /healthz answers.
    const other = await sendRaw(gw.smtpPort, { from: 'b@sender.test', to: ['other@example.test'] }, buildMessage(text('hello\r\n'), headers('other')));
    expect(other.code).toBe(250);
    const answer = await fetch(`http://127.0.0.1:${health.port}/healthz`, { signal: AbortSignal.timeout(5_000) });
    expect(answer.status).toBe(200);

    expect(await waitForStatus(gw, other.id!, ['delivered', 'quarantined'])).toBe('delivered');
    expect(await mailboxMessages(gw, 'other@example.test')).toHaveLength(1);
    expect(await waitForStatus(gw, deep.id!, ['quarantined', 'delivered'])).toBe('quarantined');
    const row = (await gw.stores.store.get(deep.id!))!;
    expect(row.verdict).toBe('unscannable');
    expect(row.reason).toBe('HTML not analysed: analysis time limit (3000 ms)');
  }, 60_000);
});
