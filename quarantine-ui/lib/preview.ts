// The message view: parsing a quarantined message for display, and the safe HTML preview.
//
// The HTML preview is the console's main attack surface: the message was written by whoever sent
// it. Three layers, any one of which stops script execution on its own:
//   1. DOMPurify (on jsdom, i.e. browser-equivalent parsing) removes scripts, event handlers,
//      javascript: URLs, forms, frames, objects, <base>, <meta>, <link>, remote CSS (@import,
//      @font-face, url()); links are made inert
//      (the target moves into the title) and remote images are dropped unless asked for.
//   2. The preview is served from its own route with `Content-Security-Policy: sandbox;
//      default-src 'none'` (no scripts, opaque origin, no network except images when allowed).
//   3. The page embeds it in <iframe sandbox> without allow-scripts/allow-same-origin.
// The sanitiser's output is sent as a whole document and never concatenated into another page.
import { createRequire } from 'node:module';
import type { JSDOM as JsdomClass } from 'jsdom';
import type createDOMPurifyFn from 'dompurify';
import type { AddressObject, Attachment } from 'mailparser';
import { displayBlock } from './text.ts';
import { htmlBoundExceeded } from '../../scanners/html-bounds.ts';

export interface AttachmentInfo {
  filename: string;
  contentType: string;
  size: number;
  disposition: string;
  contentId: string | null;
}

export interface LinkInfo {
  href: string;
  text: string;
  /** The link text looks like a URL or host that differs from where the link goes (phishing). */
  mismatch: boolean;
}

export interface MessageView {
  headerBlock: string;
  headers: { name: string; value: string }[];
  from: string;
  to: string;
  cc: string;
  subject: string;
  date: string;
  text: string | null;
  hasHtml: boolean;
  attachments: AttachmentInfo[];
  authResults: string[];
  links: LinkInfo[];
}

const MAX_HEADER_BLOCK = 256 * 1024;

/** The raw header block (up to the first empty line), for the "headers" view. */
export function headerBlockOf(raw: Buffer): string {
  const head = raw.subarray(0, MAX_HEADER_BLOCK);
  let end = head.indexOf('\r\n\r\n');
  if (end === -1) end = head.indexOf('\n\n');
  return head.subarray(0, end === -1 ? head.length : end).toString('utf8');
}

const addr = (a: AddressObject | AddressObject[] | undefined) => (a === undefined ? '' : (Array.isArray(a) ? a : [a]).map((x) => x.text).join(', '));

// mailparser (~5 MB of heap with html-to-text and its tables) is loaded at the first message
// view, not with the console that `mailmoat start` runs beside SMTP; resolved now, so that a
// broken install still fails at start.
const MAILPARSER = import.meta.resolve('mailparser');

export async function parseForView(raw: Buffer): Promise<{ view: MessageView; html: string | null; attachments: Attachment[] }> {
  const { simpleParser } = (await import(MAILPARSER)) as typeof import('mailparser');
  const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const headerBlock = headerBlockOf(raw);
  const headers = parsed.headerLines.map((h) => {
    const colon = h.line.indexOf(':');
    return {
      name: h.line.slice(0, colon),
      value: h.line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    };
  });
  const html = typeof parsed.html === 'string' ? parsed.html : null;
  const attachments = parsed.attachments ?? [];
  return {
    html,
    attachments,
    view: {
      headerBlock: displayBlock(headerBlock),
      headers,
      from: addr(parsed.from),
      to: addr(parsed.to),
      cc: addr(parsed.cc),
      subject: parsed.subject ?? '',
      date: parsed.date ? parsed.date.toISOString() : '',
      text: parsed.text ? displayBlock(parsed.text, 200_000) : null,
      hasHtml: html !== null,
      attachments: attachments.map((a) => ({
        filename: a.filename ?? '(no name)',
        contentType: a.contentType,
        size: a.size,
        disposition: a.contentDisposition ?? '',
        contentId: a.contentId ?? null,
      })),
      authResults: headers.filter((h) => h.name.toLowerCase() === 'authentication-results').map((h) => h.value),
      // jsdom's parser costs O(tags × depth): past the HTML bounds it would stall the process (SMTP too, in `start`).
      links: html && !htmlBoundExceeded(html) ? extractLinks(html) : [],
    },
  };
}

