// What the HTML disarmer keeps of markup that parses differently the second time (mutation XSS).
// The disarmer parses, cleans and serialises; the mail client parses the result again. Where the
// second parse builds another tree than the first, content that was text or an attribute value in
// our tree becomes live markup in the reader's (the DOMPurify bypass history: namespace confusion
// between HTML, SVG and MathML; <style>, <title> and <desc> switching between raw text and markup;
// <noscript>, whose content is text or markup depending on whether the parser runs scripts).
//
// So foreign content is kept by an allow-list: static SVG drawing elements only (no style, no
// text integration points such as <desc>, <title>, <foreignObject>, no animation, no
// <use>/<image> that load other documents); MathML not at all (mail clients do not render it).
// Elements whose content is text for one parser and markup for another go entirely.
import type { CheerioAPI } from 'cheerio';
import type { AnyNode, Element } from 'domhandler';
import type { HtmlFindingKind } from './html-css.ts';

const HTML_NS = 'http://www.w3.org/1999/xhtml';
const SVG_NS = 'http://www.w3.org/2000/svg';

/** SVG elements that draw and nothing else. */
export const SVG_ALLOWED = new Set([
  'svg',
  'g',
  'a',
  'defs',
  'path',
  'rect',
  'circle',
  'ellipse',
  'line',
  'polyline',
  'polygon',
  'text',
  'tspan',
  'lineargradient',
  'radialgradient',
  'stop',
  'clippath',
  'symbol',
]);

/**
 * HTML elements whose content one parser reads as text and another as markup (scripting on or off,
 * template contents), or that only old engines render: removed with their content. <select>: since
 * the 2025 "customizable select" change to the HTML parser, browsers (chromium 135+) build any
 * element inside it, where parse5 (and older parsers) drop those tags: "<select><img src=x
 * onerror=…>" is text to us and a live image to the reader (found by the fuzz test in chromium).
 */
const UNSTABLE_HTML = new Set(['noscript', 'template', 'noembed', 'noframes', 'select']);

const isElement = (n: AnyNode): n is Element => 'attribs' in n;

/** Removes foreign content outside the allow-list and parser-dependent elements; reports each removal. */
export function removeUnstableMarkup($: CheerioAPI, add: (kind: HtmlFindingKind, detail: string) => void): void {
  const doomed: Element[] = [];
  const stack: AnyNode[] = $.root().toArray();
  // Depth-first by hand: an element removed takes its subtree with it, so its children are not visited.
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (isElement(n) && !keep(n)) {
      doomed.push(n);
      continue;
    }
    if ('children' in n) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  for (const el of doomed) {
    const ns = el.namespace === SVG_NS ? 'SVG ' : el.namespace === HTML_NS ? '' : 'MathML ';
    add('unstable-markup', `removed ${ns}<${el.tagName}>: its content would parse differently in the reader's mail client`);
    $(el).remove();
  }
}

function keep(el: Element): boolean {
  const name = el.tagName.toLowerCase();
  if (el.namespace === undefined || el.namespace === HTML_NS) return !UNSTABLE_HTML.has(name);
  return el.namespace === SVG_NS && SVG_ALLOWED.has(name);
}
