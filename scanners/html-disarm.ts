// MailScanner-style HTML disarming with cheerio (parse5: the tree a browser builds). Removes what
// runs code or submits data, blocks remote resources that report the reader (web bugs), and makes
// inert every link whose visible text shows another host than the one it goes to (phishing net),
// telling the reader where it really goes.
//
// This is a content policy applied to mail in transit, not the XSS boundary of our own console
// (dependencies §7: that one is DOMPurify + a sandboxed iframe). Bounds: HTML size and element
// nesting; a document past them is returned untouched with `unscannable` set, never "clean".

import type { CheerioAPI } from 'cheerio';
import { load } from './cheerio-load.ts';
import type { AnyNode, Element } from 'domhandler';
import { classifyUrl, sanitiseCss, short, type HtmlFinding, type HtmlFindingKind } from './html-css.ts';
import { removeUnstableMarkup } from './html-foreign.ts';
import { DEFAULT_MAX_HTML_CHARS, URL_ATTRS, urlsOfHtml, type UrlOptions } from './html-urls.ts';
import { claimedHost, hostOfUrl, registrableDomain } from './url-hosts.ts';

export type { HtmlFinding, HtmlFindingKind };

export interface DisarmOptions {
  /** Remote images and CSS backgrounds: kept, replaced by a short note, or removed. Tracking pixels always go. */
  remoteImages: 'keep' | 'placeholder' | 'remove';
  phishingNet: boolean;
  /** Registrable domains of link targets never flagged by the phishing net (a known redirector). */
  phishingSafeSites: readonly string[];
  /** Registrable-domain function; inject a Public Suffix List one where available. */
  registrableDomain: (host: string) => string;
  /** Characters of HTML disarmed at most. */
  maxHtmlChars: number;
  /** Element nesting disarmed at most (browsers flatten past 512 anyway). */
  maxNesting: number;
  /** When set, <meta charset> declarations are rewritten to it (the part was re-encoded). */
  outputCharset?: string;
}

export const DEFAULT_DISARM_OPTIONS: DisarmOptions = {
  remoteImages: 'placeholder',
  phishingNet: true,
  phishingSafeSites: [],
  registrableDomain,
  maxHtmlChars: DEFAULT_MAX_HTML_CHARS,
  maxNesting: 512,
};

export interface DisarmResult {
  html: string;
  changed: boolean;
  findings: HtmlFinding[];
  /** Set when a bound was hit or the HTML could not be processed; `html` is then the input. */
  unscannable?: string;
}

interface Ctx {
  $: CheerioAPI;
  o: DisarmOptions;
  findings: HtmlFinding[];
  /** Findings past MAX_FINDINGS are counted, not listed: a report must stay small. */
  unlisted: number;
}

const MAX_FINDINGS = 200;

const NOTE_STYLE = 'font:12px sans-serif;color:#7a4b00;background:#fff4d6;border:1px solid #e0b040;padding:0 2px';

function note($: CheerioAPI, text: string) {
  return $('<span></span>').attr('style', NOTE_STYLE).text(`[mailmoat: ${text}]`);
}

function add(ctx: Ctx, kind: HtmlFindingKind, detail: string): void {
  if (ctx.findings.length < MAX_FINDINGS) ctx.findings.push({ kind, detail });
  else ctx.unlisted++;
}

const isElement = (n: AnyNode): n is Element => 'attribs' in n;

function describe(el: Element): string {
  const src = el.attribs.src ?? el.attribs.data ?? el.attribs.href ?? el.attribs.code;
  return src ? `<${el.tagName}> ${short(src, 80)}` : `inline <${el.tagName}>`;
}

/** Elements that run code or redirect the reader: removed outright. */
function removeActive(ctx: Ctx): void {
  const { $ } = ctx;
  const kinds: [string, HtmlFindingKind][] = [
    ['script', 'script'],
    ['object, embed, applet', 'object'],
  ];
  for (const [sel, kind] of kinds) {
    $(sel)
      .each((_, el) => {
        if (isElement(el)) add(ctx, kind, `removed ${describe(el)}`);
      })
      .remove();
  }
  $('meta[http-equiv="refresh" i]')
    .each((_, el) => add(ctx, 'meta-refresh', `removed refresh to ${short(el.attribs.content ?? '', 80)}`))
    .remove();
  // <base href> re-points every relative link, a way around link checks.
  $('base')
    .each((_, el) => add(ctx, 'js-url', `removed <base href="${short(el.attribs.href ?? '', 60)}">`))
    .remove();
  // SVG animation can set href to javascript: after parsing.
  $('animate, set, animateMotion, animateTransform').each((_, el) => {
    const target = (el.attribs.attributeName ?? el.attribs.attributename ?? '').toLowerCase();
    if (target.endsWith('href')) {
      add(ctx, 'js-url', `removed SVG <${el.tagName}> of ${target}`);
      $(el).remove();
    }
  });
}

