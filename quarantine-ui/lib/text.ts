// Mail text for display. Everything here is hostile input: subjects, display names and file
// names may carry encoded words, control characters and bidi overrides ("invoice‮fdp.exe"
// shows as "invoiceexe.pdf"). Templates escape HTML; these helpers make the text honest.

const ENCODED_WORD = /=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]*)\?=/g;

function decodeBytes(bytes: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset.replace(/\*.*$/, '').trim().toLowerCase(), { fatal: false }).decode(bytes);
  } catch {
    return new TextDecoder('latin1').decode(bytes);
  }
}

function decodeWord(charset: string, encoding: string, text: string): string {
  if (encoding.toLowerCase() === 'b') return decodeBytes(Buffer.from(text, 'base64'), charset);
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '_') bytes.push(0x20);
    else if (c === '=' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c.charCodeAt(0) & 0xff);
  }
  return decodeBytes(Uint8Array.from(bytes), charset);
}

/** RFC 2047 encoded words in a header value, decoded; whitespace between adjacent words dropped. */
export function decodeMimeWords(value: string): string {
  return value
    .replace(/(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)/g, '$1')
    .replace(ENCODED_WORD, (_m, cs: string, enc: string, txt: string) => decodeWord(cs, enc, txt));
}

// Bidi embeddings/overrides/isolates and marks, the Arabic letter mark, and zero-width characters
// that hide text: shown as a visible marker instead of being applied.
const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2060-\u2069\u061c\ufeff]/g;

/** A single-line, honest rendering of untrusted text (still to be HTML-escaped by the template). */
export function displayText(value: string | null | undefined, max = 300): string {
  if (value === null || value === undefined) return '';
  let s = decodeMimeWords(value)
    .replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' ')
    .replace(INVISIBLE, (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
  if (s.length > max) s = `${s.slice(0, max)}…`;
  return s;
}

/** Multi-line variant (headers, transcripts): keeps line breaks and tabs, neutralises the rest. */
export function displayBlock(value: string, max = 200_000): string {
  let s = value
    .replace(/\r\n?/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '�')
    .replace(INVISIBLE, (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
  if (s.length > max) s = `${s.slice(0, max)}\n… (${s.length - max} more characters not shown)`;
  return s;
}

export function formatTime(ms: number | null | undefined): string {
  if (!ms) return '';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
