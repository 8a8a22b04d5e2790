// Display helpers, the HTML sanitiser, and the SMTP connection test against a real SMTP server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { decodeMimeWords, displayText } from '../../quarantine-ui/lib/text.ts';
import { extractLinks, sanitizeForPreview } from '../../quarantine-ui/lib/preview.ts';
import { smtpConnectionTest } from '../../gateway/delivery/smtp-test.ts';
import { startMailbox, type Mailbox } from '../../gateway/demo/mailbox.ts';

describe('display text', () => {
  it('decodes encoded words and shows bidi overrides and controls', () => {
    expect(decodeMimeWords('=?utf-8?Q?caf=C3=A9?= =?utf-8?B?w6k=?=')).toBe('caféé');
    expect(decodeMimeWords('=?iso-8859-1?Q?f=FCr?=')).toBe('für');
    expect(decodeMimeWords('=?x-unknown?Q?abc?=')).toBe('abc');
    expect(displayText('invoice\u202Efdp.exe')).toBe('invoice[U+202E]fdp.exe');
    expect(displayText('a\r\nBcc: x\u0000y')).toBe('a  Bcc: x y');
    expect(displayText('x'.repeat(20), 5)).toBe('xxxxx…');
  });
});

describe('sanitizeForPreview', () => {
  const clean = (html: string, remoteImages = false) =>
    sanitizeForPreview(html, { remoteImages, inlineImages: new Map([['logo@x', 'data:image/png;base64,AAAA']]) });
  it.each([
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt&colon;alert(1)">x</a>',
    '<svg><script>alert(1)</script></svg>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<form action="https://evil.test"><button formaction="javascript:alert(1)">x</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://evil.test/"><a href="/x">x</a>',
    '<object data="https://evil.test/x.swf"></object><embed src="x">',
    '<div onmouseover="alert(1)" style="color:red">x</div>',
    '<body onload=alert(1)>',
    '<details open ontoggle=alert(1)>',
  ])('neutralises %s', (payload) => {
    const out = clean(`<p>before</p>${payload}<p>after</p>`).html;
    expect(out).not.toMatch(/<script|onerror|onload|onmouseover|ontoggle|javascript:|<iframe|<form|<meta|<base|<object|<embed|formaction|srcdoc/i);
  });
  it('keeps styling and text, makes links inert and keeps their target visible', () => {
    const out = clean('<p style="color:red">Hi <b>there</b> <a href="https://x.test/a">link</a></p>').html;
    expect(out).toContain('<p style="color:red">Hi <b>there</b>');
    expect(out).toContain('<a title="Link (not followed): https://x.test/a">link</a>');
  });
  it('blocks remote images unless asked, and inlines cid: images', () => {
    const html = '<img src="https://t.test/p.gif"><img src="cid:logo@x"><table background="http://t.test/bg.png"><tr><td>x</td></tr></table>';
    const blocked = clean(html);
    expect(blocked.html).not.toContain('t.test');
    expect(blocked.blockedImages).toBe(2);
    expect(blocked.html).toContain('src="data:image/png;base64,AAAA"');
    expect(clean(html, true).html).toContain('src="https://t.test/p.gif"');
  });
  it('removes remote CSS (@import, @font-face, url()) from style elements and attributes unless images were asked for', () => {
    const html = `<style>@import url("https://css.test/a.css"); @import 'https://css.test/b.css';
      @font-face { font-family: x; src: url(https://font.test/x.woff) }
      body { background: url( 'https://img.test/bg.png' ) no-repeat; color: red }
      p { background-image: -webkit-image-set("https://img.test/set.png" 1x) }
      h1 { color: blue }</style>
      <p style="background:URL(https://img.test/inline.png);color:green">x</p>
      <div style="background: u\\72l(https://img.test/escaped.png)">y</div>`;
    const blocked = clean(html).html;
    expect(blocked).not.toMatch(/css\.test|font\.test|img\.test|@import|@font-face/i);
    expect(blocked).toContain('color: red');
    expect(blocked).toContain('h1 { color: blue }');
    expect(blocked).toContain('color:green');
    const allowed = clean(html, true).html;
    expect(allowed).toContain("url('https://img.test/bg.png')");
    expect(allowed).toContain("url('https://img.test/inline.png')");
    expect(allowed).not.toMatch(/css\.test|font\.test|set\.png|escaped\.png|@import|@font-face/i);
  });
  it('flags links whose text names another host', () => {
    expect(
      extractLinks(
        '<a href="https://evil.test/login">https://www.bank.test/</a><a href="https://bank.test/x">bank.test</a><a href="https://a.test">click here</a>',
      ).map((l) => l.mismatch),
    ).toEqual([true, false, false]);
  });
  it('does not parse HTML past the nesting bound (jsdom would stall the process for minutes)', () => {
    const deep = `${'<div>'.repeat(100_000)}x${'</div>'.repeat(100_000)}`;
    expect(clean(deep)).toEqual({ html: '<!DOCTYPE html><p>No preview: HTML nested deeper than 512 elements.</p>', blockedImages: 0 });
  });
});

describe('smtpConnectionTest', () => {
  let mailbox: Mailbox;
  beforeAll(async () => {
    mailbox = await startMailbox({
      dir: mkdtempSync(path.join(os.tmpdir(), 'mm-smtptest-')),
      host: '127.0.0.1',
      port: 0,
      hooks: { refuseRecipient: (a) => (a.startsWith('postmaster@refuse') ? { code: 550, text: '5.1.1 <no> such user' } : undefined) },
    });
  });
  afterAll(async () => mailbox?.close());

  it('records the whole conversation with a real server', async () => {
    const r = await smtpConnectionTest({ host: '127.0.0.1', port: mailbox.port }, { domain: 'a.test', helo: 'mx.test', timeoutMs: 5000 });
    expect(r.ok).toBe(true);
    const lines = r.transcript.map((l) => `${l.dir} ${l.line}`);
    expect(lines).toEqual(
      expect.arrayContaining([expect.stringMatching(/^S 220 /), 'C EHLO mx.test', 'C MAIL FROM:<>', 'C RCPT TO:<postmaster@a.test>', 'C RSET', 'C QUIT']),
    );
  });
  it('explains a refused recipient', async () => {
    const r = await smtpConnectionTest({ host: '127.0.0.1', port: mailbox.port }, { domain: 'refuse.test', helo: 'mx.test', timeoutMs: 5000 });
    expect(r).toMatchObject({ ok: false, summary: 'the server answered 550 to RCPT TO:<postmaster@refuse.test>' });
  });
  it('reports a closed port and a silent server', async () => {
    const closed = await smtpConnectionTest({ host: '127.0.0.1', port: 1 }, { domain: 'a.test', helo: 'mx.test', timeoutMs: 2000 });
    expect(closed.ok).toBe(false);
    expect(closed.summary).toMatch(/connection failed: .*ECONNREFUSED/);
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    const r = await smtpConnectionTest({ host: '127.0.0.1', port }, { domain: 'a.test', helo: 'mx.test', timeoutMs: 300 });
    silent.close();
    expect(r).toMatchObject({ ok: false, summary: 'connection failed: no answer within 300 ms' });
  });
});
