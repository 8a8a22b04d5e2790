// Streaming walk of one message: per leaf part, what it declares (type, names) and what it is
// (size, first bytes, zip contents). Bodies are decoded on the fly and dropped; only the first
// bytes of each part are kept, and a zip is buffered up to a cap so it can be listed.
//
// Bounds (reliability-notes: "Bounds every parser needs"): MIME node count, nesting depth and
// header bytes per node end the walk with outcome "malformed"; a zip past its cap or a bomb bound
// is "unscannable" on its part. The walk never throws for what a message contains; it rejects only
// when the input stream itself fails (an I/O problem the caller turns into a tempfail).
// A walk that stops early destroys the input stream, as stream.pipeline would.

import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import type { ArchiveFacts, MessageFacts, MessageOutcome, PartFacts } from './facts.ts';
import { isZip, sniff, SNIFF_BYTES } from './magic.ts';
import { parseHeaderValue } from './mime-params.ts';
import { depthOf, PartNumberer } from './part-ids.ts';
import { createSplitter } from './splitter.ts';
import { DEFAULT_ZIP_LIMITS, inspectZip, type ZipLimits } from './zip-inspect.ts';

export interface WalkLimits {
  /** MIME nodes (containers included) across the message and attached messages. */
  maxParts: number;
  /** Containers above a leaf, attached messages included. */
  maxDepth: number;
  /** Header block bytes per MIME node (mailsplit maxHeadSize). */
  maxHeaderBytes: number;
  /** Leading decoded bytes kept per part in PartFacts.head. */
  headBytes: number;
  /** Decoded bytes of a zip part buffered to list it; past this the part is unscannable. */
  maxArchiveBytes: number;
  zip: ZipLimits;
  /** Walk into attached message/rfc822 parts (an .eml is a container like a zip). */
  embeddedMessages: boolean;
}

export const DEFAULT_WALK_LIMITS: WalkLimits = {
  maxParts: 500,
  maxDepth: 20,
  maxHeaderBytes: 256 * 1024,
  headBytes: 512,
  maxArchiveBytes: 20 * 1024 * 1024,
  zip: DEFAULT_ZIP_LIMITS,
  embeddedMessages: true,
};

export { splitterOptions } from './splitter.ts';

export interface WalkContext {
  limits: WalkLimits;
  budget: { nodes: number };
  depthOffset: number;
}

class Abort extends Error {}

function headerNames(node: MimeNode, header: string, param: string): string[] {
  const lines = node.headers ? node.headers.get(header) : [];
  return [...new Set(lines.flatMap((l) => parseHeaderValue(l).params.get(param) ?? []))];
}

/** Collects the facts of one leaf while its body streams through the decoder. */
class Leaf {
  node: MimeNode;
  facts: PartFacts;
  ctx: WalkContext;
  decoder: ReturnType<MimeNode['getDecoder']>;
  chunks: Buffer[] = [];
  kept = 0;
  keep = true;
  zip: boolean | undefined;
  zipOverflow = false;
  nested: { input: PassThrough; result: Promise<MessageFacts> } | undefined;

  constructor(node: MimeNode, id: string, ctx: WalkContext) {
    this.node = node;
    this.ctx = ctx;
    const names = { contentType: headerNames(node, 'Content-Type', 'name'), disposition: headerNames(node, 'Content-Disposition', 'filename') };
    this.facts = {
      id,
      depth: depthOf(node) + ctx.depthOffset,
      contentType: node.contentType || 'text/plain',
      charset: node.charset || null,
      disposition: node.disposition || null,
      transferEncoding: node.encoding || null,
      names,
      filename: names.disposition[0] ?? names.contentType[0] ?? null,
      encodedSize: 0,
      size: 0,
      head: new Uint8Array(0),
      detected: null,
    };
    this.decoder = node.getDecoder();
    this.decoder.on('data', (d: Buffer) => this.onDecoded(d));
    const embedded = node.contentType === 'message/rfc822' || node.contentType === 'message/global';
    if (embedded && ctx.limits.embeddedMessages) this.startNested();
  }

  startNested(): void {
    const input = new PassThrough();
    const ctx = { ...this.ctx, depthOffset: this.facts.depth + 1 };
    const result = walk(input, ctx);
    // Awaited in finish(); this keeps an abandoned walk (outer abort) from an unhandled rejection.
    result.catch(() => undefined);
    this.nested = { input, result };
  }

  onDecoded(d: Buffer): void {
    this.facts.size += d.length;
    if (this.keep) {
      this.chunks.push(d);
      this.kept += d.length;
      if (this.zip === undefined && this.kept >= 4) this.zip = isZip(Buffer.concat(this.chunks).subarray(0, 4));
      const cap = this.zip ? this.ctx.limits.maxArchiveBytes : SNIFF_BYTES;
      if (this.kept > cap) {
        this.keep = false;
        this.zipOverflow = this.zip === true;
        if (this.zip) this.chunks = [Buffer.concat(this.chunks).subarray(0, SNIFF_BYTES)];
      }
    }
    if (this.nested && !this.nested.input.destroyed) this.nested.input.write(d);
  }

  async write(raw: Buffer): Promise<void> {
    this.facts.encodedSize += raw.length;
    if (!this.decoder.write(raw)) await once(this.decoder, 'drain');
    const n = this.nested;
    if (n && n.input.writableNeedDrain && !n.input.destroyed) {
      // Backpressure from the nested walk; its end (early abort) releases us too.
      await Promise.race([once(n.input, 'drain'), n.result]);
    }
  }

