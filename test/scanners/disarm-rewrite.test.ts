import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { disarmMessage, type DisarmReport } from '../../scanners/disarm-rewrite.ts';
import type { DisarmRewriteOptions } from '../../scanners/disarm-rewrite.ts';
import { walkMessage } from '../../scanners/mime-walk.ts';
import { attachment, buildMessage, collect, text, toStream, type PartSpec } from '../support/mime.ts';

async function rewrite(msg: Buffer, o: Partial<DisarmRewriteOptions> = {}): Promise<{ out: Buffer; report: DisarmReport }> {
  const sink = new PassThrough();
  const collected = collect(sink);
  collected.catch(() => undefined); // a failed rewrite destroys the sink; the rejection below is the one that counts
  const report = await disarmMessage(toStream(msg, 777), sink, o);
  return { out: await collected, report };
}

/** The raw bytes of each part between delimiter lines of the given boundary. */
function segments(msg: Buffer, boundary: string): string[] {
  return msg.toString('latin1').split(`--${boundary}`).slice(1, -1);
}

const BINARY = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256));
const PHISH = '<p>Dear customer,</p>\r\n<p><a href="https://evil.example/login">https://www.paypal.com/</a></p>\r\n<script>steal()</script>\r\n';

function mixedMessage(): Buffer {
  const alt: PartSpec = {
    multipart: 'alternative',
    boundary: 'ALT',
    parts: [text('Dear customer,\r\nplease log in.\r\n'), { contentType: 'text/html; charset=utf-8', encoding: 'quoted-printable', body: PHISH }],
  };
  return buildMessage({ multipart: 'mixed', boundary: 'MIX', parts: [alt, attachment('data.bin', BINARY)] });
}

describe('disarmMessage', () => {
  it('disarms the HTML part and keeps the text part and a binary attachment byte-identical', async () => {
    const msg = mixedMessage();
    const { out, report } = await rewrite(msg);
    expect(report.changed).toBe(true);
    expect(report.findings).toEqual([
      { part: '1.2', kind: 'script', detail: 'removed inline <script>' },
      { part: '1.2', kind: 'phishing', detail: 'link shows www.paypal.com but goes to evil.example' },
    ]);
    const [inText, inHtml] = segments(msg, 'ALT');
    const [outText, outHtml] = segments(out, 'ALT');
    expect(outText).toBe(inText);
    expect(outHtml).not.toBe(inHtml);
    expect(segments(out, 'MIX')[1]).toBe(segments(msg, 'MIX')[1]);
    // headers of the message itself are untouched
    const head = (b: Buffer) => b.toString('latin1').split('\r\n\r\n')[0];
    expect(head(out)).toBe(head(msg));

    const facts = await walkMessage(toStream(out));
    expect(facts.parts.map((p) => [p.id, p.contentType])).toEqual([
      ['1.1', 'text/plain'],
      ['1.2', 'text/html'],
      ['2', 'application/octet-stream'],
    ]);
    expect(facts.parts[2].size).toBe(BINARY.length);
    const html = Buffer.from(
      outHtml
        .split('\r\n\r\n')
        .slice(1)
        .join('\r\n\r\n')
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('href="https://evil.example');
    expect(html).toContain('[mailmoat: this link claims to go to www.paypal.com but really goes to evil.example]');
  });

  it('keeps an 8-bit latin-1 HTML part in its charset and transfer encoding', async () => {
    const body = Buffer.from('<p onclick="x()">Caf\xe9 cr\xe8me br\xfbl\xe9e</p>\r\n', 'latin1');
    const msg = buildMessage({
      multipart: 'mixed',
      boundary: 'B',
      parts: [text('x'), { contentType: 'text/html; charset=iso-8859-1', encoding: '8bit', body }],
    });
    const { out, report } = await rewrite(msg);
    expect(report.findings.map((f) => f.kind)).toEqual(['handler']);
    const part = segments(out, 'B')[1];
    expect(part).toContain('Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n');
    expect(part).toContain('<p>Caf\xe9 cr\xe8me br\xfbl\xe9e</p>\r\n');
  });

  it('re-encodes a base64 HTML part as base64', async () => {
    const msg = buildMessage({ contentType: 'text/html; charset=utf-8', encoding: 'base64', body: '<p>Grüße <img src="x" onerror="alert(1)"></p>' });
    const { out, report } = await rewrite(msg);
    expect(report.findings).toEqual([{ part: '1', kind: 'handler', detail: 'removed onerror on <img>' }]);
    const [head, body] = out.toString('latin1').split('\r\n\r\n');
    expect(head).toContain('Content-Transfer-Encoding: base64');
    expect(Buffer.from(body, 'base64').toString('utf8')).toBe('<p>Grüße <img src="x"></p>');
  });

  it('switches a multi-byte legacy charset it cannot encode to UTF-8, headers and <meta> alike', async () => {
    const sjis = Buffer.from([0x82, 0xb1, 0x82, 0xf1, 0x82, 0xc9, 0x82, 0xbf, 0x82, 0xcd]); // こんにちは
    const body = Buffer.concat([
      Buffer.from('<html><head><meta charset="shift_jis"></head><body><p>'),
      sjis,
      Buffer.from('</p><script>x()</script></body></html>'),
    ]);
    const msg = buildMessage({ contentType: 'text/html; charset=shift_jis', encoding: 'base64', body });
    const { out } = await rewrite(msg);
    const [head, b64] = out.toString('latin1').split('\r\n\r\n');
    expect(head).toMatch(/Content-Type: text\/html; charset=utf-8/);
    const html = Buffer.from(b64, 'base64').toString('utf8');
    expect(html).toContain('<meta charset="utf-8">');
    expect(html).toContain('こんにちは');
  });

  it('leaves a message without HTML byte-identical', async () => {
    const msg = buildMessage({ multipart: 'mixed', parts: [text('hello\r\n'), attachment('a.bin', BINARY)] });
    const { out, report } = await rewrite(msg);
    expect(report).toEqual({ changed: false, findings: [] });
    expect(out.equals(msg)).toBe(true);
  });

  it('leaves a clean HTML part byte-identical (no needless re-encoding)', async () => {
    const msg = buildMessage({
      multipart: 'alternative',
      parts: [text('hi'), { contentType: 'text/html', encoding: '7bit', body: '<p>Hello <b>there</b></p>\r\n' }],
    });
    const { out, report } = await rewrite(msg);
    expect(report.changed).toBe(false);
    expect(out.equals(msg)).toBe(true);
  });

  it('passes an HTML part over the size cap as it is and reports it', async () => {
    const big = `<script>x()</script><p>${'a'.repeat(5000)}</p>`;
    const msg = buildMessage({ multipart: 'mixed', parts: [text('x'), { contentType: 'text/html', encoding: '7bit', body: big }] });
    const { out, report } = await rewrite(msg, { maxHtmlPartBytes: 1000 });
    expect(report).toEqual({
      changed: false,
      findings: [{ part: '2', kind: 'unscannable-html', detail: 'HTML part larger than 1000 bytes was not disarmed' }],
    });
    expect(out.equals(msg)).toBe(true);
  });

  it('rejects a structure past the splitter bounds rather than writing half a message silently', async () => {
    const msg = buildMessage(text('x'), ['Subject: x', `X-Long: ${'a'.repeat(5000)}`]);
    await expect(rewrite(msg, { maxHeaderBytes: 1024 })).rejects.toThrow(/header/i);
  });
});
