// URL and CSS checks for the HTML disarmer. A URL is judged the way a browser will read it
// (WHATWG URL: leading/trailing C0 controls and spaces dropped, tabs and newlines removed anywhere,
// so "java&#9;script:" is javascript:); CSS after its escapes and comments are removed, so
// "java\73 cript:" and "exp/**/ression(" are caught too.

export type HtmlFindingKind =
  | 'script'
  | 'form'
  | 'iframe'
  | 'object'
  | 'handler'
  | 'js-url'
  | 'data-url'
  | 'meta-refresh'
  | 'web-bug'
  | 'phishing'
  /** Markup that parses differently when parsed again (SVG/MathML outside the allow-list, <noscript>, <template>, <select>). */
  | 'unstable-markup';

export interface HtmlFinding {
  kind: HtmlFindingKind;
  detail: string;
}

export type UrlClass = 'ok' | 'script' | 'data' | 'remote';

// Inline raster images cannot run code; data:image/svg+xml and data:text/html can.
const SAFE_DATA_IMAGE = /^data:image\/(?:png|gif|jpe?g|webp|bmp)[;,]/;

/** What a URL attribute value would do when followed or loaded. */
export function classifyUrl(value: string, allowDataImage: boolean): UrlClass {
  const v = value.replace(/[\u0000-\u0020\u007f]/g, '').toLowerCase();
  if (/^(?:javascript|vbscript|livescript|mocha):/.test(v)) return 'script';
  if (v.startsWith('data:')) return allowDataImage && SAFE_DATA_IMAGE.test(v) ? 'ok' : 'data';
  if (/^(?:https?:)?\/\//.test(v)) return 'remote';
  return 'ok';
}

export function short(s: string, max = 100): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Comments removed by a scan, not a lazy regex (quadratic on many unterminated "/*"). */
function stripComments(css: string): string {
  let out = '';
  let i = 0;
  for (let start = css.indexOf('/*'); start !== -1; start = css.indexOf('/*', i)) {
    out += css.slice(i, start);
    const end = css.indexOf('*/', start + 2);
    i = end === -1 ? css.length : end + 2; // an unterminated comment runs to the end (CSS Syntax §4.3.2)
  }
  return out + css.slice(i);
}

function decodeCss(css: string): string {
  return stripComments(css)
    .replace(/\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?/g, (_, hex: string) => {
      const cp = parseInt(hex, 16);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
    })
    .replace(/\\(.)/g, '$1');
}

// Bounded repetitions keep these linear on hostile input (many unclosed "url(").
// A quoted URL may hold ")" (url("javascript:x()")); an unquoted one ends at the first ")".
const QUOTED_OR_BARE = `(?:"([^"]{0,4096})"|'([^']{0,4096})'|([^'"()\\s]{0,4096}))`;
const IMPORT = new RegExp(`@import\\s*(?:url\\(\\s*${QUOTED_OR_BARE}\\s*\\)|"([^"]{0,4096})"|'([^']{0,4096})')[^;{}]{0,256};?`, 'gi');
const URL_FN = new RegExp(`url\\(\\s*${QUOTED_OR_BARE}\\s*\\)?`, 'gi');
// IE/old Gecko ways to run code from CSS; not again once made inert ("x-expression("), so that
// disarming its own output changes nothing.
const ACTIVE = /(?<!x-)(expression\s*\(|-moz-binding|behavior\s*:)/gi;

export interface CssResult {
  css: string;
  findings: HtmlFinding[];
}

function urlFinding(cls: UrlClass, url: string, where: string): HtmlFinding | null {
  if (cls === 'script') return { kind: 'js-url', detail: `script URL in ${where}` };
  if (cls === 'data') return { kind: 'data-url', detail: `data: URL in ${where}` };
  if (cls === 'remote') return { kind: 'web-bug', detail: `remote resource ${short(url, 80)} in ${where}` };
  return null;
}

/**
 * Neutralises script URLs, non-image data: URLs and (when stripRemote) remote url()/@import in
 * a style sheet or style attribute. The CSS is returned untouched when nothing was found.
 */
export function sanitiseCss(css: string, stripRemote: boolean, where: string): CssResult {
  const findings: HtmlFinding[] = [];
  const judge = (url: string): HtmlFinding | null => {
    const cls = classifyUrl(url, true);
    return cls === 'remote' && !stripRemote ? null : urlFinding(cls, url, where);
  };
  let out = decodeCss(css)
    .replace(IMPORT, (all: string, ...groups: (string | undefined)[]) => {
      const f = judge(groups.slice(0, 5).find((g) => g !== undefined) ?? '');
      if (!f) return all;
      findings.push(f);
      return '';
    })
    .replace(URL_FN, (all: string, ...groups: (string | undefined)[]) => {
      const f = judge(groups.slice(0, 3).find((g) => g !== undefined) ?? '');
      if (!f) return all;
      findings.push(f);
      return 'none';
    });
  out = out.replace(ACTIVE, (m: string) => {
    findings.push({ kind: 'js-url', detail: `active CSS (${short(m, 20)}) in ${where}` });
    return `x-${m}`;
  });
  return findings.length ? { css: out, findings } : { css, findings };
}
