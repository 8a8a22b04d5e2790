// Builders for the test corpus: MIME messages, attachments, nested multiparts and zip files, all
// generated in the test run (no binary fixtures in the repo, nothing that trips a real scanner).

import { Readable } from 'node:stream';

export type Encoding = '7bit' | '8bit' | 'binary' | 'base64' | 'quoted-printable';

export interface LeafSpec {
  /** Full Content-Type value, parameters included; omitted → no Content-Type header. */
  contentType?: string;
  /** Full Content-Disposition value. */
  disposition?: string;
  encoding?: Encoding;
  /** Extra header lines, written as given. */
  headers?: string[];
  body: string | Buffer;
}

export interface MultipartSpec {
  multipart: string;
  parts: PartSpec[];
  boundary?: string;
  headers?: string[];
  preamble?: string;
}

export type PartSpec = LeafSpec | MultipartSpec;

let boundaryCounter = 0;

export function base64Lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** Minimal quoted-printable (RFC 2045 §6.7) for test bodies; keeps CRLF as hard breaks. */
export function quotedPrintable(data: Buffer): string {
  const lines: string[] = [];
  for (const line of data.toString('latin1').split('\r\n')) {
    let out = '';
    let len = 0;
    for (const ch of line) {
      const c = ch.charCodeAt(0);
      const enc = c === 0x3d || c > 0x7e || (c < 0x20 && c !== 0x09) ? '=' + c.toString(16).toUpperCase().padStart(2, '0') : ch;
      if (len + enc.length > 73) {
        out += '=\r\n';
        len = 0;
      }
      out += enc;
      len += enc.length;
    }
    lines.push(out);
  }
  return lines.join('\r\n');
}

function encodeBody(body: string | Buffer, encoding: Encoding | undefined): Buffer {
  const raw = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (encoding === 'base64') return Buffer.from(base64Lines(raw), 'latin1');
  if (encoding === 'quoted-printable') return Buffer.from(quotedPrintable(raw), 'latin1');
  return raw;
}

function renderPart(spec: PartSpec): Buffer {
  if ('multipart' in spec) {
    const b = spec.boundary ?? `=_mm_${++boundaryCounter}_${'x'.repeat(8)}`;
    const head = [...(spec.headers ?? []), `Content-Type: multipart/${spec.multipart}; boundary="${b}"`];
    const chunks: Buffer[] = [Buffer.from(head.join('\r\n') + '\r\n\r\n' + (spec.preamble ?? ''), 'latin1')];
    for (const p of spec.parts) chunks.push(Buffer.from(`\r\n--${b}\r\n`, 'latin1'), renderPart(p));
    chunks.push(Buffer.from(`\r\n--${b}--\r\n`, 'latin1'));
    return Buffer.concat(chunks);
  }
  const head = [...(spec.headers ?? [])];
  if (spec.contentType !== undefined) head.push(`Content-Type: ${spec.contentType}`);
  if (spec.disposition !== undefined) head.push(`Content-Disposition: ${spec.disposition}`);
  if (spec.encoding) head.push(`Content-Transfer-Encoding: ${spec.encoding}`);
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), encodeBody(spec.body, spec.encoding)]);
}

/**
 * The Date header of a test message: now. A fixed date is a time bomb — SpamAssassin scores a
 * message by how old its Date is (DATE_IN_PAST_*), so a test's spam score would drift with the clock.
 */
export const mailDate = (at: Date = new Date()): string => at.toUTCString().replace('GMT', '+0000');

export const DEFAULT_HEADERS = [
  'From: Sender <sender@example.org>',
  'To: rcpt@example.com',
  'Subject: test message',
  `Date: ${mailDate()}`,
  'Message-ID: <test@example.org>',
  'MIME-Version: 1.0',
];

/** A whole message: top-level headers followed by the rendered root part. */
export function buildMessage(root: PartSpec, headers: string[] = DEFAULT_HEADERS): Buffer {
  const withTop: PartSpec =
    'multipart' in root ? { ...root, headers: [...headers, ...(root.headers ?? [])] } : { ...root, headers: [...headers, ...(root.headers ?? [])] };
  return renderPart(withTop);
}

/** An attachment named both in Content-Type (name=) and Content-Disposition (filename=). */
export function attachment(
  filename: string,
  content: Buffer | string,
  o: { type?: string; ctName?: string | null; cdName?: string | null; contentType?: string; disposition?: string } = {},
): LeafSpec {
  const q = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  const ctName = o.ctName === undefined ? filename : o.ctName;
  const cdName = o.cdName === undefined ? filename : o.cdName;
  return {
    contentType: o.contentType ?? `${o.type ?? 'application/octet-stream'}${ctName === null ? '' : `; name=${q(ctName)}`}`,
    disposition: o.disposition ?? `attachment${cdName === null ? '' : `; filename=${q(cdName)}`}`,
    encoding: 'base64',
    body: typeof content === 'string' ? Buffer.from(content) : content,
  };
}

export const text = (body: string): LeafSpec => ({ contentType: 'text/plain; charset=utf-8', encoding: '7bit', body });
export const html = (body: string): LeafSpec => ({ contentType: 'text/html; charset=utf-8', encoding: 'quoted-printable', body });

/** A leaf wrapped in `levels` multipart/mixed containers. */
export function nested(levels: number, leaf: PartSpec): PartSpec {
  let spec = leaf;
  for (let i = 0; i < levels; i++) spec = { multipart: 'mixed', parts: [spec] };
  return spec;
}

/** Streams a buffer in small chunks so the tests exercise chunk boundaries. */
export function toStream(buf: Buffer, chunk = 1000): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
}

export async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c);
  return Buffer.concat(out);
}

export { zip, type ZipEntrySpec } from './zip.ts';

/** Fake executables: just the magic and some padding, so that nothing real is ever mailed. */
export const FAKE_PE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(126, 0x90), Buffer.from('This program cannot be run in DOS mode.')]);
export const FAKE_ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(57)]);
export const FAKE_PDF = Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
