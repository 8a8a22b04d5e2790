// One streaming pass over the text parts of a message, for what the verdict needs before any copy
// is written: the hosts the bodies name (URL checks) and what disarming the HTML would change
// (phishing links, whether the copy gets <Cleaned>). Parts are numbered as the MIME walk and the
// rewrite number them (scanners/part-ids.ts), and each HTML part is decoded and disarmed exactly
// as the rewrite will (scanners/disarm-rewrite.ts), so the findings predicted here are the ones
// the delivered copy gets.
//
// Bounds: an HTML part is buffered up to maxHtmlPartBytes (encoded; past it: 'unscannable-html',
// as the rewrite reports it), a text/plain part is read for URLs up to maxTextPartBytes. An HTML
// part past the nesting or element bounds (scanners/html-bounds.ts) is never parsed: it is
// 'unscannable-html', and the hosts its raw text names are still looked up. A structure the
// splitter refuses ends the pass early (the walk reports the message malformed).
//
// CPU: this pass parses HTML (once per part, for the URLs and the disarm prediction alike), so the
// gateway runs it in a worker thread with a time budget (analysis-pool.ts); everything in
// TextScanOptions but `registrableDomain` is plain data.
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Readable, Transform } from 'node:stream';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { decodeHtml } from '../../scanners/html-charset.ts';
import { getDomain } from 'tldts';
import { DEFAULT_HTML_BOUNDS, htmlBoundExceeded, type HtmlBounds } from '../../scanners/html-bounds.ts';
import { extractUrlsAndDisarm, type DisarmOptions, type DisarmResult } from '../../scanners/html-disarm.ts';
import { extractUrls } from '../../scanners/html-urls.ts';
import { hostsInText } from '../../scanners/url-hosts.ts';
import { createSplitter } from '../../scanners/splitter.ts';
import { PartNumberer } from '../../scanners/part-ids.ts';
import type { HtmlScan, PhishingLink } from '../../scanners/types.ts';
import type { DisarmSettings } from '../../rules/actions.ts';

export interface TextScanOptions {
  maxParts: number;
  maxHeaderBytes: number;
  maxHtmlPartBytes: number;
  maxTextPartBytes: number;
  /** Hosts collected at most (message-wide). */
  maxHosts: number;
  /** One disarm prediction per distinct setting (usually one). */
  disarm: DisarmSettings[];
  registrableDomain: (host: string) => string;
  /** Checked before any HTML part is parsed; default DEFAULT_HTML_BOUNDS. */
  htmlBounds?: HtmlBounds;
}

/** Registrable domain by the Public Suffix List (tldts), private suffixes included (a.github.io ≠ b.github.io). */
export function registrableDomain(host: string): string {
  return getDomain(host, { allowPrivateDomains: true }) ?? host.toLowerCase();
}

export interface TextScanResult {
  /** Hosts in all bodies, unique, in order of appearance. */
  hosts: string[];
  /** More hosts were named than were kept. */
  truncated: boolean;
  /** Per disarm setting (key: disarmKey(setting)): what disarming finds. */
  html: Map<string, HtmlScan & { status: 'checked' }>;
  /** Every part was read to the end: false when the pass stopped early (a structure the splitter refused). */
  complete: boolean;
}

/** Settings objects are shared per config generation (rules/actions.ts), so their keys are too. */
const keys = new WeakMap<DisarmSettings, string>();
export function disarmKey(s: DisarmSettings): string {
  let key = keys.get(s);
  if (key === undefined) {
    key = JSON.stringify(s);
    if (Object.isFrozen(s)) keys.set(s, key);
  }
  return key;
}

const PHISH = /^link shows (\S+) but goes to (\S+)$/;

async function decodeAll(decoder: Transform, input: Buffer[], max: number): Promise<Buffer> {
  const out: Buffer[] = [];
  let size = 0;
  decoder.on('data', (c: Buffer) => {
    if (size < max) out.push(c);
    size += c.length;
  });
  const done = once(decoder, 'end');
  for (const chunk of input) if (!decoder.write(chunk)) await once(decoder, 'drain');
  decoder.end();
  await done;
  return Buffer.concat(out).subarray(0, max);
}

interface Leaf {
  node: MimeNode;
  id: string;
  html: boolean;
  chunks: Buffer[];
  size: number;
}

class Collector {
  o: TextScanOptions;
  hosts = new Set<string>();
  truncated = false;
  html = new Map<string, HtmlScan & { status: 'checked' }>();

  bounds: HtmlBounds;

  constructor(o: TextScanOptions) {
    this.o = o;
    this.bounds = o.htmlBounds ?? DEFAULT_HTML_BOUNDS;
    for (const s of o.disarm) this.html.set(disarmKey(s), { status: 'checked', parts: 0, findings: [], phishing: [], changed: false, dangerous: false });
  }

  addHosts(found: string[]): void {
    for (const h of found) {
      if (this.hosts.size >= this.o.maxHosts) {
        if (!this.hosts.has(h)) this.truncated = true;
        continue;
      }
      this.hosts.add(h);
    }
  }

