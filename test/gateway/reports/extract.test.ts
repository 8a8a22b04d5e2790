// Extracting the reported message(s) from what mail clients send to reportspam@ (issue 8).
import { describe, expect, it } from 'vitest';
import { extractReported, inlineForward } from '../../../gateway/reports/extract.ts';
import { buildMessage, text, html, attachment } from '../../support/mime.ts';

const spam = (n: number) =>
  Buffer.from(
    `Received: from bad.example (bad.example [192.0.2.66])\r\nFrom: "Winner" <winner${n}@lottery.example>\r\nTo: alice@example.test\r\nSubject: You won ${n}\r\nMessage-ID: <spam${n}@lottery.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nClaim your prize number ${n} now!\r\n`,
  );
const reporterHeaders = [
  'From: Alice <alice@example.test>',
  'To: reportspam@example.test',
  'Subject: Fwd: spam',
  'Date: Mon, 23 Nov 2026 11:00:00 +0000',
  'MIME-Version: 1.0',
];
const o = { reporter: 'alice@example.test', maxMessages: 10, maxBytes: 100_000 };
const eml = (raw: Buffer, name: string | null, encoding: '7bit' | 'base64' = '7bit', contentType = 'message/rfc822') => ({
  contentType,
  disposition: name ? `attachment; filename="${name}"` : 'inline',
  encoding,
  body: raw,
});

describe('extractReported', () => {
  it('takes a message/rfc822 attachment byte for byte', async () => {
    const report = buildMessage({ multipart: 'mixed', parts: [text('spam, see attached'), eml(spam(1), 'spam.eml')] }, reporterHeaders);
    const r = await extractReported(report, o);
    expect(r.notExtracted).toEqual([]);
    expect(r.messages).toHaveLength(1);
    expect(r.messages[0]!.how).toBe('attachment');
    expect(r.messages[0]!.label).toBe('attachment 1 (spam.eml)');
    expect(r.messages[0]!.raw.equals(spam(1))).toBe(true);
  });

  it('takes several attachments, inline-disposition and base64-encoded ones and .eml files sent as octet-stream', async () => {
    const report = buildMessage(
      {
        multipart: 'mixed',
        parts: [text('three of them'), eml(spam(1), 'a.eml'), eml(spam(2), null), eml(spam(3), null, 'base64'), attachment('d.eml', spam(4))],
      },
      reporterHeaders,
    );
    const r = await extractReported(report, o);
    expect(r.messages.map((m) => m.raw.toString())).toEqual([1, 2, 3, 4].map((n) => spam(n).toString()));
    expect(r.notExtracted).toEqual([]);
  });

  it('keeps an attached "message" that is none as not extracted, and stops at maxMessages', async () => {
    const report = buildMessage(
      { multipart: 'mixed', parts: [eml(Buffer.from('just some words\r\n'), 'x.eml'), eml(spam(1), 'a.eml'), eml(spam(2), 'b.eml')] },
      reporterHeaders,
    );
    const r = await extractReported(report, { ...o, maxMessages: 1 });
    expect(r.messages).toHaveLength(1);
    expect(r.notExtracted.map((x) => x.reason)).toEqual([
      expect.stringContaining('not a message: it does not start with mail headers'),
      'more than 1 messages in one report',
    ]);
  });

  it('rebuilds an inline forward (Gmail, Outlook, Thunderbird, Apple Mail markers) from its pasted headers', async () => {
    for (const marker of [
      '---------- Forwarded message ---------',
      '-----Original Message-----',
      '-------- Forwarded Message --------',
      'Begin forwarded message:',
    ]) {
      const body = `Another one for you.\r\n\r\n${marker}\r\nFrom: Winner <winner@lottery.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nSubject: You won\r\nTo: alice@example.test\r\n\r\nClaim your prize now!\r\nCheap pills.\r\n`;
      const r = await extractReported(buildMessage(text(body), reporterHeaders), o);
      expect(r.notExtracted, marker).toEqual([]);
      expect(r.messages[0]!.how).toBe('inline');
      const out = r.messages[0]!.raw.toString();
      expect(out).toMatch(/^From: Winner <winner@lottery.example>\r\nDate: .*\r\nSubject: You won\r\nTo: alice@example.test\r\n\r\nClaim your prize now!/);
    }
  });

  it('takes full headers pasted at the top of the body (folded, quoted with "> ")', async () => {
    const pasted = `> Received: from bad.example (bad.example [192.0.2.66])\r\n>   by mx.example.test; Mon, 23 Nov 2026 10:00:00 +0000\r\n> From: winner@lottery.example\r\n> Subject: You won\r\n>\r\n> Claim it.\r\n`;
    const r = await extractReported(buildMessage(text(pasted), reporterHeaders), o);
    expect(r.messages).toHaveLength(1);
    expect(r.messages[0]!.raw.toString()).toBe(
      'Received: from bad.example (bad.example [192.0.2.66])\r\n  by mx.example.test; Mon, 23 Nov 2026 10:00:00 +0000\r\nFrom: winner@lottery.example\r\nSubject: You won\r\n\r\nClaim it.\r\n',
    );
  });

  it('says so, without guessing, when a forward marker has no readable headers', async () => {
    const r = await extractReported(buildMessage(text('look:\r\n---------- Forwarded message ---------\r\nhey you won\r\nclaim it\r\n'), reporterHeaders), o);
    expect(r.messages).toEqual([]);
    expect(r.notExtracted[0]!.reason).toContain('forwarded headers could not be read');
  });

  it('says so for an HTML-only inline forward', async () => {
    const r = await extractReported(buildMessage(html('<p>---------- Forwarded message ---------<br>From: <b>x@y.example</b></p>'), reporterHeaders), o);
    expect(r.messages).toEqual([]);
    expect(r.notExtracted[0]!.reason).toContain('HTML-only');
  });

  it('takes a redirected original (Resent-* headers) without the Resent block and our trace headers', async () => {
    const redirected = Buffer.concat([
      Buffer.from(
        'Received-SPF: pass (mx.gateway.test: domain of alice@example.test designates 127.0.0.1 as permitted sender)\r\n client-ip=127.0.0.1;\r\nResent-From: alice@example.test\r\nResent-To: reportspam@example.test\r\nResent-Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n',
      ),
      spam(7),
    ]);
    const r = await extractReported(redirected, o);
    expect(r.messages.map((m) => [m.how, m.raw.toString()])).toEqual([['resent', spam(7).toString()]]);
  });

  it('takes a bounced original (no Resent-*, the original From kept) as the whole message', async () => {
    const r = await extractReported(spam(8), o);
    expect(r.messages.map((m) => m.how)).toEqual(['whole']);
  });

  it('finds nothing in a plain note from the reporter', async () => {
    const r = await extractReported(buildMessage(text('I got a lot of spam today.\r\n'), reporterHeaders), o);
    expect(r.messages).toEqual([]);
    expect(r.notExtracted[0]!.reason).toContain('no reported message found');
  });
});

