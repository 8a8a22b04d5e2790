// Finding the reported message(s) in what a user sent to reportspam@ / notspam@ (issue 8). Mail
// clients send one of three shapes:
//
//   1. "Forward as attachment": one or several message/rfc822 parts (or .eml files sent as
//      application/octet-stream) — the exact bytes of the original, the best case;
//   2. "Forward inline": a text part with a forward marker ("---------- Forwarded message
//      ---------", "-----Original Message-----", "Begin forwarded message:" …) or a pasted message,
//      followed by the original's headers and its body. We rebuild a message from those headers
//      and the text: not byte-exact, but the tokens Bayes learns from are there;
//   3. "Redirect" / "Bounce" / "Resend": the original itself, with Resent-* headers on top (or,
//      without them, a message whose From is not the reporter: the original's own From kept).
//
// What cannot be extracted is reported as such (with the reason), never guessed: a forward marker
// without readable headers, an attached message that is not one, an HTML-only inline forward.
// Pure apart from parsing: no I/O, no DNS, unit-tested on generated mails.
import { Readable } from 'node:stream';
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { notAMessage } from '../learning.ts';

export type ExtractedHow = 'attachment' | 'inline' | 'resent' | 'whole';

export interface ExtractedMessage {
  raw: Buffer;
  how: ExtractedHow;
  /** A short label for logs and the console: "attachment 1 (spam.eml)", "inline forward". */
  label: string;
}

export interface NotExtracted {
  label: string;
  reason: string;
}

export interface Extraction {
  messages: ExtractedMessage[];
  notExtracted: NotExtracted[];
}

export interface ExtractOptions {
  /** The reporter's address (envelope sender): a message "from" them is their own note, not a redirect. */
  reporter: string;
  maxMessages: number;
  maxBytes: number;
}

interface Leaf {
  contentType: string;
  disposition: string;
  filename: string;
  charset: string;
  body: Buffer;
}

/** Our own trace headers on top of the spooled copy, and a redirect's Resent-* block: not part of the original. */
const TRACE_OR_RESENT = /^(resent-[a-z-]+|received-spf|x-mailmoat-[a-z-]+):/i;

/** Lines that introduce an inline forward in the common clients (Gmail, Outlook, Thunderbird, Apple Mail, K-9). */
const FORWARD_MARKERS = [
  /^-{2,}\s*Forwarded message\s*-{2,}\s*$/i,
  /^-{2,}\s*Original Message\s*-{2,}\s*$/i,
  /^-{2,}\s*Forwarded Message\s*-{2,}\s*$/i,
  /^Begin forwarded message:\s*$/i,
  /^-{2,}\s*Weitergeleitete Nachricht\s*-{2,}\s*$/i,
  /^-{2,}\s*Message transféré\s*-{2,}\s*$/i,
];

