// Streaming message rewrite: every text/html leaf is disarmed (scanners/html-disarm.ts); every
// other byte goes through untouched. mailsplit Splitter → HtmlPartDisarmer → Joiner.
//
// Why not mailsplit's Rewriter: it re-encodes every selected part even when nothing in it
// changed (7bit becomes quoted-printable), so a clean HTML part would no longer be
// byte-identical and DKIM body hashes would break for nothing. Here an HTML part is buffered
// (bounded), disarmed, and only a part that changed is re-encoded; an unchanged one, or one too
// large to disarm (reported as 'unscannable-html' and left as is), is passed on byte for byte.
// The HTML bounds (html-bounds.ts) are checked before the part is parsed: past them, the same.
//
// The subject tag (<Cleaned>) is the caller's job: it needs `changed` to decide.

import { once } from 'node:events';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Joiner } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { decodeHtml } from './html-charset.ts';
import { DEFAULT_HTML_BOUNDS, htmlBoundExceeded, type HtmlBounds } from './html-bounds.ts';
import { DEFAULT_DISARM_OPTIONS, disarmHtml, type DisarmOptions, type DisarmResult, type HtmlFindingKind } from './html-disarm.ts';
import { DEFAULT_WALK_LIMITS } from './mime-walk.ts';
import { createSplitter } from './splitter.ts';
import { PartNumberer } from './part-ids.ts';

export interface DisarmRewriteOptions extends DisarmOptions {
  /** Encoded bytes of one HTML part buffered for disarming; larger parts pass as they are. */
  maxHtmlPartBytes: number;
  /** Splitter bounds; keep them equal to the walk's so part ids agree. */
  maxHeaderBytes: number;
  maxParts: number;
  /** Checked before an HTML part is parsed. */
  htmlBounds: HtmlBounds;
  /** Runs disarmHtml elsewhere (a worker thread with a time budget); a rejection fails the rewrite. */
  runDisarm?: (html: string, o: Partial<DisarmOptions>) => Promise<DisarmResult>;
}

export const DEFAULT_REWRITE_OPTIONS: DisarmRewriteOptions = {
  ...DEFAULT_DISARM_OPTIONS,
  maxHtmlPartBytes: 4 * 1024 * 1024,
  maxHeaderBytes: DEFAULT_WALK_LIMITS.maxHeaderBytes,
  maxParts: DEFAULT_WALK_LIMITS.maxParts,
  htmlBounds: DEFAULT_HTML_BOUNDS,
};

export type RewriteFindingKind = HtmlFindingKind | 'unscannable-html';

export interface RewriteFinding {
  /** Part id, as in MessageFacts (scanners/part-ids.ts). */
  part: string;
  kind: RewriteFindingKind;
  detail: string;
}

export interface DisarmReport {
  /** True when at least one HTML part was rewritten. */
  changed: boolean;
  findings: RewriteFinding[];
}

interface Pending {
  node: MimeNode;
  id: string;
  chunks: Buffer[];
  size: number;
  overflow: boolean;
}

async function runThrough(stream: Transform, input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  const done = once(stream, 'end');
  stream.end(input);
  await done;
  return Buffer.concat(out);
}

const has8bit = (b: Buffer) => b.some((x) => x > 0x7f);
const longLines = (b: Buffer) =>
  b
    .toString('latin1')
    .split('\n')
    .some((l) => l.length > 998);

/** Keeps the part's transfer encoding unless the new bytes cannot travel in it (RFC 5322 §2.1.1). */
function transferEncoding(node: MimeNode, bytes: Buffer): string | false {
  const enc = node.encoding || '7bit';
  if (enc === 'base64' || enc === 'quoted-printable') return false;
  const eightBitOk = enc === '8bit' || enc === 'binary';
  return longLines(bytes) || (!eightBitOk && has8bit(bytes)) ? 'quoted-printable' : false;
}

/** The body keeps ending (or not) in a line break as the original did. */
function sameEnding(original: Buffer, out: Buffer): Buffer {
  const endsNl = (b: Buffer) => b.length > 0 && b[b.length - 1] === 0x0a;
  if (endsNl(original) && !endsNl(out)) return Buffer.concat([out, Buffer.from('\r\n')]);
  if (!endsNl(original) && endsNl(out)) return out.subarray(0, out.length - (out.at(-2) === 0x0d ? 2 : 1));
  return out;
}