// jsdom and DOMPurify (about 700 module files, ~100 MB) are loaded at the first preview, not with
// the console: under `mailmoat start` the console shares its process with SMTP and the scan
// workers, which must not carry them (issue 16). Both are CommonJS, so a synchronous require.
const require = createRequire(import.meta.url);
const jsdom = (): typeof JsdomClass => (require('jsdom') as { JSDOM: typeof JsdomClass }).JSDOM;

// One jsdom window for the process; DOMPurify on it is synchronous, so per-call hooks added and
// removed around one sanitize() call cannot interleave with another call.
let purifier: ReturnType<typeof createDOMPurifyFn> | undefined;
function purify() {
  if (!purifier) {
    const createDOMPurify = require('dompurify') as typeof createDOMPurifyFn;
    const JSDOM = jsdom();
    purifier = createDOMPurify(new JSDOM('').window as unknown as Parameters<typeof createDOMPurifyFn>[0]);
  }
  return purifier;
}

const FORBID_TAGS = [
  'script',
  'noscript',
  'form',
  'input',
  'button',
  'textarea',
  'select',
  'option',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'base',
  'link',
  'meta',
  'svg',
  'math',
  'video',
  'audio',
  'source',
  'track',
  'portal',
  'template',
];
const FORBID_ATTR = ['srcset', 'action', 'formaction', 'ping', 'target', 'integrity', 'http-equiv'];
const DATA_IMAGE = /^data:image\/(png|gif|jpeg|webp);base64,[a-z0-9+/=\s]+$/i;
const MAX_INLINE_IMAGE = 2 * 1024 * 1024;

export interface SanitizeOptions {
  remoteImages: boolean;
  /** cid: → data: URI of the message's own inline images. */
  inlineImages: Map<string, string>;
}

export interface SanitizedPreview {
  html: string;
  blockedImages: number;
}