export async function extractReported(raw: Buffer, o: ExtractOptions): Promise<Extraction> {
  const out: Extraction = { messages: [], notExtracted: [] };
  let parts: Awaited<ReturnType<typeof splitParts>>;
  try {
    parts = await splitParts(raw);
  } catch (err) {
    // A report past the parser's bounds (mailsplit: "Max header size for a MIME node exceeded",
    // "Max allowed child nodes exceeded") or one it cannot decode is an outcome, not a fault:
    // rejecting here made the report a poison job, retried until its attempts ran out.
    out.notExtracted.push({ label: 'report', reason: `cannot be parsed: ${err instanceof Error ? err.message : String(err)}` });
    return out;
  }
  const { root, leaves } = parts;
  const add = (m: ExtractedMessage) => {
    if (out.messages.length >= o.maxMessages) {
      out.notExtracted.push({ label: m.label, reason: `more than ${o.maxMessages} messages in one report` });
      return;
    }
    const problem = notAMessage(m.raw, o.maxBytes);
    if (problem) out.notExtracted.push({ label: m.label, reason: `not a message: ${problem}` });
    else out.messages.push(m);
  };

  // 1. Attached messages.
  let n = 0;
  for (const leaf of leaves) {
    const eml = leaf.contentType === 'message/rfc822' || leaf.contentType === 'message/global' || /\.eml$/i.test(leaf.filename);
    if (!eml) continue;
    n++;
    add({ raw: leaf.body, how: 'attachment', label: `attachment ${n}${leaf.filename ? ` (${printable(leaf.filename)})` : ''}` });
  }
  if (n > 0) return out;

  // 3a. A redirect: Resent-* headers on top of the original.
  const rootHeaders = headerBlock(raw);
  if (rootHeaders.some((l) => /^resent-(from|sender|date|to|message-id):/i.test(l))) {
    add({ raw: stripTrace(raw), how: 'resent', label: 'redirected message (Resent- headers)' });
    return out;
  }

  // 2. An inline forward (or a pasted message) in the first text part.
  const textLeaf = leaves.find((l) => l.contentType === 'text/plain' && l.disposition !== 'attachment');
  if (textLeaf) {
    const found = inlineForward(decodeText(textLeaf));
    if (found.kind === 'message') {
      add({ raw: found.raw, how: 'inline', label: 'inline forward' });
      return out;
    }
    if (found.kind === 'unreadable') {
      out.notExtracted.push({ label: 'inline forward', reason: found.reason });
      return out;
    }
  } else if (leaves.some((l) => l.contentType === 'text/html')) {
    // An HTML-only body may hold a forward, but rebuilding headers from markup would be guessing.
    const html = leaves.find((l) => l.contentType === 'text/html')!;
    if (
      FORWARD_MARKERS.some((re) =>
        re.test(
          decodeText(html)
            .replace(/<[^>]*>/g, '\n')
            .split(/\r?\n/)
            .map((s) => s.trim())
            .join('\n'),
        ),
      ) ||
      /forwarded message|original message/i.test(decodeText(html))
    ) {
      out.notExtracted.push({
        label: 'inline forward',
        reason: 'an HTML-only inline forward: its headers cannot be read reliably (forward it as an attachment)',
      });
      return out;
    }
  }

  // 3b. A bounce/redirect without Resent-* headers: the original's From is kept, so it is not the reporter.
  const from = addressOf(headerValue(rootHeaders, 'from'));
  if (from && root && from !== o.reporter.toLowerCase()) {
    add({ raw: stripTrace(raw), how: 'whole', label: `redirected message from ${printable(from)}` });
    return out;
  }

  out.notExtracted.push({
    label: 'report',
    reason: 'no reported message found: forward it as an attachment, forward it inline with its headers, or redirect it',
  });
  return out;
}

type InlineResult = { kind: 'none' } | { kind: 'message'; raw: Buffer } | { kind: 'unreadable'; reason: string };