  async finish(): Promise<{ part: PartFacts; nested?: MessageFacts }> {
    const ended = once(this.decoder, 'end');
    this.decoder.end();
    await ended;
    const all = Buffer.concat(this.chunks);
    this.facts.head = Uint8Array.from(all.subarray(0, this.ctx.limits.headBytes));
    this.facts.detected = sniff(all);
    if (this.zip) this.facts.archive = await this.archive(all);
    this.chunks = [];
    if (!this.nested) return { part: this.facts };
    this.nested.input.end();
    return { part: this.facts, nested: await this.nested.result };
  }

  async archive(all: Buffer): Promise<ArchiveFacts> {
    if (this.zipOverflow) {
      const reason = `zip larger than ${this.ctx.limits.maxArchiveBytes} bytes`;
      return { format: 'zip', status: 'unscannable', reason, entries: [] };
    }
    return inspectZip(all, this.ctx.limits.zip);
  }
}

/** Adds the parts of an attached message under its part id; its trouble makes ours unscannable. */
function merge(facts: MessageFacts, leaf: PartFacts, inner: MessageFacts): void {
  for (const p of inner.parts) facts.parts.push({ ...p, id: `${leaf.id}.${p.id}` });
  facts.maxDepth = Math.max(facts.maxDepth, inner.maxDepth);
  facts.nodeCount += inner.nodeCount;
  if (inner.outcome.status !== 'ok' && facts.outcome.status === 'ok') {
    facts.outcome = { status: 'unscannable', reason: `part ${leaf.id} (attached message): ${inner.outcome.reason}` };
  }
}

function checkNode(node: MimeNode, ctx: WalkContext, facts: MessageFacts): void {
  ctx.budget.nodes++;
  facts.nodeCount++;
  facts.bytes += node._headerlen;
  const depth = depthOf(node) + ctx.depthOffset;
  facts.maxDepth = Math.max(facts.maxDepth, depth);
  if (ctx.budget.nodes > ctx.limits.maxParts) throw new Abort(`more than ${ctx.limits.maxParts} MIME parts`);
  if (depth > ctx.limits.maxDepth) throw new Abort(`MIME nesting deeper than ${ctx.limits.maxDepth}`);
  // Without a boundary the splitter reads the whole body as preamble: parts a client may still
  // show would never reach a scanner.
  if (node.multipart && !node._boundary) throw new Abort('multipart part without a usable boundary');
}

function malformedReason(err: Error & { code?: string }): string {
  if (err instanceof Abort) return err.message;
  if (err.code === 'EMAXLEN' && /header/i.test(err.message)) return 'MIME header block too large';
  if (err.code === 'EMAXLEN') return 'too many MIME parts';
  return `MIME structure could not be parsed: ${err.message}`;
}

/**
 * The walk's side of a pass over a splitter's chunks: fed by its own splitter (walk below) or by
 * the one pass that also feeds the text scan (gateway/pipeline/mime-pass.ts), so that a message
 * is split once for every analyser. `take` throws when a bound is hit; `fail` then says why.
 */
export class WalkConsumer {
  readonly facts: MessageFacts = { outcome: { status: 'ok' }, parts: [], nodeCount: 0, maxDepth: 0, bytes: 0 };
  readonly ctx: WalkContext;
  numberer = new PartNumberer();
  leaf: Leaf | undefined;

  constructor(ctx: WalkContext) {
    this.ctx = ctx;
  }

  async close(): Promise<void> {
    const done = this.leaf ? await this.leaf.finish() : undefined;
    this.leaf = undefined;
    if (!done) return;
    this.facts.parts.push(done.part);
    if (done.nested) merge(this.facts, done.part, done.nested);
  }

  async take(obj: SplitterChunk): Promise<void> {
    if (obj.type === 'node') {
      await this.close();
      this.numberer.see(obj);
      checkNode(obj, this.ctx, this.facts);
      if (!obj.multipart && !obj.messageNode) this.leaf = new Leaf(obj, this.numberer.idOf(obj), this.ctx);
      return;
    }
    this.facts.bytes += obj.value.length;
    if (obj.type === 'body' && this.leaf && obj.node === this.leaf.node) await this.leaf.write(obj.value);
    else await this.close();
  }

  async end(): Promise<MessageFacts> {
    await this.close();
    return this.facts;
  }

  /** The walk stopped early: a bound, or a structure the splitter refuses. */
  fail(err: Error): MessageFacts {
    this.leaf?.nested?.input.destroy(new Error('outer walk stopped'));
    this.facts.outcome = { status: 'malformed', reason: malformedReason(err) } satisfies MessageOutcome;
    return this.facts;
  }
}

/** A walk consumer with the given limits (defaults for the rest), for a shared pass. */
export function walkConsumer(limits: Partial<WalkLimits> = {}): WalkConsumer {
  return new WalkConsumer({ limits: { ...DEFAULT_WALK_LIMITS, ...limits }, budget: { nodes: 0 }, depthOffset: 0 });
}

async function walk(input: Readable, ctx: WalkContext): Promise<MessageFacts> {
  const w = new WalkConsumer(ctx);
  const splitter = createSplitter(ctx.limits);
  let inputError: Error | undefined;
  input.on('error', (e) => {
    inputError = e;
    splitter.destroy(e);
  });
  input.pipe(splitter);
  try {
    for await (const obj of splitter as AsyncIterable<SplitterChunk>) await w.take(obj);
    return await w.end();
  } catch (err) {
    if (inputError) throw inputError;
    input.unpipe(splitter);
    input.destroy();
    splitter.destroy();
    return w.fail(err as Error);
  }
}

/** Walks a message from a stream and returns its facts. Rejects only on input stream errors. */
export async function walkMessage(input: Readable, limits: Partial<WalkLimits> = {}): Promise<MessageFacts> {
  const l = { ...DEFAULT_WALK_LIMITS, ...limits };
  return walk(input, { limits: l, budget: { nodes: 0 }, depthOffset: 0 });
}