const CSS_COMMENT = /\/\*[\s\S]*?(\*\/|$)/g;
/** CSS functions that fetch something: url() and its relatives. */
const CSS_FETCH = /(?:-[a-z]+-)?(?:url|src|image-set|image|cross-fade)\s*\(/gi;

/** Where the CSS function whose "(" is at `open` ends (after its ")"), quotes and nesting respected. */
function closingParen(css: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < css.length; i++) {
    const c = css[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return css.length;
}

/** The CSS without its `@font-face { … }` blocks. */
function withoutFontFaces(css: string): string {
  let out = css;
  for (let at = out.search(/@font-face/i); at !== -1; at = out.search(/@font-face/i)) {
    const open = out.indexOf('{', at);
    if (open === -1) return out.slice(0, at);
    let depth = 0;
    let end = out.length;
    for (let i = open; i < out.length; i++) {
      if (out[i] === '{') depth++;
      else if (out[i] === '}' && --depth === 0) {
        end = i + 1;
        break;
      }
    }
    out = out.slice(0, at) + out.slice(end);
  }
  return out;
}

/**
 * CSS from a message, without what would fetch from the network: `@import`, `@font-face` and
 * url()-like functions (an image URL survives only when remote images were asked for). The CSP
 * blocks these as well; this is the second layer. CSS with escapes (`u\72l(`, `\40import`) could
 * spell them so no pattern sees them, and mail rarely needs escapes: such CSS is dropped whole.
 */
export function cleanCss(css: string, o: { remoteImages: boolean }): string {
  let s = css.replace(CSS_COMMENT, ' ');
  if (s.includes('\\')) return '';
  s = s.replace(/@import[^;]*(;|$)/gi, '');
  s = withoutFontFaces(s);
  let out = '';
  let from = 0;
  for (const m of s.matchAll(CSS_FETCH)) {
    if (m.index < from) continue;
    const end = closingParen(s, m.index + m[0].length - 1);
    const inner = s
      .slice(m.index + m[0].length, end - 1)
      .trim()
      .replace(/^(["'])(.*)\1$/s, '$2')
      .trim();
    const keep = o.remoteImages && /^url\s*\($/i.test(m[0]) && (/^https?:\/\/[^\s"'()]+$/i.test(inner) || DATA_IMAGE.test(inner));
    out += s.slice(from, m.index) + (keep ? `url('${inner}')` : 'none');
    from = end;
  }
  return out + s.slice(from);
}

export function sanitizeForPreview(html: string, o: SanitizeOptions): SanitizedPreview {
  const bound = htmlBoundExceeded(html);
  if (bound) return { html: `<!DOCTYPE html><p>No preview: ${bound}.</p>`, blockedImages: 0 };
  const p = purify();
  let blockedImages = 0;
  const image = (value: string): string | null => {
    const v = value.trim();
    if (/^cid:/i.test(v)) return o.inlineImages.get(v.slice(4).replace(/^<|>$/g, '').toLowerCase()) ?? null;
    if (DATA_IMAGE.test(v) && v.length < MAX_INLINE_IMAGE * 1.4) return v;
    if (/^https?:\/\//i.test(v)) {
      if (o.remoteImages) return v;
      blockedImages++;
      return null;
    }
    return null;
  };
  p.addHook('uponSanitizeElement', (node) => {
    if (node.nodeName === 'STYLE' && node.textContent) node.textContent = cleanCss(node.textContent, o);
  });
  p.addHook('afterSanitizeAttributes', (node) => {
    const el = node as Element;
    if (typeof el.getAttribute !== 'function') return;
    const style = el.getAttribute('style');
    if (style !== null) el.setAttribute('style', cleanCss(style, o));
    if (el.tagName === 'IMG') {
      const src = el.getAttribute('src');
      const safe = src === null ? null : image(src);
      if (safe === null) {
        el.removeAttribute('src');
        if (src !== null) el.setAttribute('alt', `[image blocked${el.getAttribute('alt') ? `: ${el.getAttribute('alt')}` : ''}]`);
      } else el.setAttribute('src', safe);
    }
    const bg = el.getAttribute('background');
    if (bg !== null) {
      const safe = image(bg);
      if (safe === null) el.removeAttribute('background');
      else el.setAttribute('background', safe);
    }
    if (el.tagName === 'A' || el.tagName === 'AREA') {
      // Inert links: nothing in a quarantined message should be one click away from the admin.
      const href = el.getAttribute('href');
      el.removeAttribute('href');
      if (href) el.setAttribute('title', `Link (not followed): ${href.slice(0, 500)}`);
    }
  });
  try {
    const out = p.sanitize(html, {
      WHOLE_DOCUMENT: true,
      FORBID_TAGS,
      FORBID_ATTR,
      ALLOW_DATA_ATTR: false,
      ALLOW_UNKNOWN_PROTOCOLS: false,
      RETURN_TRUSTED_TYPE: false,
    }) as unknown as string;
    return { html: out, blockedImages };
  } finally {
    p.removeHooks('afterSanitizeAttributes');
    p.removeHooks('uponSanitizeElement');
  }
}

/** cid → data: URI for the message's inline images (size-limited), for the preview. */
export function inlineImageMap(attachments: Attachment[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const a of attachments) {
    if (!a.contentId || !/^image\/(png|gif|jpeg|webp)$/i.test(a.contentType) || a.size > MAX_INLINE_IMAGE) continue;
    map.set(a.contentId.replace(/^<|>$/g, '').toLowerCase(), `data:${a.contentType.toLowerCase()};base64,${a.content.toString('base64')}`);
  }
  return map;
}

const hostOf = (s: string): string | null => {
  const m = /^(?:[a-z][a-z0-9+.-]*:\/\/)?([a-z0-9.-]+\.[a-z]{2,})(?:[:/?#]|$)/i.exec(s.trim());
  return m ? m[1]!.toLowerCase().replace(/^www\./, '') : null;
};

/** Links in the HTML with their visible text; a text that names another host is flagged. */
export function extractLinks(html: string): LinkInfo[] {
  const JSDOM = jsdom();
  const dom = new JSDOM(''); // parse without scripts or resources: jsdom does neither by default
  const doc = new dom.window.DOMParser().parseFromString(html, 'text/html');
  const out: LinkInfo[] = [];
  for (const a of Array.from(doc.querySelectorAll('a[href]')).slice(0, 200)) {
    const href = a.getAttribute('href') ?? '';
    const text = (a.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 200);
    const hrefHost = hostOf(href);
    const textHost = /^(https?:\/\/|www\.)/i.test(text) || /^[a-z0-9.-]+\.[a-z]{2,}(\/|$)/i.test(text) ? hostOf(text) : null;
    out.push({ href: href.slice(0, 500), text, mismatch: textHost !== null && hrefHost !== null && textHost !== hrefHost });
  }
  dom.window.close();
  return out;
}