  async finish(leaf: Leaf): Promise<void> {
    if (!leaf.html) {
      const text = await decodeAll(leaf.node.getDecoder(), leaf.chunks, this.o.maxTextPartBytes);
      const decoder = leaf.node.charset ? safeDecoder(leaf.node.charset) : new TextDecoder('utf-8');
      this.addHosts(extractUrls(decoder.decode(text), { html: false, max: this.o.maxHosts + 1 }));
      return;
    }
    for (const scan of this.html.values()) scan.parts++;
    if (leaf.size > this.o.maxHtmlPartBytes) {
      const detail = `HTML part larger than ${this.o.maxHtmlPartBytes} bytes was not disarmed`;
      for (const scan of this.html.values()) scan.findings.push({ part: leaf.id, kind: 'unscannable-html', detail });
      return;
    }
    const decoded = await decodeAll(leaf.node.getDecoder(), leaf.chunks, Number.MAX_SAFE_INTEGER);
    const { text } = decodeHtml(decoded, leaf.node.charset || null);
    const bound = htmlBoundExceeded(text, this.bounds);
    if (bound) {
      for (const scan of this.html.values()) scan.findings.push({ part: leaf.id, kind: 'unscannable-html', detail: bound });
      this.addHosts(hostsInText(text, this.o.maxHosts + 1));
      return;
    }
    // One parse of the part for the URLs and the disarm prediction.
    const { hosts, disarmed } = extractUrlsAndDisarm(
      text,
      { max: this.o.maxHosts + 1, maxHtmlChars: this.o.maxHtmlPartBytes },
      this.o.disarm.map((s) => this.disarmOptions(s)),
    );
    this.addHosts(hosts);
    this.o.disarm.forEach((s, i) => this.predict(leaf.id, s, disarmed[i]));
  }

  disarmOptions(s: DisarmSettings): Partial<DisarmOptions> {
    return { ...s, registrableDomain: this.o.registrableDomain, maxHtmlChars: this.o.maxHtmlPartBytes, maxNesting: this.bounds.maxDepth };
  }

  /** What disarming the part with setting `s` found, `r`, added to that setting's scan. */
  predict(part: string, s: DisarmSettings, r: DisarmResult): void {
    const scan = this.html.get(disarmKey(s))!;
    if (r.unscannable) scan.findings.push({ part, kind: 'unscannable-html', detail: r.unscannable });
    if (!r.changed) return;
    scan.changed = true;
    for (const f of r.findings) {
      scan.findings.push({ part, ...f });
      if (f.kind !== 'web-bug') scan.dangerous = true;
      const m = f.kind === 'phishing' ? PHISH.exec(f.detail) : null;
      if (m) scan.phishing.push({ part, shown: m[1], real: m[2] } satisfies PhishingLink);
    }
  }
}

function safeDecoder(charset: string): InstanceType<typeof TextDecoder> {
  try {
    return new TextDecoder(charset.split('*')[0].trim());
  } catch {
    return new TextDecoder('windows-1252');
  }
}

/**
 * The text scan's side of a pass over a splitter's chunks (its own splitter in scanText, or the
 * one pass shared with the MIME walk, mime-pass.ts). A chunk it cannot handle ends its part of
 * the pass: the result is what was found up to there, as when the splitter refuses a structure.
 */
export class TextConsumer {
  readonly o: TextScanOptions;
  c: Collector;
  numberer = new PartNumberer();
  leaf: Leaf | undefined;
  complete = false;

  constructor(o: TextScanOptions) {
    this.o = o;
    this.c = new Collector(o);
  }

  async close(): Promise<void> {
    const l = this.leaf;
    this.leaf = undefined;
    if (l) await this.c.finish(l);
  }

  async take(obj: SplitterChunk): Promise<void> {
    const o = this.o;
    if (obj.type === 'node') {
      await this.close();
      this.numberer.see(obj);
      const leafNode = !obj.multipart && !obj.messageNode;
      // Every HTML leaf, as the rewrite disarms every one; plain text only when it is a body, not an attached file.
      const html = leafNode && obj.contentType === 'text/html';
      const body = leafNode && (obj.contentType === 'text/plain' || !obj.contentType) && obj.disposition !== 'attachment';
      if (html || body) this.leaf = { node: obj, id: this.numberer.idOf(obj), html: obj.contentType === 'text/html', chunks: [], size: 0 };
      return;
    }
    const leaf = this.leaf;
    if (obj.type === 'body' && leaf && obj.node === leaf.node) {
      leaf.size += obj.value.length;
      const cap = leaf.html ? o.maxHtmlPartBytes : o.maxTextPartBytes * 4;
      if (leaf.size <= cap) leaf.chunks.push(obj.value);
      return;
    }
    await this.close();
  }

  async end(): Promise<TextScanResult> {
    await this.close();
    this.complete = true;
    return this.result();
  }

  result(): TextScanResult {
    return { hosts: [...this.c.hosts], truncated: this.c.truncated, html: this.c.html, complete: this.complete };
  }
}

/** Reads the message once; never throws for what the message contains (rejects on input errors). */
export async function scanText(input: Readable, o: TextScanOptions): Promise<TextScanResult> {
  const t = new TextConsumer(o);
  const splitter = createSplitter(o);
  let inputError: Error | undefined;
  input.on('error', (e) => {
    inputError = e;
    splitter.destroy(e);
  });
  input.pipe(splitter);
  try {
    for await (const obj of splitter as AsyncIterable<SplitterChunk>) await t.take(obj);
    return await t.end();
  } catch {
    // What the message contains never throws: a part the splitter cannot follow ends the scan with
    // what was read so far. Only a failing input (the spool file) is an error.
    if (inputError) throw inputError;
    input.unpipe(splitter);
    input.destroy();
    splitter.destroy();
  }
  return t.result();
}

/** scanText of a spooled file: what a worker thread runs (analysis-pool.ts). */
export function scanTextFile(file: string, o: TextScanOptions): Promise<TextScanResult> {
  return scanText(createReadStream(file), o);
}
