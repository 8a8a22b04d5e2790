import { describe, expect, it } from 'vitest';
import { disarmHtml } from '../../scanners/html-disarm.ts';
import { extractUrls } from '../../scanners/html-urls.ts';
import { registrableDomain } from '../../scanners/url-hosts.ts';

const kinds = (html: string, o = {}) => disarmHtml(html, o).findings.map((f) => f.kind);

describe('disarming', () => {
  it('removes scripts, object, embed and applet', () => {
    const r = disarmHtml(
      '<p>a</p><script>steal()</script><object data="x.swf"></object><embed src="y.swf"><applet code="Z"></applet><svg><script>x()</script></svg>',
    );
    expect(r.findings.map((f) => f.kind)).toEqual(['script', 'script', 'object', 'object', 'object']);
    expect(r.html).toBe('<p>a</p><svg></svg>');
    expect(r.changed).toBe(true);
  });

  it('removes meta refresh and base, keeps other meta', () => {
    const r = disarmHtml(
      '<html><head><meta charset="utf-8"><meta http-equiv="REFRESH" content="0;url=http://evil.example/"><base href="http://evil.example/"></head><body>x</body></html>',
    );
    expect(r.findings.map((f) => f.kind)).toEqual(['meta-refresh', 'js-url']);
    expect(r.html).toContain('<meta charset="utf-8">');
    expect(r.html).not.toMatch(/refresh|<base/i);
  });

  it('replaces frames with a visible note', () => {
    const r = disarmHtml('<p>x</p><iframe src="https://evil.example/login"></iframe>');
    expect(r.findings).toEqual([{ kind: 'iframe', detail: 'replaced <iframe> from https://evil.example/login' }]);
    expect(r.html).toContain('[mailmoat: removed an embedded frame from https://evil.example/login]');
    expect(r.html).not.toContain('<iframe');
  });

  it('unwraps forms and drops formaction', () => {
    const r = disarmHtml(
      '<form action="https://evil.example/steal" method="post"><label>PIN <input name="pin"></label><button formaction="https://evil.example/b">Send</button></form>',
    );
    expect(r.findings.map((f) => f.detail)).toEqual([
      'unwrapped <form> posting to https://evil.example/steal',
      'removed formaction https://evil.example/b on <button>',
    ]);
    expect(r.html).toBe('<label>PIN <input name="pin"></label><button>Send</button>');
  });

  it('strips every on* handler', () => {
    const r = disarmHtml('<body onload="a()"><img src="cid:logo" onerror="b()"><p ONCLICK="c()" onmouseover="d()">x</p></body>');
    expect(r.findings.map((f) => f.kind)).toEqual(['handler', 'handler', 'handler', 'handler']);
    expect(r.html).not.toMatch(/on(load|error|click|mouseover)/i);
    expect(r.html).toContain('src="cid:logo"');
  });

  it('neutralises javascript:, vbscript: and data: URLs, also when obfuscated', () => {
    const html = [
      '<a href="javascript:alert(1)">a</a>',
      '<a href=" JaVa&#x09;ScRiPt:alert(1)">b</a>',
      '<a href="vbscript:msgbox(1)">c</a>',
      '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">d</a>',
      '<svg><a xlink:href="javascript:alert(1)"><text>e</text></a></svg>',
      '<button formaction="javascript:alert(1)">f</button>',
    ].join('');
    const r = disarmHtml(html);
    expect(r.findings.map((f) => f.kind)).toEqual(['js-url', 'js-url', 'js-url', 'data-url', 'js-url', 'js-url']);
    expect(r.html).not.toMatch(/script:|data:/i);
  });

  it('neutralises url() in style attributes and style sheets, escapes included', () => {
    const r = disarmHtml(
      '<style>.a{background:url("javascript:x()")}</style><p style="background:url(java\\73 cript:alert(1))">x</p><div style="width:expression(alert(1))">y</div>',
    );
    expect(r.findings.map((f) => f.kind)).toEqual(['js-url', 'js-url', 'js-url']);
    expect(r.html).not.toMatch(/javascript|java\\73/);
    expect(r.html).toContain('x-expression(');
  });

  it('keeps inline raster images but not data: SVG', () => {
    const r = disarmHtml('<img src="data:image/png;base64,iVBORw0KGgo="><img src="data:image/svg+xml;base64,PHN2Zz4=">');
    expect(r.findings.map((f) => f.kind)).toEqual(['data-url']);
    expect(r.html).toContain('data:image/png');
    expect(r.html).not.toContain('svg+xml');
  });

  it('leaves clean HTML byte-identical and unchanged', () => {
    const html = '<html><head><title>Hi</title></head><body><p>Hello <a href="https://example.com/">example.com</a> <img src="cid:logo@x"></p></body></html>';
    expect(disarmHtml(html)).toEqual({ html, changed: false, findings: [] });
  });
});

