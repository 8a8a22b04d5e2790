// Text ↔ bytes for an HTML part being rewritten. The declared charset is kept wherever we can
// encode it (UTF-8 and every single-byte charset Node's ICU decodes), so an 8-bit Latin-1 part
// stays Latin-1. Multi-byte legacy charsets (Shift_JIS, GB18030, Big5…) cannot be encoded
// without a package: such a part is re-encoded as UTF-8 and its charset (MIME and <meta>) updated.

import { decoderFor } from './mime-params.ts';

export interface HtmlCodec {
  /** Charset to declare on the rewritten part. */
  charset: string;
  /** True when the output charset differs from the declared one (update headers and <meta>). */
  switched: boolean;
  /** True when the part declared no charset: name the one we read it as once output has 8-bit bytes. */
  undeclared: boolean;
  encode(text: string): Buffer;
}

// WHATWG single-byte encodings (Encoding Standard §9): one byte, one code point.
const SINGLE_BYTE = new Set([
  'ibm866',
  'iso-8859-2',
  'iso-8859-3',
  'iso-8859-4',
  'iso-8859-5',
  'iso-8859-6',
  'iso-8859-7',
  'iso-8859-8',
  'iso-8859-8-i',
  'iso-8859-10',
  'iso-8859-13',
  'iso-8859-14',
  'iso-8859-15',
  'iso-8859-16',
  'koi8-r',
  'koi8-u',
  'macintosh',
  'windows-874',
  'windows-1250',
  'windows-1251',
  'windows-1252',
  'windows-1253',
  'windows-1254',
  'windows-1255',
  'windows-1256',
  'windows-1257',
  'windows-1258',
  'x-mac-cyrillic',
]);

const tables = new Map<string, Map<number, number>>();

/** Code point → byte for a single-byte encoding, built from ICU's own decoder. */
function table(encoding: string): Map<number, number> {
  let t = tables.get(encoding);
  if (t) return t;
  t = new Map();
  const dec = new TextDecoder(encoding);
  for (let b = 0xff; b >= 0; b--) {
    const cp = dec.decode(Uint8Array.of(b)).codePointAt(0);
    if (cp !== undefined && cp !== 0xfffd) t.set(cp, b);
  }
  tables.set(encoding, t);
  return t;
}

/** Encodes to a single-byte charset; a character it lacks becomes an HTML numeric reference. */
function singleByte(encoding: string): (text: string) => Buffer {
  const t = table(encoding);
  return (text) => {
    const out: number[] = [];
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      const b = t.get(cp);
      if (b !== undefined) out.push(b);
      else for (const c of `&#${cp};`) out.push(c.charCodeAt(0));
    }
    return Buffer.from(out);
  };
}

const utf8: (text: string) => Buffer = (text) => Buffer.from(text, 'utf8');

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** A <meta charset> in the first bytes, as a browser's prescan finds it (HTML §13.2.3.2). */
function metaCharset(bytes: Uint8Array): string | null {
  const head = Buffer.from(bytes.subarray(0, 2048)).toString('latin1');
  return /<meta[^>]{0,512}?charset\s*=\s*["']?([\w.:-]{1,40})/i.exec(head)?.[1] ?? null;
}

/**
 * Decodes an HTML part's bytes by its declared charset. None declared: a <meta> charset, else
 * UTF-8 if the bytes are valid UTF-8, else windows-1252 (what browsers assume). An unknown label:
 * bytes read as Latin-1 both ways, so the markup is disarmed and the text bytes survive unchanged.
 */
export function decodeHtml(bytes: Uint8Array, declared: string | null): { text: string; codec: HtmlCodec } {
  if (!declared) {
    const guess = metaCharset(bytes) ?? (isUtf8(bytes) ? 'utf-8' : 'windows-1252');
    const r = decodeHtml(bytes, guess);
    return { text: r.text, codec: { ...r.codec, undeclared: true } };
  }
  const dec = decoderFor(declared);
  const keep = { charset: declared, switched: false, undeclared: false };
  if (!dec) {
    return { text: Buffer.from(bytes).toString('latin1'), codec: { ...keep, encode: (t) => Buffer.from(t, 'latin1') } };
  }
  const text = dec.decode(bytes);
  if (dec.encoding === 'utf-8') return { text, codec: { ...keep, encode: utf8 } };
  if (SINGLE_BYTE.has(dec.encoding)) return { text, codec: { ...keep, encode: singleByte(dec.encoding) } };
  return { text, codec: { charset: 'utf-8', switched: true, undeclared: false, encode: utf8 } };
}
