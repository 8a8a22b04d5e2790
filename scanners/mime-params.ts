// Structured MIME header values (RFC 2045 §5.1) with RFC 2231 parameter continuations and charsets,
// and RFC 2047 encoded words where senders (against RFC 2047 §5) put them in parameters anyway.
//
// Why our own and not libmime's pick: a file name is the one thing an attacker controls that the
// recipient's client trusts. Clients disagree about which of two `filename` parameters wins, or
// whether `filename*` beats `filename`; so every declared value is kept, and the rules check all.

export interface ParsedHeaderValue {
  /** The value before the first `;`, lower-cased (e.g. "attachment", "text/html"). */
  value: string;
  /** Every value each parameter was given, decoded, in header order; names lower-cased. */
  params: Map<string, string[]>;
}

interface RawParam {
  name: string;
  value: string;
}

/** Remove RFC 5322 folding and drop the "Name:" prefix when a whole header line is given. */
export function headerBody(line: string): string {
  const unfolded = line.replace(/\r?\n(?=[ \t])/g, '');
  const colon = unfolded.indexOf(':');
  const nameLike = colon > 0 && /^[!-9;-~]+$/.test(unfolded.slice(0, colon));
  return (nameLike ? unfolded.slice(colon + 1) : unfolded).trim();
}

/** The content of a quoted-string (RFC 5322 §3.2.4), kept exactly: trailing blanks are evidence. */
function unquote(v: string): string {
  if (!v.startsWith('"')) return v;
  let out = '';
  for (let i = 1; i < v.length; i++) {
    if (v[i] === '\\' && i + 1 < v.length) out += v[++i];
    else if (v[i] === '"') break;
    else out += v[i];
  }
  return out;
}

/** Split "value; a=b; c="d;e"" into the value and raw parameters; comments dropped. */
function tokenize(input: string): { value: string; params: RawParam[] } {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  let comment = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (quoted) {
      if (c === '\\' && i + 1 < input.length) cur += c + input[++i];
      else {
        if (c === '"') quoted = false;
        cur += c;
      }
      continue;
    }
    if (comment > 0) {
      if (c === '\\') i++;
      else if (c === '(') comment++;
      else if (c === ')') comment--;
      continue;
    }
    if (c === '"') {
      quoted = true;
      cur += c;
    } else if (c === '(') comment = 1;
    else if (c === ';') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const params: RawParam[] = [];
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    params.push({ name: p.slice(0, eq).trim().toLowerCase(), value: unquote(p.slice(eq + 1).trim()) });
  }
  return { value: unquote(parts[0].trim()).toLowerCase(), params };
}

/** TextDecoder for a MIME charset label, or null when Node's ICU does not know it. */
export function decoderFor(charset: string): InstanceType<typeof TextDecoder> | null {
  // RFC 2231 §5 allows "charset*language" inside encoded words.
  const label = charset.split('*')[0].trim() || 'us-ascii';
  try {
    return new TextDecoder(label);
  } catch {
    return null;
  }
}

function decodeBytes(bytes: Uint8Array, charset: string): string {
  const dec = decoderFor(charset) ?? new TextDecoder('windows-1252');
  return dec.decode(bytes);
}

function percentDecode(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const hex = s.slice(i + 1, i + 3);
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(s.charCodeAt(i) & 0xff);
  }
  return out;
}

/**
 * RFC 2231 §3–§4: `name*0*=utf-8''a%20b; name*1=c` → "a bc". Segments are joined in index order
 * from 0 and stop at the first gap (§3: "the sequence ... MUST be contiguous"). A duplicated
 * index keeps its first occurrence.
 */
function joinExtended(segments: Map<number, { value: string; encoded: boolean }>): string | null {
  const first = segments.get(0);
  if (!first) return null;
  let charset = 'us-ascii';
  const bytes: number[] = [];
  for (let i = 0; segments.has(i); i++) {
    const seg = segments.get(i)!;
    let v = seg.value;
    if (i === 0 && seg.encoded) {
      const m = /^([^']*)'[^']*'(.*)$/s.exec(v);
      if (m) {
        charset = m[1] || 'us-ascii';
        v = m[2];
      }
    }
    if (seg.encoded) bytes.push(...percentDecode(v));
    else for (const b of Buffer.from(v, 'utf8')) bytes.push(b);
  }
  return decodeBytes(Uint8Array.from(bytes), charset);
}

/** Decode RFC 2047 encoded words (`=?charset?B|Q?text?=`); whitespace between two words is dropped. */
export function decodeWords(input: string): string {
  if (!input.includes('=?')) return input;
  const word = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  let out = '';
  let last = 0;
  let prevWordEnd = -1;
  for (let m = word.exec(input); m; m = word.exec(input)) {
    const between = input.slice(last, m.index);
    if (!(prevWordEnd === last && /^\s*$/.test(between))) out += between;
    const [, charset, enc, text] = m;
    const bytes = enc.toLowerCase() === 'b' ? Buffer.from(text, 'base64') : Uint8Array.from(percentDecode(text.replace(/_/g, ' ').replace(/=/g, '%')));
    out += decodeBytes(bytes, charset);
    last = prevWordEnd = m.index + m[0].length;
  }
  return out + input.slice(last);
}

function addValue(params: Map<string, string[]>, name: string, value: string): void {
  const list = params.get(name) ?? [];
  if (!list.includes(value)) list.push(value);
  params.set(name, list);
}

/** Parse a structured header body (without or with its "Name:" prefix). */
export function parseHeaderValue(raw: string): ParsedHeaderValue {
  const { value, params: rawParams } = tokenize(headerBody(raw));
  const params = new Map<string, string[]>();
  const extended = new Map<string, Map<number, { value: string; encoded: boolean }>>();
  for (const p of rawParams) {
    const m = /^([^*]+)\*(?:(\d{1,3})(\*)?|)$/.exec(p.name);
    if (!m && p.name.includes('*')) continue;
    if (!m) {
      addValue(params, p.name, decodeWords(p.value));
      continue;
    }
    const [, base, index, star] = m;
    // "name*" alone is one encoded segment 0; "name*N" plain; "name*N*" encoded.
    const idx = index === undefined ? 0 : Number(index);
    const encoded = index === undefined ? true : star === '*';
    const segs = extended.get(base) ?? new Map();
    if (!segs.has(idx)) segs.set(idx, { value: p.value, encoded });
    extended.set(base, segs);
  }
  for (const [base, segs] of extended) {
    const joined = joinExtended(segs);
    // RFC 2231 values come first: clients that know RFC 2231 prefer them (RFC 2231 §4 intent).
    if (joined !== null) params.set(base, [joined, ...(params.get(base) ?? []).filter((v) => v !== joined)]);
  }
  return { value, params };
}