/**
 * The object-mode stage of disarmMessage (splitter chunks in, chunks out), exported so that a
 * caller can run it in one pipeline with other per-part edits (gateway/pipeline/rewrite.ts).
 * The part ids it reports assume it sees every node the splitter emits, in order.
 */
export class HtmlPartDisarmer extends Transform {
  o: DisarmRewriteOptions;
  report: DisarmReport = { changed: false, findings: [] };
  numberer = new PartNumberer();
  pending: Pending | undefined;

  constructor(o: DisarmRewriteOptions) {
    super({ objectMode: true });
    this.o = o;
  }

  override _transform(obj: SplitterChunk, _enc: BufferEncoding, cb: TransformCallback): void {
    this.handle(obj).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.finish().then(() => cb(), cb);
  }

  async handle(obj: SplitterChunk): Promise<void> {
    if (obj.type === 'node') {
      await this.finish();
      this.numberer.see(obj);
      const htmlLeaf = !obj.multipart && !obj.messageNode && obj.contentType === 'text/html';
      if (htmlLeaf) this.pending = { node: obj, id: this.numberer.idOf(obj), chunks: [], size: 0, overflow: false };
      else this.push(obj);
      return;
    }
    const p = this.pending;
    if (p && obj.type === 'body' && obj.node === p.node) return this.collectBody(p, obj.value);
    await this.finish();
    this.push(obj);
  }

  collectBody(p: Pending, value: Buffer): void {
    if (p.overflow) {
      this.push({ node: p.node, type: 'body', value });
      return;
    }
    p.chunks.push(value);
    p.size += value.length;
    if (p.size <= this.o.maxHtmlPartBytes) return;
    p.overflow = true;
    const detail = `HTML part larger than ${this.o.maxHtmlPartBytes} bytes was not disarmed`;
    this.report.findings.push({ part: p.id, kind: 'unscannable-html', detail });
    this.push(p.node);
    this.push({ node: p.node, type: 'body', value: Buffer.concat(p.chunks) });
    p.chunks = [];
  }

  async finish(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (!p || p.overflow) return;
    const raw = Buffer.concat(p.chunks);
    const rewritten = await this.rewrite(p, raw);
    this.push(p.node); // after rewrite(): the joiner serialises the node's (possibly updated) headers
    this.push({ node: p.node, type: 'body', value: rewritten ?? raw });
  }

  /** The new encoded body, or null to keep the original bytes. */
  async rewrite(p: Pending, raw: Buffer): Promise<Buffer | null> {
    const decoded = await runThrough(p.node.getDecoder(), raw);
    const { text, codec } = decodeHtml(decoded, p.node.charset || null);
    const bound = htmlBoundExceeded(text, this.o.htmlBounds);
    if (bound) {
      this.report.findings.push({ part: p.id, kind: 'unscannable-html', detail: bound });
      return null;
    }
    const disarm = this.o.runDisarm ?? disarmHtml;
    const r = await disarm(text, {
      ...this.o,
      maxHtmlChars: this.o.maxHtmlPartBytes,
      maxNesting: this.o.htmlBounds.maxDepth,
      outputCharset: codec.switched ? codec.charset : undefined,
    });
    if (r.unscannable) this.report.findings.push({ part: p.id, kind: 'unscannable-html', detail: r.unscannable });
    if (!r.changed) return null;
    this.report.changed = true;
    this.report.findings.push(...r.findings.map((f) => ({ part: p.id, ...f })));
    // Text/* travels with CRLF line breaks (RFC 2046 §4.1.1); the HTML parser turned them into LF.
    const bytes = codec.encode(r.html.replace(/\r?\n/g, '\r\n'));
    if (codec.switched || (codec.undeclared && has8bit(bytes))) p.node.setCharset(codec.charset);
    const encoded = await runThrough(p.node.getEncoder(transferEncoding(p.node, bytes)), bytes);
    return sameEnding(raw, encoded);
  }
}

/**
 * Copies a message from input to output, disarming every text/html part. Rejects when a stream
 * fails or the MIME structure breaks a splitter bound; the output is then incomplete and must be
 * discarded (run the MIME walk first: a malformed message is not rewritten).
 */
export async function disarmMessage(input: Readable, output: Writable, options: Partial<DisarmRewriteOptions> = {}): Promise<DisarmReport> {
  const o = { ...DEFAULT_REWRITE_OPTIONS, ...options };
  const disarmer = new HtmlPartDisarmer(o);
  await pipeline(input, createSplitter(o), disarmer, new Joiner(), output);
  return disarmer.report;
}
