// One parse of an HTML part for the URL check and the disarm (extractUrlsAndDisarm, what the text
// scan runs): over the mXSS payloads, a seeded fuzz of them mixed with everything that names a
// host, the bench's newsletter and the bounds, its hosts and disarm results are exactly those of
// extractUrls and disarmHtml, each of which parses on its own.
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DISARM_OPTIONS, disarmHtml, extractUrlsAndDisarm, type DisarmOptions } from '../../scanners/html-disarm.ts';
import { URL_ATTRS, extractUrls, type UrlOptions } from '../../scanners/html-urls.ts';
import { load } from '../../scanners/cheerio-load.ts';
import { hostOfUrl, hostsInText } from '../../scanners/url-hosts.ts';
import type { AnyNode, Element } from 'domhandler';
import { registrableDomain } from '../../gateway/pipeline/text-scan.ts';
import { makeMessage } from '../../bench/lib/messages.ts';
import { FUZZ_TOKENS, MXSS_PAYLOADS } from './fixtures/mxss-payloads.ts';
import { prng } from '../support/prng.ts';

/** Markup that names hosts where the disarm removes, rewrites or adds something. */
const HOST_TOKENS = [
  '<script src="https://cdn.script.test/a.js">fetch("https://exfil.test/x")</script>',
  '<img src="https://track.test/p.gif" width="1" height="1">',
  '<img src="https://images.test/big.png" alt="logo">',
  '<img srcset="https://set.test/a.png 2x">',
  '<a href="https://evil.test/login">https://www.bank.test/</a>',
  '<a href="https://www.bank.test/ok">www.bank.test</a>',
  '<a href="javascript:location=\'https://js.test/\'">click</a>',
  '<base href="https://base.test/">',
  '<form action="https://post.test/collect"><input name="pw"><button formaction="https://button.test/">go</button></form>',
  '<iframe src="https://frame.test/"></iframe>',
  '<link rel="stylesheet" href="https://sheet.test/s.css">',
  '<meta http-equiv="refresh" content="0;url=https://refresh.test/">',
  '<div style="background:url(https://bg.test/x.png)">styled</div>',
  '<style>body{background:url("https://css.test/b.png")}</style>',
  '<object data="https://object.test/o.swf"></object>',
  '<a href="https://ping.test/" ping="https://pinged.test/">pinged</a>',
  '<svg><animate attributeName="href" to="https://anim.test/"/></svg>',
  '<p onclick="go(\'https://handler.test/\')">see www.text.test and mail.example.co.uk</p>',
  '<img src="data:image/png;base64,iVBORw0KGgo=">',
  '<area href="https://area.test/" alt="x">',
  '<meta charset="iso-8859-1">',
  'plain words shop.example.com ',
];

function fuzz(n: number): string[] {
  const rnd = prng(20261205);
  const tokens = [...FUZZ_TOKENS, ...HOST_TOKENS, ...HOST_TOKENS];
  return Array.from({ length: n }, () => {
    const len = 2 + Math.floor(rnd() * 10);
    return Array.from({ length: len }, () => tokens[Math.floor(rnd() * tokens.length)]).join('');
  });
}

/** The HTML part of a bench message (lib/messages.ts): what the full-path bench sends. */
function benchHtml(kind: 'small' | 'medium'): string {
  const lines = makeMessage(kind, kind === 'small' ? 2048 : 51_200);
  return lines.slice(lines.indexOf('<!DOCTYPE html>'), lines.indexOf('</body></html>') + 1).join('\r\n');
}

const CORPUS = [
  ...MXSS_PAYLOADS,
  ...HOST_TOKENS,
  HOST_TOKENS.join('\n'),
  `<!DOCTYPE html><html><head><title>t</title></head><body>${HOST_TOKENS.join('')}</body></html>`,
  benchHtml('small'),
  benchHtml('medium'),
  `<div>${'<p>x</p>'.repeat(900)}</div>`,
  `<p>${'<a href="https://many.test/">https://other.test/</a>'.repeat(250)}</p>`, // past the findings bound
  `${'<div>'.repeat(600)}<a href="https://deep.test/">x</a>${'</div>'.repeat(600)}`, // past maxNesting
  `<p>${'www.long.test '.repeat(400)}<script src="https://s.test/"></script></p>`, // past a small maxHtmlChars
  'no markup at all, only www.plain.test',
  '',
  ...fuzz(300),
];