/** Frames load other documents; replaced by a visible note naming the source. */
function replaceFrames(ctx: Ctx): void {
  const { $ } = ctx;
  $('iframe, frame, frameset').each((_, el) => {
    const src = el.attribs.src ? ` from ${short(el.attribs.src, 80)}` : '';
    add(ctx, 'iframe', `replaced <${el.tagName}>${src}`);
    $(el).replaceWith(note($, `removed an embedded frame${src}`));
  });
}

/** Forms are unwrapped (their content stays readable, nothing can be submitted). */
function neutraliseForms(ctx: Ctx): void {
  const { $ } = ctx;
  $('form').each((_, el) => {
    add(ctx, 'form', `unwrapped <form>${el.attribs.action ? ` posting to ${short(el.attribs.action, 80)}` : ''}`);
    $(el).replaceWith($(el).contents());
  });
  // A button can still submit to its formaction through a form= reference elsewhere.
  $('[formaction], [formmethod], [formtarget]').each((_, el) => {
    if (el.attribs.formaction) add(ctx, 'form', `removed formaction ${short(el.attribs.formaction, 80)} on <${el.tagName}>`);
    for (const a of ['formaction', 'formmethod', 'formtarget']) delete el.attribs[a];
  });
}

/** on* handlers, script/data URLs in URL attributes, and style attributes. */
function cleanAttributes(ctx: Ctx, el: Element): void {
  for (const name of Object.keys(el.attribs)) {
    if (name.startsWith('on')) {
      add(ctx, 'handler', `removed ${name} on <${el.tagName}>`);
      delete el.attribs[name];
    }
  }
  for (const name of URL_ATTRS) {
    const value = el.attribs[name];
    if (value === undefined) continue;
    const imageSrc = name === 'src' || name === 'background';
    const cls = classifyUrl(value, imageSrc);
    if (cls === 'script') add(ctx, 'js-url', `removed ${name}="${short(value, 60)}" on <${el.tagName}>`);
    if (cls === 'data') add(ctx, 'data-url', `removed data: ${name} on <${el.tagName}>`);
    if (cls === 'script' || cls === 'data') delete el.attribs[name];
  }
  // Hyperlink auditing pings report the click to a third party.
  if (el.attribs.ping !== undefined) {
    add(ctx, 'web-bug', `removed ping on <${el.tagName}>`);
    delete el.attribs.ping;
  }
  if (el.attribs.style !== undefined) {
    const r = sanitiseCss(el.attribs.style, ctx.o.remoteImages !== 'keep', `style of <${el.tagName}>`);
    for (const f of r.findings) add(ctx, f.kind, f.detail);
    el.attribs.style = r.css;
  }
}

function cleanStyleSheets(ctx: Ctx): void {
  const { $ } = ctx;
  $('style').each((_, el) => {
    const r = sanitiseCss($(el).text(), ctx.o.remoteImages !== 'keep', '<style>');
    if (r.findings.length === 0) return;
    for (const f of r.findings) add(ctx, f.kind, f.detail);
    // The cleaned CSS has its escapes decoded: a "\3c /style\3e" must not end the element when parsed again.
    $(el).text(r.css.replace(/</g, '\\3c '));
  });
  // Remote style sheets are fetched on open: a web bug, and a way to restyle our notes away.
  $('link[href]').each((_, el) => {
    if (classifyUrl(el.attribs.href, false) === 'ok' || ctx.o.remoteImages === 'keep') return;
    add(ctx, 'web-bug', `removed <link href="${short(el.attribs.href, 60)}">`);
    $(el).remove();
  });
}

function pixels(v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = parseFloat(v);
  return Number.isFinite(n) ? n : null;
}

