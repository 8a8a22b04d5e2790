import { describe, expect, it } from 'vitest';
import { buildDsn, statusOf } from '../../../gateway/delivery/dsn.ts';

describe('DSN', () => {
  it('takes the status from the reply, else from its code class', () => {
    expect(statusOf('h:25: 550 5.1.1 unknown user', 'failed')).toBe('5.1.1');
    expect(statusOf('h:25: 452 too many', 'delayed')).toBe('4.0.0');
    expect(statusOf('connect ECONNREFUSED 127.0.0.1:25', 'delayed')).toBe('4.0.0');
    expect(statusOf('message expired', 'failed')).toBe('5.0.0');
  });
  it('is a multipart/report with one block per recipient and returns only the headers', () => {
    const dsn = buildDsn({
      kind: 'failed',
      reportingMta: 'mx.gw.test',
      messageId: 'M1',
      sender: 'bob@s.test',
      arrivalDate: 0,
      now: 1000,
      recipients: [{ recipient: 'a@x.test', originalRecipient: 'rfc822;A@x.test', reply: '10.0.0.5:25: 550 5.1.1 no\r\nInjected: header' }],
      originalHeaders: Buffer.from('Subject: hi\r\nFrom: bob@s.test'),
    }).toString();
    expect(dsn).toMatch(/Content-Type: multipart\/report; report-type=delivery-status; boundary="dsn-[0-9a-f]+"/);
    expect(dsn).toContain(
      'Original-Recipient: rfc822;A@x.test\r\nFinal-Recipient: rfc822; a@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; 10.0.0.5',
    );
    expect(dsn).toContain('Content-Type: text/rfc822-headers');
    expect(dsn).not.toMatch(/^Injected: header/m); // a hostile reply cannot add a header line
    expect(dsn).toContain('Auto-Submitted: auto-replied');
  });
});
