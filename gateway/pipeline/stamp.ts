// Header stamping as a streaming rewrite (mailsplit Splitter → Joiner): the top-level header block
// is changed, every body byte passes through untouched. Used for the Received/X-Mailmoat/X-Spam
// headers and the subject tag.
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Joiner } from '@zone-eu/mailsplit';
import { createSplitter } from '../../scanners/splitter.ts';

/** Our own headers: removed from incoming mail before we add ours, so none can be forged. */
export const OWN_HEADER_PREFIXES = ['x-mailmoat-', 'x-spam-'];

export interface Stamp {
  /** Headers to put on top of the message, in this order (a trace header first, per RFC 5321 §4.4). */
  prepend: [string, string][];
  /**
   * Header name prefixes (lower case) removed before stamping: a sender must not be able to
   * pre-set our own verdict headers (e.g. a forged "X-Spam-Flag: NO").
   */
  removePrefixes: string[];
  /** Also removed: header lines this predicate picks (e.g. a forged Authentication-Results carrying our authserv-id). */
  removeIf?: (key: string, line: string) => boolean;
  /** Put in front of the Subject unless it is already there. */
  subjectTag: string | null;
}

export interface StampResult {
  /** The subject as it arrived (decoded), for the message log. */
  subject: string | null;
}

export async function stampMessage(input: Readable, output: Writable, stamp: Stamp): Promise<StampResult> {
  const result: StampResult = { subject: null };
  let rootSeen = false;
  const edit = new Transform({
    readableObjectMode: true,
    writableObjectMode: true,
    transform(chunk: { type: string; root?: boolean; headers?: HeadersLike }, _enc, done) {
      if (chunk.type === 'node' && chunk.root && !rootSeen && chunk.headers) {
        rootSeen = true;
        result.subject = chunk.headers.getFirst('subject') || null;
        editHeaders(chunk.headers, stamp);
      }
      done(null, chunk);
    },
  });
  // ignoreEmbedded: only the top-level header block is ours to change; attached messages stay as they are.
  await pipeline(input, createSplitter({ maxHeaderBytes: 1024 * 1024, maxParts: 1000 }, { ignoreEmbedded: true }), edit, new Joiner(), output, { end: false });
  return result;
}

export interface HeadersLike {
  changed: boolean;
  getFirst(key: string): string;
  getList(): { key: string; line: string }[];
  add(key: string, value: string, index?: number): void;
  remove(key: string): void;
}

/** Applies a stamp to a (root) header block: removals, the subject tag, then the new headers on top. */
export function editHeaders(headers: HeadersLike, stamp: Stamp): void {
  const lines = headers.getList();
  for (let i = lines.length - 1; i >= 0; i--) {
    if (stamp.removePrefixes.some((p) => lines[i].key.startsWith(p)) || stamp.removeIf?.(lines[i].key, lines[i].line)) {
      lines.splice(i, 1);
      headers.changed = true;
    }
  }
  if (stamp.subjectTag) tagSubject(headers, stamp.subjectTag);
  // add() inserts at the top, so add in reverse to keep the requested order.
  for (const [key, value] of [...stamp.prepend].reverse()) headers.add(key, value);
}

/** Prefixes the raw Subject line, keeping its encoding and folding as they were. */
function tagSubject(headers: HeadersLike, tag: string): void {
  const lines = headers.getList();
  const subject = lines.find((l) => l.key === 'subject');
  if (!subject) {
    headers.add('Subject', tag, lines.length);
    return;
  }
  const colon = subject.line.indexOf(':');
  const value = subject.line.slice(colon + 1).replace(/^[ \t]+/, '');
  if (value.startsWith(tag)) return;
  subject.line = `${subject.line.slice(0, colon)}: ${tag} ${value}`;
  headers.changed = true;
}
