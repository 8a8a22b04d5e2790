// The delivered copy, written in one streaming pass: mailsplit Splitter → PartEditor (our headers
// on the top-level header block, banned attachments replaced by a text note) → HtmlPartDisarmer
// (scanners/disarm-rewrite.ts) → Joiner. Parts nobody touches pass through byte for byte: a text
// part stays byte-identical when only the HTML part changed, and an attachment that is not
// removed keeps its exact encoding.
//
// The subject tag must be known before the first byte goes out (the header block comes first),
// so <Cleaned> is decided from the prediction of gateway/pipeline/text-scan.ts, which disarms
// each HTML part exactly as this pass will.
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Joiner } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { DEFAULT_REWRITE_OPTIONS, HtmlPartDisarmer, type DisarmReport, type DisarmRewriteOptions } from '../../scanners/disarm-rewrite.ts';
import { createSplitter } from '../../scanners/splitter.ts';
import { PartNumberer } from '../../scanners/part-ids.ts';
import { editHeaders, type HeadersLike, type Stamp } from './stamp.ts';

export interface CopySpec {
  /** Edits of the top-level header block. */
  stamp: Stamp;
  /** Leaf parts replaced by a text note (ASCII, CRLF line ends); a part inside an attached message takes the whole attached message with it. */
  strip: { part: string; note: string }[];
  /** null: HTML passes as it is. */
  disarm: Partial<DisarmRewriteOptions> | null;
  /** Splitter bounds; equal to the walk's so that part ids agree. */
  limits: { maxParts: number; maxHeaderBytes: number };
}

export interface CopyResult {
  /** The subject as it arrived (decoded), for the message log. */
  subject: string | null;
  /** Part ids actually replaced. */
  stripped: string[];
  disarm: DisarmReport | null;
}

/** Content headers a replaced part loses: what it was must not survive into the note. */
const CONTENT_HEADERS = [
  'content-type',
  'content-disposition',
  'content-transfer-encoding',
  'content-id',
  'content-location',
  'content-description',
  'content-md5',
];

class PartEditor extends Transform {
  spec: CopySpec;
  result: CopyResult = { subject: null, stripped: [], disarm: null };
  numberer = new PartNumberer();
  notes: Map<string, string>;
  /** The part being replaced: its body chunks are dropped, the note goes out when it ends. */
  replacing: { node: MimeNode; note: string; endsWithNewline: boolean } | undefined;

  constructor(spec: CopySpec) {
    super({ objectMode: true });
    this.spec = spec;
    this.notes = new Map(spec.strip.map((s) => [s.part, s.note]));
  }

  override _transform(obj: SplitterChunk, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.replacing && !(obj.type === 'body' && obj.node === this.replacing.node)) this.endReplacement();
    if (obj.type === 'node') this.onNode(obj);
    else if (obj.type === 'body' && this.replacing && obj.node === this.replacing.node) {
      if (obj.value.length > 0) this.replacing.endsWithNewline = obj.value[obj.value.length - 1] === 0x0a;
      return cb();
    }
    cb(null, obj);
  }

  override _flush(cb: TransformCallback): void {
    if (this.replacing) this.endReplacement();
    cb();
  }

  onNode(node: MimeNode): void {
    this.numberer.see(node);
    const headers = node.headers as unknown as HeadersLike & { remove(key: string): void; add(key: string, value: string, index?: number): void };
    if (node.root && headers) {
      this.result.subject = headers.getFirst('subject') || null;
      editHeaders(headers, this.spec.stamp);
    }
    if (node.multipart || node.messageNode || !headers) return;
    const id = this.numberer.idOf(node);
    // A part inside an attached message that this splitter does not open (mailsplit splits only
    // inline 7bit/8bit message/rfc822 parts) goes with the whole attached message.
    const inside = [...this.notes].filter(([part]) => part === id || part.startsWith(`${id}.`));
    if (inside.length === 0) return;
    const note = inside.map(([, n]) => n).join('');
    for (const key of CONTENT_HEADERS) headers.remove(key);
    // Appended after the part's other headers (MIME-Version etc. of a root part stay first).
    const end = () => headers.getList().length;
    headers.add('Content-Type', 'text/plain; charset=us-ascii', end());
    headers.add('Content-Disposition', 'inline', end());
    headers.add('Content-Transfer-Encoding', '7bit', end());
    // The disarmer downstream looks at contentType: the note is plain text now.
    node.contentType = 'text/plain';
    this.replacing = { node, note, endsWithNewline: true };
    this.result.stripped.push(id);
  }

  endReplacement(): void {
    const r = this.replacing!;
    this.replacing = undefined;
    // The body keeps ending (or not) in a line break as the original did: the delimiter line
    // that follows must stay on a line of its own.
    const body = r.note.replace(/\r?\n$/, '') + (r.endsWithNewline ? '\r\n' : '');
    this.push({ node: r.node, type: 'body', value: Buffer.from(body, 'latin1') });
  }
}

/** Writes the delivered copy. Rejects when a stream fails or the structure breaks a splitter bound (the output is then incomplete). */
export async function writeCopy(input: Readable, output: Writable, spec: CopySpec): Promise<CopyResult> {
  const editor = new PartEditor(spec);
  const stages: Transform[] = [editor];
  let disarmer: HtmlPartDisarmer | undefined;
  if (spec.disarm) {
    disarmer = new HtmlPartDisarmer({ ...DEFAULT_REWRITE_OPTIONS, ...spec.disarm, ...spec.limits });
    stages.push(disarmer);
  }
  await pipeline(input, createSplitter(spec.limits), ...stages, new Joiner(), output, { end: false });
  return { ...editor.result, disarm: disarmer?.report ?? null };
}

/** The text that replaces a removed attachment: ASCII, so that it travels as 7bit, names escaped. */
export function removalNote(o: { filename: string | null; reasons: string[]; messageId: string }): string {
  const ascii = (s: string) => s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const wrap = (s: string) => (s.match(/.{1,76}(\s|$)|\S+/g) ?? [s]).map((l) => l.trimEnd());
  const lines = [
    `[mailmoat removed an attachment${o.filename === null ? '' : `: "${ascii(o.filename)}"`}]`,
    ...o.reasons.flatMap((r) => wrap(`Reason: ${ascii(r)}`)),
    `The rest of the message is as it was sent. Message id ${o.messageId};`,
    'ask your mail administrator if you need the original attachment.',
  ];
  return `${lines.join('\r\n')}\r\n`;
}
