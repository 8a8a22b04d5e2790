// The bounds every HTML parser of the gateway gets before it builds a tree (URL extraction,
// disarming, the console's preview): element nesting depth and element count, read by one
// streaming pass of htmlparser2's tokenizer (already a cheerio dependency) that keeps only a
// stack of open tag names and stops at the first bound exceeded.
//
// Why: the HTML tree builders (parse5 under cheerio and jsdom) check element scopes by walking
// the stack of open elements, so a deep document costs O(tags × depth): 20,000 nested <div>
// took 4.9 s and 100,000 (1.1 MB, under every size limit) over 60 s of one CPU, during which
// the event loop that answers SMTP and holds the queue's job locks stood still. Past a bound
// the part is "unscannable" (reliability-notes: "Bounds every parser needs"), never parsed,
// never clean.
//
// Depth follows the HTML tree-building rules that matter for nesting (WHATWG HTML §13.2.6):
// void elements never nest; an opening <li>, <dd>, <dt>, <tr>, <td>, <option>… and the block
// elements that close a <p> end the open elements they imply; "/>" closes only inside <svg> and
// <math> (a <div/> stays open, as a browser keeps it); an end tag with no open element of its
// name is ignored. What is not modelled (adoption agency, foster parenting, implied <tbody>)
// adds a few levels at most, and the analysis time budget stays behind this bound.
import { Tokenizer } from 'htmlparser2';

export interface HtmlBounds {
  /** Element nesting depth (config mime.maxHtmlDepth). */
  maxDepth: number;
  /** Elements in one HTML part (config mime.maxHtmlElements). */
  maxElements: number;
}

export const DEFAULT_HTML_BOUNDS: HtmlBounds = { maxDepth: 512, maxElements: 100_000 };

const words = (s: string) => new Set(s.split(' '));
const VOID = words('area base basefont bgsound br col embed frame hr image img input keygen link meta param source track wbr');
/** The document's own wrappers: parse5 makes exactly one of each whatever the markup says. */
const WRAPPERS = words('html head body');
const CLOSES_P = words(
  'address article aside blockquote center details dialog dir div dl fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr listing main menu nav ol p pre search section summary table ul xmp',
);
/** Opening the key ends these elements while they are on top of the stack. */
const IMPLIES_END: Record<string, Set<string>> = {
  li: words('p li'),
  dd: words('p dd dt'),
  dt: words('p dd dt'),
  option: words('option'),
  optgroup: words('option optgroup'),
  tr: words('td th tr'),
  td: words('td th'),
  th: words('td th'),
  tbody: words('td th tr tbody thead tfoot'),
  thead: words('td th tr tbody thead tfoot'),
  tfoot: words('td th tr tbody thead tfoot'),
  rb: words('rb rt rp rtc'),
  rt: words('rb rt rp'),
  rp: words('rb rt rp'),
};
const P_ONLY = words('p');
const FOREIGN = words('svg math');

class BoundExceeded extends Error {}

class OpenElements {
  stack: string[] = [];
  /** How many of each name are open: an end tag for a name not open costs O(1). */
  open = new Map<string, number>();
  foreign = 0;
  elements = 0;
  bounds: HtmlBounds;

  constructor(bounds: HtmlBounds) {
    this.bounds = bounds;
  }

  pop(): void {
    const name = this.stack.pop()!;
    this.open.set(name, this.open.get(name)! - 1);
    if (FOREIGN.has(name)) this.foreign--;
  }

  start(name: string): void {
    if (++this.elements > this.bounds.maxElements) throw new BoundExceeded(`HTML with more than ${this.bounds.maxElements} elements`);
    if (VOID.has(name) || WRAPPERS.has(name)) return;
    const ends = IMPLIES_END[name] ?? (CLOSES_P.has(name) ? P_ONLY : undefined);
    while (ends && this.stack.length > 0 && ends.has(this.stack[this.stack.length - 1])) this.pop();
    this.stack.push(name);
    this.open.set(name, (this.open.get(name) ?? 0) + 1);
    if (FOREIGN.has(name)) this.foreign++;
    if (this.stack.length > this.bounds.maxDepth) throw new BoundExceeded(`HTML nested deeper than ${this.bounds.maxDepth} elements`);
  }

  selfClosing(name: string): void {
    if (this.foreign > 0 && this.stack[this.stack.length - 1] === name) this.pop();
  }

  end(name: string): void {
    if (!this.open.get(name)) return;
    while (this.stack[this.stack.length - 1] !== name) this.pop();
    this.pop();
  }
}

/** Why the HTML is past a bound (a line for the report), or null when it is within them. */
export function htmlBoundExceeded(html: string, bounds: HtmlBounds = DEFAULT_HTML_BOUNDS): string | null {
  const els = new OpenElements(bounds);
  let current = '';
  const name = (start: number, end: number) => html.slice(start, end).toLowerCase();
  const ignore = () => {};
  const tokenizer = new Tokenizer(
    { xmlMode: false, decodeEntities: false },
    {
      onopentagname(start, end) {
        current = name(start, end);
        els.start(current);
      },
      onselfclosingtag: () => els.selfClosing(current),
      onclosetag: (start, end) => els.end(name(start, end)),
      onattribdata: ignore,
      onattribentity: ignore,
      onattribend: ignore,
      onattribname: ignore,
      oncdata: ignore,
      oncomment: ignore,
      ondeclaration: ignore,
      onend: ignore,
      onopentagend: ignore,
      onprocessinginstruction: ignore,
      ontext: ignore,
      ontextentity: ignore,
    },
  );
  try {
    tokenizer.write(html);
    tokenizer.end();
    return null;
  } catch (err) {
    if (err instanceof BoundExceeded) return err.message;
    // The tokenizer does not throw for what a document contains; if it ever does, nobody parses it.
    return `HTML could not be pre-scanned: ${(err as Error).message}`;
  }
}