/** A remote image nobody is meant to see: tiny, or hidden. */
function isTrackingPixel(el: Element): boolean {
  const style = (el.attribs.style ?? '').toLowerCase();
  if (/display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?![.\d])/.test(style)) return true;
  const w = pixels(el.attribs.width) ?? pixels(/(?:^|[;\s])width\s*:\s*([\d.]+)px/.exec(style)?.[1]);
  const h = pixels(el.attribs.height) ?? pixels(/(?:^|[;\s])height\s*:\s*([\d.]+)px/.exec(style)?.[1]);
  const known = [w, h].filter((d): d is number => d !== null);
  return known.length > 0 && known.every((d) => d <= 2);
}

/** Remote images: tracking pixels always removed; others per remoteImages. */
function blockWebBugs(ctx: Ctx): void {
  const { $, o } = ctx;
  $('img[src], input[type="image" i][src], img[srcset]').each((_, el) => {
    const src = el.attribs.src ?? '';
    const remote = classifyUrl(src, true) === 'remote' || /(?:^|,)\s*(?:https?:)?\/\//i.test(el.attribs.srcset ?? '');
    if (!remote) return;
    const host = hostOfUrl(src.startsWith('//') ? `https:${src}` : src) ?? 'a remote server';
    if (isTrackingPixel(el)) {
      add(ctx, 'web-bug', `removed tracking pixel from ${host}`);
      $(el).remove();
    } else if (o.remoteImages === 'remove') {
      add(ctx, 'web-bug', `removed remote image from ${host}`);
      $(el).remove();
    } else if (o.remoteImages === 'placeholder') {
      add(ctx, 'web-bug', `replaced remote image from ${host}`);
      const alt = short(el.attribs.alt ?? '', 60);
      $(el).replaceWith(note($, alt ? `remote image "${alt}" not loaded` : `remote image from ${host} not loaded`));
    }
  });
}

/** Links whose text shows one host and whose target is another: made inert, target shown. */
function phishingNet(ctx: Ctx): void {
  const { $, o } = ctx;
  const reg = o.registrableDomain;
  const safe = new Set(o.phishingSafeSites.map((s) => reg(s.toLowerCase())));
  $('a[href], area[href]').each((_, el) => {
    const real = hostOfUrl(el.attribs.href);
    const shown = claimedHost($(el).text());
    if (!real || !shown || reg(real) === reg(shown) || safe.has(reg(real))) return;
    add(ctx, 'phishing', `link shows ${shown} but goes to ${real}`);
    for (const a of ['href', 'target', 'ping']) delete el.attribs[a];
    $(el).after(note($, `this link claims to go to ${shown} but really goes to ${real}`));
  });
}

function setMetaCharset($: CheerioAPI, charset: string): void {
  $('meta[charset]').attr('charset', charset);
  $('meta[http-equiv="content-type" i]').attr('content', `text/html; charset=${charset}`);
}

// Elements that never nest (void) or close themselves when a sibling opens (optional end tags).
const NON_NESTING = new Set(
  (
    'area base br col embed hr img input link meta param source track wbr p li dt dd tr td th option optgroup ' +
    'rb rt rp thead tbody tfoot colgroup caption html head body'
  ).split(' '),
);

/**
 * Nesting estimated from the tags alone, before parsing: the HTML tree builder checks element
 * scopes by walking the stack of open elements, so deep nesting costs O(tags × depth) to parse
 * (20,000 nested <div> take seconds). Unclosed tags count; implied closes are not modelled, so
 * this errs high, and past the bound the part is "unscannable", never parsed.
 */
function estimateNesting(html: string, stopAt: number): number {
  let depth = 0;
  let max = 0;
  // [^<>]* stops at the next "<": every character is looked at a bounded number of times.
  for (const m of html.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>/g)) {
    const name = m[2].toLowerCase();
    if (NON_NESTING.has(name) || m[3].endsWith('/')) continue;
    depth = m[1] ? Math.max(0, depth - 1) : depth + 1;
    if (depth > max && (max = depth) > stopAt) break;
  }
  return max;
}

const DOCUMENT = /<(?:!doctype|html|head|body)[\s>]/i;
// Every tree here is cheerio's load(html): a document whatever the input, because selections over
// thousands of top-level fragment nodes are quadratic in cheerio, and a mail client renders a
// fragment as a document body anyway.

