// Mutation XSS: whatever the disarm emits must be stable and inert when the reader's client parses
// it again. Over the DOMPurify bypass history (fixtures/mxss-payloads.ts) and a seeded fuzzed
// corpus: disarming the output again finds nothing to change, and the output parsed by jsdom
// (parse5, as we parse) and by chromium's own HTML parser holds no live content.
import { JSDOM } from 'jsdom';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disarmHtml } from '../../scanners/html-disarm.ts';
import { SVG_ALLOWED } from '../../scanners/html-foreign.ts';
import { FUZZ_TOKENS, MXSS_PAYLOADS } from './fixtures/mxss-payloads.ts';
import { prng } from '../support/prng.ts';

// MAILMOAT_FUZZ_SEED / MAILMOAT_FUZZ_N run a longer or other fuzz by hand.
const SEED = Number(process.env.MAILMOAT_FUZZ_SEED ?? 20261204);
function fuzzCorpus(n: number): string[] {
  const rnd = prng(SEED);
  return Array.from({ length: n }, () => {
    const len = 3 + Math.floor(rnd() * 12);
    return Array.from({ length: len }, () => FUZZ_TOKENS[Math.floor(rnd() * FUZZ_TOKENS.length)]).join('');
  });
}

const CORPUS = [...MXSS_PAYLOADS, ...fuzzCorpus(Number(process.env.MAILMOAT_FUZZ_N ?? 1500))];
const results = CORPUS.map((input) => ({ input, r: disarmHtml(input) }));
/** What a reader gets: an unscannable part is held (quarantined as unscannable), never delivered. */
const delivered = results.filter(({ r }) => r.unscannable === undefined);

/** What the walk below reads of an element, in jsdom's DOM and in chromium's alike. */
interface ParsedElement {
  localName: string;
  namespaceURI: string | null;
  textContent: string | null;
  getAttribute(name: string): string | null;
  attributes: ArrayLike<{ name: string; value: string }>;
  children?: ArrayLike<ParsedElement>;
  /** A <template>'s own fragment. */
  content?: { children?: ArrayLike<ParsedElement> };
}

/**
 * Live content in a parsed document: anything that runs code, submits, loads another document,
 * or foreign content outside the allow-list. Plain JavaScript so that chromium can run it too.
 */