describe('inlineForward', () => {
  it('returns none for text without a forward', () => expect(inlineForward('hello\nthere\n')).toEqual({ kind: 'none' }));
  it('accepts Outlook bold-style header names', () => {
    const r = inlineForward('-----Original Message-----\n*From:* x@y.example\n*Subject:* hi\n\nbody\n');
    expect(r.kind === 'message' && r.raw.toString()).toBe('From: x@y.example\r\nSubject: hi\r\n\r\nbody\r\n');
  });
});

describe('extractReported on a report past the MIME parser bounds', () => {
  it('records "not extracted" for a part whose header block exceeds the limit, instead of rejecting', async () => {
    const huge = `X-Filler: ${'a'.repeat(300 * 1024)}`;
    const report = Buffer.from(
      `${reporterHeaders.join('\r\n')}\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n${huge}\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n`,
    );
    const r = await extractReported(report, o);
    expect(r.messages).toEqual([]);
    expect(r.notExtracted).toEqual([{ label: 'report', reason: 'cannot be parsed: Max header size for a MIME node exceeded' }]);
  });

  it('records "not extracted" for a report with more MIME parts than the parser allows', async () => {
    const parts = Array.from({ length: 1_100 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
    const report = Buffer.from(`${reporterHeaders.join('\r\n')}\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts}--b--\r\n`);
    const r = await extractReported(report, o);
    expect(r.messages).toEqual([]);
    expect(r.notExtracted).toEqual([{ label: 'report', reason: 'cannot be parsed: Max allowed child nodes exceeded' }]);
  });
});
