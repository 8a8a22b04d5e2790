// Hosts a body links to or mentions, for the URL blocklist look-ups: link and resource targets,
// CSS url()s, and URLs or domain names written in the text. An HTML part's tree can be the one
// the disarm also works on (html-disarm.ts extractUrlsAndDisarm): parsing is most of the cost.
import type { CheerioAPI } from 'cheerio';
import { load } from './cheerio-load.ts';
import type { AnyNode, Element } from 'domhandler';
import { hostOfUrl, hostsInText } from './url-hosts.ts';

/** Characters of HTML parsed at most by default, for URLs as for the disarm. */
export const DEFAULT_MAX_HTML_CHARS = 2 * 1024 * 1024;

/** Attributes whose value is a URL the reader's client may load or follow. */
export const URL_ATTRS = [
  'href',
  'src',
  'action',
  'formaction',
  'xlink:href',
  'background',
  'lowsrc',
  'dynsrc',
  'poster',
  'data',
  'codebase',
  'cite',
  'longdesc',
  'manifest',
  'ping',
];

export interface UrlOptions {
  /** Read the input as HTML (true) or text (false); by default guessed from the content. */
  html?: boolean;
  /** Hosts returned at most. */
  max?: number;
  /** Characters of HTML parsed at most; past it the input is read as text. */
  maxHtmlChars?: number;
}

const LOOKS_HTML = /<(?:!doctype|html|head|body|div|p|a|table|td|br|span|img|font|center)[\s>/]/i;
const CSS_URL = /url\(\s*['"]?([^'"()\s]{1,4096})/gi;

const isElement = (n: AnyNode): n is Element => 'attribs' in n;

/** Lower-case, punycoded, unique hosts of `input`. */
export function extractUrls(input: string, o: UrlOptions = {}): string[] {
  const asHtml = o.html ?? LOOKS_HTML.test(input);
  if (!asHtml) return hostsInText(input, o.max ?? 500);
  return urlsOfHtml(input, o, () => load(input));
}

/**
 * extractUrls of HTML, its tree from `parse` (`load(input)` or the same tree already built):
 * called at most once, and the tree is only read, so it can be disarmed afterwards.
 */
export function urlsOfHtml(input: string, o: Omit<UrlOptions, 'html'>, parse: () => CheerioAPI): string[] {
  const max = o.max ?? 500;
  if (input.length > (o.maxHtmlChars ?? DEFAULT_MAX_HTML_CHARS)) return hostsInText(input, max);
  const hosts: string[] = [];
  try {
    const $ = parse();
    // One walk of the tree, in document order, instead of a selector pass per kind ($('*'),
    // $('style')): the selector engine was a third of the analysis thread's time. The hosts keep
    // the order those passes gave (attributes, then style sheets, then text) — `max` cuts by it.
    const styles: string[] = [];
    // Text nodes one by one: adjacent elements would glue "f.co.uk" and "More" into "f.co.ukMore".
    const texts: string[] = [];
    const stack: AnyNode[] = $.root().toArray();
    while (stack.length) {
      const n = stack.pop()!;
      if (n.type === 'text' && texts.length < 100_000) texts.push((n as unknown as { data: string }).data);
      if (isElement(n)) {
        for (const name of URL_ATTRS) {
          const v = n.attribs[name];
          const h = v === undefined ? null : hostOfUrl(v.startsWith('//') ? `http:${v}` : v);
          if (h) hosts.push(h);
        }
        for (const m of (n.attribs.style ?? '').matchAll(CSS_URL)) hosts.push(...hostsInText(m[1], max));
        if (n.name === 'style') styles.push($(n).text());
      }
      if ('children' in n) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
    }
    for (const sheet of styles) for (const m of sheet.matchAll(CSS_URL)) hosts.push(...hostsInText(m[1], max));
    hosts.push(...hostsInText(texts.join(' '), max));
  } catch {
    hosts.push(...hostsInText(input, max)); // unparsable: the raw text still names its hosts
  }
  return [...new Set(hosts)].slice(0, max);
}