function liveContent(doc: { documentElement: ParsedElement }, svgAllowed: string[]): string[] {
  const out: string[] = [];
  const ACTIVE_TAGS = [
    'script',
    'iframe',
    'frame',
    'frameset',
    'object',
    'embed',
    'applet',
    'base',
    'form',
    'noscript',
    'template',
    'noembed',
    'noframes',
    'select',
  ];
  const URL_ATTRS = ['href', 'src', 'action', 'formaction', 'xlink:href', 'background', 'data', 'poster', 'srcdoc', 'to', 'values', 'from'];
  const badUrl = (v: string) => {
    const s = v.replace(/[\u0000-\u0020\u007f]/g, '').toLowerCase();
    return /^(?:javascript|vbscript|livescript):/.test(s) || (s.startsWith('data:') && !/^data:image\/(?:png|gif|jpe?g|webp|bmp)[;,]/.test(s));
  };
  const badCss = (css: string) =>
    /(?<!x-)expression\s*\(|(?:url\(|@import)\s*['"]?\s*(?:javascript|vbscript):|(?<!x-)-moz-binding|(?<!x-)behavior\s*:/i.test(css);
  const visit = (el: ParsedElement) => {
    const name = String(el.localName).toLowerCase();
    const ns = el.namespaceURI;
    if (ns === 'http://www.w3.org/1998/Math/MathML') out.push(`MathML <${name}>`);
    else if (ns === 'http://www.w3.org/2000/svg' && !svgAllowed.includes(name)) out.push(`SVG <${name}>`);
    else if (ns === 'http://www.w3.org/1999/xhtml' && ACTIVE_TAGS.includes(name)) out.push(`<${name}>`);
    if (name === 'meta' && /refresh/i.test(el.getAttribute('http-equiv') ?? '')) out.push('meta refresh');
    if (name === 'style' && badCss(el.textContent ?? '')) out.push('active CSS in <style>');
    for (const a of Array.from(el.attributes)) {
      const an = a.name.toLowerCase();
      if (an.startsWith('on')) out.push(`${an} on <${name}>`);
      if (URL_ATTRS.includes(an) && badUrl(a.value)) out.push(`${an}=${a.value} on <${name}>`);
      if (an === 'style' && badCss(a.value)) out.push(`active CSS in style of <${name}>`);
    }
    for (const c of Array.from(el.children ?? [])) visit(c);
    if (el.content) for (const c of Array.from(el.content.children ?? [])) visit(c);
  };
  visit(doc.documentElement);
  return out;
}

describe('disarmed HTML is stable and inert when parsed again', () => {
  it('the nested-form MathML payload loses its live <img onerror>', () => {
    const r = disarmHtml('<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>');
    expect(r.changed).toBe(true);
    expect(r.html).not.toMatch(/onerror|<math|<mglyph/i);
    expect(disarmHtml(r.html).findings).toEqual([]);
  });

  it('keeps static SVG drawings, drops MathML, <noscript> and <template>', () => {
    const svg = '<svg width="10" height="10"><g><rect width="10" height="10" fill="red"></rect><text x="1" y="9">A</text></g></svg>';
    expect(disarmHtml(`<p>logo</p>${svg}`)).toMatchObject({ changed: false });
    const r = disarmHtml(
      `<p>x</p><svg><foreignObject><p>y</p></foreignObject><rect></rect></svg><math><mi>z</mi></math><noscript>n</noscript><template>t</template>`,
    );
    expect(r.findings.map((f) => f.kind)).toEqual(['unstable-markup', 'unstable-markup', 'unstable-markup', 'unstable-markup']);
    expect(r.html).toBe('<p>x</p><svg><rect></rect></svg>');
  });

  it('a <select> goes with its content: browsers now build elements inside it, parse5 drops them', () => {
    const r = disarmHtml('<p>pick</p><select><img src=x onerror=alert(1)><option>a</option></select>');
    expect(r.findings.map((f) => f.kind)).toEqual(['unstable-markup']);
    expect(r.html).toBe('<p>pick</p>');
  });

  it('a <style> whose cleaned CSS decodes into "</style>" cannot end the element', () => {
    const r = disarmHtml('<style>a{background:url(javascript:x)} \\3c /style\\3e \\3c img src=x onerror=alert(1)\\3e</style><p>x</p>');
    expect(r.html).not.toMatch(/<\/style>\s*<img/i);
    expect(disarmHtml(r.html).findings).toEqual([]);
  });

  it(`every payload and fuzz sample (seed ${SEED}): disarming the output again finds nothing to change`, () => {
    const unstable = delivered.filter(({ r }) => r.changed && disarmHtml(r.html).findings.length > 0).map(({ input }) => input);
    expect(unstable).toEqual([]);
    // Markup that never settles is held as unscannable: rare, and never among the known payloads.
    expect(
      results
        .filter(({ r }) => r.unscannable)
        .map(({ input }) => input)
        .filter((x) => MXSS_PAYLOADS.includes(x)),
    ).toEqual([]);
    expect(delivered.length).toBeGreaterThan(CORPUS.length * 0.98);
  });

  it('no live content when parsed by jsdom (parse5, as the disarm parses)', () => {
    const { window } = new JSDOM('');
    const parser = new window.DOMParser();
    const live = delivered
      .map(({ input, r }) => ({ input, live: liveContent(parser.parseFromString(r.html, 'text/html'), [...SVG_ALLOWED]) }))
      .filter((x) => x.live.length > 0);
    expect(live).toEqual([]);
    window.close();
  });

  describe('in a browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run'] });
    }, 30_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('no live content when chromium parses the output (DOMParser: scripting off, as in a mail client)', async () => {
      const page = await browser.newPage();
      await page.setContent('<!doctype html><title>x</title>');
      const live = await page.evaluate(
        ({ htmls, allowed, check }) => {
          // Runs in chromium: its window's DOMParser, which Node's types do not describe.
          const g = globalThis as unknown as { DOMParser: new () => { parseFromString(html: string, type: string): unknown } };
          const fn = new Function(`return (${check})`)() as (doc: unknown, allowed: string[]) => string[];
          const parser = new g.DOMParser();
          return htmls.map((h: string, i: number) => ({ i, live: fn(parser.parseFromString(h, 'text/html'), allowed) })).filter((x) => x.live.length > 0);
        },
        { htmls: delivered.map(({ r }) => r.html), allowed: [...SVG_ALLOWED], check: liveContent.toString() },
      );
      expect(live.map(({ i, live: l }) => ({ input: delivered[i].input, output: delivered[i].r.html, live: l }))).toEqual([]);
      await page.close();
    }, 30_000);
  });
});