/** Finds a forward marker (or a pasted header block at the top) and rebuilds the message under it. */
export function inlineForward(text: string): InlineResult {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let start = lines.findIndex((l) => FORWARD_MARKERS.some((re) => re.test(l.trim())));
  const marked = start >= 0;
  if (marked) start += 1;
  else {
    // No marker: a message pasted at the top of the body (after blank lines) counts if it looks like one.
    start = lines.findIndex((l) => l.trim() !== '');
    if (start < 0) return { kind: 'none' };
  }
  // Some clients quote the forward ("> "): unquote when every non-empty line below is quoted.
  let rest = lines.slice(start);
  if (rest.filter((l) => l.trim() !== '').every((l) => /^>/.test(l))) rest = rest.map((l) => l.replace(/^> ?/, ''));
  while (rest.length > 0 && rest[0]!.trim() === '') rest.shift();
  const headers: string[] = [];
  let i = 0;
  for (; i < rest.length; i++) {
    const l = rest[i]!;
    if (l.trim() === '') break;
    if (/^[ \t]/.test(l) && headers.length > 0) headers[headers.length - 1] += `\r\n${l}`;
    else if (/^\*([A-Za-z-]+):\*/.test(l))
      headers.push(l.replace(/^\*([A-Za-z-]+):\*\s*/, '$1: ')); // Outlook's bold "*From:*"
    else if (/^[!-9;-~]+:/.test(l)) headers.push(l);
    else break;
  }
  const hasHeaders = headers.length >= 2 && headers.some((h) => /^(from|received|subject|date|message-id):/i.test(h));
  const stoppedCleanly = i >= rest.length || rest[i]!.trim() === '';
  if (!hasHeaders || !stoppedCleanly) {
    return marked
      ? { kind: 'unreadable', reason: 'a forward marker was found but the forwarded headers could not be read (forward it as an attachment)' }
      : { kind: 'none' };
  }
  const body = rest.slice(i + 1).join('\r\n');
  return { kind: 'message', raw: Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}`, 'utf8') };
}

async function splitParts(raw: Buffer): Promise<{ root: boolean; leaves: Leaf[] }> {
  // ignoreEmbedded: an attached message is a leaf whose body is the whole original, byte for byte.
  const splitter = new Splitter({ ignoreEmbedded: true, maxHeadSize: 256 * 1024 });
  const leaves: Leaf[] = [];
  const nodes = new Map<MimeNode, Buffer[]>();
  let root = false;
  Readable.from([raw]).pipe(splitter);
  for await (const obj of splitter as AsyncIterable<SplitterChunk>) {
    if (obj.type === 'node') {
      if (obj.root) root = true;
      if (!obj.multipart) nodes.set(obj, []);
    } else if (obj.type === 'body' && nodes.has(obj.node)) {
      nodes.get(obj.node)!.push(obj.value);
    }
  }
  for (const [node, chunks] of nodes) {
    leaves.push({
      contentType: String(node.contentType || 'text/plain').toLowerCase(),
      disposition: String(node.disposition || '').toLowerCase(),
      filename: String(node.filename || ''),
      charset: String(node.charset || 'utf-8').toLowerCase(),
      body: await decode(node, Buffer.concat(chunks)),
    });
  }
  return { root, leaves };
}

async function decode(node: MimeNode, body: Buffer): Promise<Buffer> {
  const decoder = node.getDecoder();
  const parts: Buffer[] = [];
  decoder.on('data', (c: Buffer) => parts.push(c));
  await new Promise<void>((resolve, reject) => {
    decoder.once('end', () => resolve());
    decoder.once('error', reject);
    decoder.end(body);
  });
  return Buffer.concat(parts);
}

function decodeText(leaf: Leaf): string {
  try {
    return new TextDecoder(leaf.charset, { fatal: false }).decode(leaf.body);
  } catch {
    return leaf.body.toString('latin1');
  }
}

/** Unfolded header lines of a message's top block. */
export function headerBlock(raw: Buffer): string[] {
  const head = raw.subarray(0, 256 * 1024).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const block = end === -1 ? head : head.slice(0, end);
  const out: string[] = [];
  for (const l of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(l) && out.length > 0) out[out.length - 1] += ` ${l.trim()}`;
    else out.push(l);
  }
  return out;
}

function headerValue(lines: string[], name: string): string | undefined {
  const l = lines.find((x) => x.toLowerCase().startsWith(`${name}:`));
  return l?.slice(name.length + 1).trim();
}

/** The address in a From-like header value ("Name <a@b>" or "a@b"), lower-cased. */
export function addressOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /<([^<>\s]+@[^<>\s]+)>/.exec(value) ?? /([^\s<>",;:]+@[^\s<>",;:]+)/.exec(value);
  return m?.[1]?.toLowerCase();
}

/** The message without our trace headers and a redirect's Resent-* headers (the original's own stay). */
function stripTrace(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  if (end === -1) return raw;
  const lines = text.slice(0, end).split(/\r?\n/);
  const kept: string[] = [];
  let dropping = false;
  for (const l of lines) {
    if (/^[ \t]/.test(l)) {
      if (!dropping) kept.push(l);
      continue;
    }
    dropping = TRACE_OR_RESENT.test(l);
    if (!dropping) kept.push(l);
  }
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), raw.subarray(Buffer.byteLength(text.slice(0, end), 'latin1'))]);
}

const printable = (s: string) =>
  s.replace(/[\u0000-\u001f\u007f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).slice(0, 120);