describe('web bugs', () => {
  const page =
    '<p>x</p><img src="https://track.example/o.gif" width="1" height="1"><img src="https://cdn.example/banner.jpg" alt="Summer sale"><div style="background-image:url(https://cdn.example/bg.png)">y</div>';

  it('always removes tracking pixels, even when remote images are kept', () => {
    const r = disarmHtml(page, { remoteImages: 'keep' });
    expect(r.findings).toEqual([{ kind: 'web-bug', detail: 'removed tracking pixel from track.example' }]);
    expect(r.html).toContain('banner.jpg');
    expect(r.html).toContain('bg.png');
    expect(kinds('<img src="http://t.example/p" style="display:none">', { remoteImages: 'keep' })).toEqual(['web-bug']);
    expect(kinds('<img src="//t.example/p" width="0">', { remoteImages: 'keep' })).toEqual(['web-bug']);
  });

  it('replaces remote images with a placeholder by default', () => {
    const r = disarmHtml(page);
    expect(r.findings.map((f) => f.detail)).toEqual([
      'remote resource https://cdn.example/bg.png in style of <div>',
      'removed tracking pixel from track.example',
      'replaced remote image from cdn.example',
    ]);
    expect(r.html).toContain('[mailmoat: remote image "Summer sale" not loaded]');
    expect(r.html).not.toMatch(/https:\/\//);
  });

  it('removes remote images when configured to', () => {
    const r = disarmHtml(page, { remoteImages: 'remove' });
    expect(r.html).not.toContain('mailmoat');
    expect(r.html).not.toContain('<img');
  });

  it('leaves cid: images alone', () => {
    expect(disarmHtml('<img src="cid:part1@example" width="1" height="1">').changed).toBe(false);
  });
});

describe('phishing net', () => {
  it('makes a mismatching link inert and shows the real target', () => {
    const r = disarmHtml('<p><a href="https://evil.example/login">https://www.paypal.com/signin</a></p>');
    expect(r.findings).toEqual([{ kind: 'phishing', detail: 'link shows www.paypal.com but goes to evil.example' }]);
    expect(r.html).toBe(
      '<p><a>https://www.paypal.com/signin</a><span style="font:12px sans-serif;color:#7a4b00;background:#fff4d6;border:1px solid #e0b040;padding:0 2px">' +
        '[mailmoat: this link claims to go to www.paypal.com but really goes to evil.example]</span></p>',
    );
  });

  it('catches a bare domain in the text, a look-alike IDN and a userinfo trick', () => {
    expect(kinds('<a href="http://evil.example/">paypal.com</a>')).toEqual(['phishing']);
    expect(kinds('<a href="https://xn--pypal-4ve.com/">paypal.com</a>')).toEqual(['phishing']);
    expect(kinds('<a href="https://paypal.com@evil.example/">paypal.com</a>')).toEqual(['phishing']);
    expect(kinds('<a href="https://203.0.113.9/">Log in at www.mybank.co.uk</a>')).toEqual(['phishing']);
  });

  it('lets same host, www. variants and same registrable domain pass', () => {
    expect(kinds('<a href="https://paypal.com/x">https://paypal.com/x</a>')).toEqual([]);
    expect(kinds('<a href="https://www.paypal.com/x">paypal.com</a>')).toEqual([]);
    expect(kinds('<a href="https://paypal.com/x">www.paypal.com</a>')).toEqual([]);
    expect(kinds('<a href="https://login.paypal.com/x">www.paypal.com</a>')).toEqual([]);
    expect(kinds('<a href="https://shop.example.co.uk/">example.co.uk</a>')).toEqual([]);
  });

  it('ignores link text that shows no host', () => {
    expect(kinds('<a href="https://evil.example/">Click here</a>')).toEqual([]);
    expect(kinds('<a href="https://evil.example/">invoice.pdf</a>')).toEqual([]);
    expect(kinds('<a href="https://evil.example/">Mr.Smith</a>')).toEqual([]);
    expect(kinds('<a href="mailto:support@evil.example">paypal.com</a>')).toEqual([]);
  });

  it('honours safe sites and can be switched off', () => {
    expect(kinds('<a href="https://click.mailer.example/r/1">paypal.com</a>', { phishingSafeSites: ['mailer.example'] })).toEqual([]);
    expect(kinds('<a href="https://evil.example/">paypal.com</a>', { phishingNet: false })).toEqual([]);
  });
});

describe('bounds', () => {
  it('reports oversized HTML as unscannable and leaves it as is', () => {
    const html = `<script>x()</script>${'a'.repeat(2000)}`;
    expect(disarmHtml(html, { maxHtmlChars: 1000 })).toEqual({ html, changed: false, findings: [], unscannable: 'HTML larger than 1000 characters' });
  });

  it('keeps the findings list short on hostile input', () => {
    const r = disarmHtml('<p onclick="x()">a</p>'.repeat(1000));
    expect(r.findings).toHaveLength(201);
    expect(r.findings[200]).toEqual({ kind: 'handler', detail: '800 more changes not listed' });
    expect(r.html).not.toContain('onclick');
  });

  it('reports too deep nesting as unscannable instead of recursing', () => {
    const html = '<div>'.repeat(5000) + '<script>x()</script>';
    const r = disarmHtml(html);
    expect(r.unscannable).toBe('HTML nested deeper than 512');
    expect(r.changed).toBe(false);
  });
});

describe('extractUrls', () => {
  it('returns hosts from links, resources, CSS and text', () => {
    const html =
      '<a href="https://a.example/x">x</a><img src="//b.example/i.png"><div style="background:url(http://c.example/bg)"></div><p>see www.d.example.org or http://e.example:8080/ and f.co.uk</p><a href="mailto:x@g.example">m</a>';
    expect(extractUrls(html).sort()).toEqual(['a.example', 'b.example', 'c.example', 'e.example', 'f.co.uk', 'www.d.example.org']);
  });

  it('reads plain text, skipping file names and e-mail addresses', () => {
    expect(extractUrls('Go to HTTPS://Bank.Example/login or bank-secure.com; see report.pdf, mail me@x.example', { html: false })).toEqual([
      'bank.example',
      'bank-secure.com',
    ]);
  });

  it('punycodes international names', () => {
    expect(extractUrls('http://bücher.de/', { html: false })).toEqual(['xn--bcher-kva.de']);
  });
});

it('registrable domain heuristic', () => {
  expect(registrableDomain('www.a.b.example.com')).toBe('example.com');
  expect(registrableDomain('shop.example.co.uk')).toBe('example.co.uk');
  expect(registrableDomain('203.0.113.9')).toBe('203.0.113.9');
});