/** One clean and serialisation of a parsed tree (changed in place); null when nothing had to change. */
function disarmPass($: CheerioAPI, o: DisarmOptions, asDocument: boolean): { html: string; findings: HtmlFinding[]; unlisted: number } | null {
  const ctx: Ctx = { $, o, findings: [], unlisted: 0 };
  removeActive(ctx);
  removeUnstableMarkup($, (kind, detail) => add(ctx, kind, detail));
  replaceFrames(ctx);
  cleanStyleSheets(ctx);
  $('*').each((_, el) => {
    if (isElement(el)) cleanAttributes(ctx, el);
  });
  neutraliseForms(ctx);
  blockWebBugs(ctx);
  if (o.phishingNet) phishingNet(ctx);
  if (ctx.findings.length === 0) return null;
  if (o.outputCharset) setMetaCharset($, o.outputCharset);
  const out = asDocument ? $.html() : `${$('head').html() ?? ''}${$('body').html() ?? ''}`;
  return { html: out, findings: ctx.findings, unlisted: ctx.unlisted };
}

/**
 * Passes over our own output at most: each one parses what the previous one wrote, as the mail
 * client will. Markup that still changes after this many is held as unscannable.
 */
const MAX_PASSES = 4;

/** Disarms one HTML document or fragment. Never throws. */
export function disarmHtml(html: string, options: Partial<DisarmOptions> = {}): DisarmResult {
  return disarmParsed(html, options, () => load(html));
}

/**
 * extractUrls(html, { ...urls, html: true }) and disarmHtml(html, s) for each of `settings`, with
 * one parse of `html` where they can share it (parsing is most of the cost of both): each result
 * is exactly what those functions return. Never throws.
 */
export function extractUrlsAndDisarm(
  html: string,
  urls: Omit<UrlOptions, 'html'>,
  settings: readonly Partial<DisarmOptions>[],
): { hosts: string[]; disarmed: DisarmResult[] } {
  let tree: CheerioAPI | undefined;
  let taken = false;
  const read = () => (tree ??= load(html));
  // The disarm changes the tree it works on: one setting may have the shared tree, the others parse their own.
  const take = () => (taken ? load(html) : ((taken = true), read()));
  // URLs first: the disarm removes scripts, images, link targets and <base>, and adds notes that
  // name hosts; the URL check must see what the sender wrote, as extractUrls does.
  const hosts = urlsOfHtml(html, urls, read);
  return { hosts, disarmed: settings.map((s) => disarmParsed(html, s, take)) };
}

/** disarmHtml, the first pass on the tree `parse` returns: load(html), not yet changed by anyone. */
function disarmParsed(html: string, options: Partial<DisarmOptions>, parse: () => CheerioAPI): DisarmResult {
  const o = { ...DEFAULT_DISARM_OPTIONS, ...options };
  const untouched = (why: string): DisarmResult => ({ html, changed: false, findings: [], unscannable: why });
  if (html.length > o.maxHtmlChars) return untouched(`HTML larger than ${o.maxHtmlChars} characters`);
  try {
    if (estimateNesting(html, o.maxNesting) > o.maxNesting) return untouched(`HTML nested deeper than ${o.maxNesting}`);
    const asDocument = DOCUMENT.test(html);
    // Unchanged input is passed on as it came: the reader's parser builds the tree we judged.
    let pass = disarmPass(parse(), o, asDocument);
    if (!pass) return { html, changed: false, findings: [] };
    const findings = [...pass.findings];
    let unlisted = pass.unlisted;
    // Serialising can change the tree (mutation XSS): the output is parsed and disarmed again
    // until a pass finds nothing, so what we emit is exactly what the next parser will see.
    for (let i = 1; i < MAX_PASSES; i++) {
      const again = disarmPass(load(pass.html), o, asDocument);
      if (!again) {
        if (unlisted > 0 || findings.length > MAX_FINDINGS) {
          const more = unlisted + Math.max(0, findings.length - MAX_FINDINGS);
          findings.splice(MAX_FINDINGS, Infinity, { kind: findings[MAX_FINDINGS - 1].kind, detail: `${more} more changes not listed` });
        }
        return { html: pass.html, changed: true, findings };
      }
      findings.push(...again.findings);
      unlisted += again.unlisted;
      pass = again;
    }
    return untouched(`HTML still changes when parsed again after ${MAX_PASSES} passes (markup built to mutate)`);
  } catch (err) {
    return untouched(`HTML could not be processed: ${(err as Error).message}`);
  }
}