/** URL options and disarm settings as the text scan passes them, and the defaults. */
const CASES: { urls: Omit<UrlOptions, 'html'>; settings: Partial<DisarmOptions>[] }[] = [
  { urls: {}, settings: [{}] },
  { urls: { max: 6 }, settings: [{ remoteImages: 'keep', phishingNet: false, registrableDomain }] },
  {
    urls: { max: 51, maxHtmlChars: 4096 },
    settings: [{ remoteImages: 'remove', phishingSafeSites: ['evil.test'], outputCharset: 'utf-8', maxHtmlChars: 4096, maxNesting: 64, registrableDomain }],
  },
  // Two settings: only one may have the shared tree, the disarm changes it.
  {
    urls: { maxHtmlChars: 4096 },
    settings: [
      { remoteImages: 'placeholder', registrableDomain },
      { remoteImages: 'keep', registrableDomain },
    ],
  },
];

/**
 * The reading of an HTML tree that urlsOfHtml replaced by one walk (a selector pass for the
 * attributes, one for the style sheets, then a walk for the text), kept to pin the walk to it.
 */
function hostsBySelectors(input: string, max: number): string[] {
  const CSS_URL = /url\(\s*['"]?([^'"()\s]{1,4096})/gi;
  const hosts: string[] = [];
  const $ = load(input);
  $('*').each((_, el) => {
    if (!('attribs' in el)) return;
    for (const name of URL_ATTRS) {
      const v = (el as Element).attribs[name];
      const h = v === undefined ? null : hostOfUrl(v.startsWith('//') ? `http:${v}` : v);
      if (h) hosts.push(h);
    }
    for (const m of ((el as Element).attribs.style ?? '').matchAll(CSS_URL)) hosts.push(...hostsInText(m[1], max));
  });
  $('style').each((_, el) => {
    for (const m of $(el).text().matchAll(CSS_URL)) hosts.push(...hostsInText(m[1], max));
  });
  const texts: string[] = [];
  const stack: AnyNode[] = $.root().toArray();
  while (stack.length && texts.length < 100_000) {
    const n = stack.pop()!;
    if (n.type === 'text') texts.push((n as unknown as { data: string }).data);
    if ('children' in n) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  hosts.push(...hostsInText(texts.join(' '), max));
  return [...new Set(hosts)].slice(0, max);
}

describe('the hosts of an HTML part', () => {
  it('are those of the selector passes the one walk replaced, in the same order, for every input and bound', () => {
    const odd = [
      '<template><a href="https://tpl.test/">t</a><style>p{background:url(https://tplcss.test/)}</style></template>',
      '<svg><style>a{x:url(https://svgcss.test/)}</style><a xlink:href="https://xlink.test/">s</a></svg>',
      '<math><mi><style>b{y:url(https://mathcss.test/)}</style></mi></math>',
      '<noscript><img src="https://nos.test/"></noscript><STYLE>c{z:url(https://upper.test/)}</STYLE>',
    ];
    const differ: string[] = [];
    for (const html of [...CORPUS, ...odd, odd.join('')]) {
      for (const max of [500, 3, 1]) {
        if (!isDeepStrictEqual(extractUrls(html, { html: true, max }), hostsBySelectors(html, max))) differ.push(`max ${max}: ${html.slice(0, 200)}`);
      }
    }
    expect(differ).toEqual([]);
  });
});

describe('one parse of an HTML part for the URL check and the disarm', () => {
  it('gives the hosts of extractUrls and the results of disarmHtml for every input and setting', () => {
    const differ: string[] = [];
    let changed = 0;
    for (const html of CORPUS) {
      for (const { urls, settings } of CASES) {
        const shared = extractUrlsAndDisarm(html, urls, settings);
        const apart = { hosts: extractUrls(html, { ...urls, html: true }), disarmed: settings.map((s) => disarmHtml(html, s)) };
        if (!isDeepStrictEqual(shared, apart)) differ.push(`${JSON.stringify(urls)} ${JSON.stringify(settings)}: ${html.slice(0, 200)}`);
        changed += apart.disarmed.filter((r) => r.changed).length;
      }
    }
    expect(differ).toEqual([]);
    expect(changed).toBeGreaterThan(CORPUS.length);
  });

  it('is fed inputs whose hosts change when read after the disarm, so the order is tested', () => {
    const moved = CORPUS.filter((html) => {
      const r = disarmHtml(html, DEFAULT_DISARM_OPTIONS);
      return r.changed && JSON.stringify(extractUrls(r.html, { html: true })) !== JSON.stringify(extractUrls(html, { html: true }));
    });
    expect(moved.length).toBeGreaterThan(100);
  });
});
