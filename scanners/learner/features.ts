// The learner's features (issue 19): hashed byte 4-grams of the first TEXT_BYTES bytes of the
// message as received, headers included — the representation of the TREC spam-track winners
// (Sculley & Wachman's ROSVM, Cormack's online logistic regression, Goodman & Yih): no parser, no
// tokenizer to evade with odd MIME, and a cost bounded by TEXT_BYTES whatever the message is —
// plus, over the same bytes, orthogonal sparse bigrams (word pairs at distances 1–4, CRM114 and
// OSBF-Lua, the best filters of TREC 2006): a 4-gram sees inside words, a pair sees which words
// go together, so spam sent through the same mailing list as the ham (same List-*/Received grams)
// still differs from it by its phrases (bench/results/learner-tries.md). Binary features (present
// or not), hashed into 2^MODEL_BITS slots, the two kinds in separate namespaces. Pure.

/** Slots per model: 2^18 float32 weights = 1 MiB per model in memory (stated in the README). */
export const MODEL_BITS = 18;
export const MODEL_DIM = 1 << MODEL_BITS;
/** How much of the message is read: headers and the start of the body, as the TREC runs did. */
export const TEXT_BYTES = 3000;
const GRAM = 4;

/** A "seen" mark per slot, reused across calls (one event loop: no two calls interleave). */
const seen = new Uint8Array(MODEL_DIM);

/** The slot of the 4-gram starting at `i` (multiplicative hashing of the 4 bytes as one word). */
const slotAt = (b: Uint8Array, i: number, seed = 0): number =>
  (Math.imul((b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) ^ seed, 0x9e3779b1) >>> (32 - MODEL_BITS)) >>> 0;

/** The text the learner reads: the first TEXT_BYTES bytes, line ends made LF (CRLF vs LF must not matter). */
export function learnerText(raw: Uint8Array): Uint8Array {
  const head = raw.subarray(0, TEXT_BYTES + 200);
  const out = new Uint8Array(Math.min(head.length, TEXT_BYTES));
  let n = 0;
  for (let i = 0; i < head.length && n < out.length; i++) if (head[i] !== 13) out[n++] = head[i];
  return out.subarray(0, n);
}

/** The namespace of the word pairs (the 4-grams use 0). */
const OSB_SEED = 0x6f736221;

/**
 * The distinct feature slots of a message: its 4-grams and its word pairs (sorted order not
 * guaranteed). The same slots, in the same order, as distinctSlots([gramsOf(text), osbPairs(text)]),
 * made in scratch arrays: it runs on every scanned message, and the intermediate lists were
 * ~20 KB of garbage each time.
 */
export function featuresOf(raw: Uint8Array): Uint32Array {
  const text = learnerText(raw);
  let n = 0;
  for (let i = 0; i + GRAM <= text.length; i++) {
    const s = slotAt(text, i, 0);
    if (seen[s]) continue;
    seen[s] = 1;
    slotScratch[n++] = s;
  }
  const pairs = osbPairsInto(text, OSB_SEED, pairScratch);
  for (let i = 0; i < pairs; i++) {
    const s = pairScratch[i];
    if (seen[s]) continue;
    seen[s] = 1;
    slotScratch[n++] = s;
  }
  for (let i = 0; i < n; i++) seen[slotScratch[i]] = 0;
  return slotScratch.slice(0, n);
}

/**
 * The distinct slots of the 4-grams of several stretches of text, each hashed in its own
 * namespace (`seed`; 0 is the one featuresOf uses), so the same 4-gram in two stretches is two
 * features. bench/learner-features.ts compares other views of a message with it.
 */
export function gramsOf(segments: readonly { bytes: Uint8Array; seed: number }[]): Uint32Array {
  const out = new Uint32Array(segments.reduce((a, g) => a + Math.max(0, g.bytes.length - GRAM + 1), 0));
  let n = 0;
  for (const { bytes, seed } of segments) {
    for (let i = 0; i + GRAM <= bytes.length; i++) {
      const s = slotAt(bytes, i, seed);
      if (seen[s]) continue;
      seen[s] = 1;
      out[n++] = s;
    }
  }
  for (let i = 0; i < n; i++) seen[out[i]] = 0;
  return out.subarray(0, n);
}

/**
 * The stretches of text that pushed the score most toward `side`: each 4-gram's weight, adjacent
 * grams pushing the same way merged into one stretch, the strongest few shown. For the scan report
 * only (not on the scoring path's budget).
 */
export function strongestStretches(raw: Uint8Array, weightOf: (slot: number) => number, side: 1 | -1, n = 3): { text: string; weight: number }[] {
  const text = learnerText(raw);
  const weights = new Float32Array(Math.max(0, text.length - GRAM + 1));
  let strongest = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = (weights[i] = weightOf(slotAt(text, i)) * side);
    if (w > strongest) strongest = w;
  }
  // A gram counts when it pushes at least a quarter as hard as the strongest one of this message.
  const floor = Math.max(1e-6, 0.25 * strongest);
  const spans: { from: number; to: number; weight: number }[] = [];
  let cur: { from: number; to: number; weight: number } | null = null;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (w >= floor) {
      if (cur && i <= cur.to) {
        cur.to = i + GRAM;
        cur.weight += w;
      } else {
        cur = { from: i, to: i + GRAM, weight: w };
        spans.push(cur);
      }
    } else if (cur && i >= cur.to) cur = null;
  }
  // Only the strongest few are made printable: this runs on every scanned message.
  const seenText = new Set<string>();
  const out: { text: string; weight: number }[] = [];
  for (const s of spans.sort((a, b) => b.weight - a.weight)) {
    const t = printable(text.subarray(s.from, s.to));
    if (t.length < 3 || seenText.has(t)) continue;
    seenText.add(t);
    out.push({ text: t, weight: s.weight });
    if (out.length === n) break;
  }
  return out;
}

/** Bytes as a short, single-line, printable string (what a reader of the scan report sees). */
function printable(b: Uint8Array): string {
  const s = Buffer.from(b)
    .toString('latin1')
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e\xa0-\xff]/g, '?')
    .trim();
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

/** The distinct slots of several slot lists together (each may repeat slots of another). */
export function distinctSlots(lists: readonly Uint32Array[]): Uint32Array {
  const out = new Uint32Array(lists.reduce((a, l) => a + l.length, 0));
  let n = 0;
  for (const list of lists)
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (seen[s]) continue;
      seen[s] = 1;
      out[n++] = s;
    }
  for (let i = 0; i < n; i++) seen[out[i]] = 0;
  return out.subarray(0, n);
}

/** Distances of word pairs in the orthogonal sparse bigrams (CRM114, OSBF-Lua: a window of 5 words). */
const OSB_WINDOW = 4;

/**
 * Orthogonal sparse bigrams (Siefkes et al. 2004, CRM114/OSBF-Lua): for each word (a run of
 * printable non-blank bytes) the pairs it makes with each of the next OSB_WINDOW words, the
 * distance part of the feature. Hashed into the model's slots in namespace `seed` (featuresOf's by default).
 */
export const osbOf = (bytes: Uint8Array, seed = OSB_SEED): Uint32Array => distinctSlots([osbPairs(bytes, seed)]);

/** The slots of osbOf, a slot repeated as often as its pair occurs. */
function osbPairs(bytes: Uint8Array, seed: number): Uint32Array {
  const out = new Uint32Array(maxPairs(bytes.length));
  return out.subarray(0, osbPairsInto(bytes, seed, out));
}

/** At most one word per two bytes (a byte and a blank), each paired with the next OSB_WINDOW. */
const maxPairs = (bytes: number) => Math.ceil(bytes / 2) * OSB_WINDOW;

/** Scratch for featuresOf and osbPairsInto (one event loop: no two calls interleave). */
const slotScratch = new Uint32Array(TEXT_BYTES + maxPairs(TEXT_BYTES));
const pairScratch = new Uint32Array(maxPairs(TEXT_BYTES));
let wordScratch = new Uint32Array(Math.ceil(TEXT_BYTES / 2));

/** Writes osbPairs' slots into `out` (room for maxPairs(bytes.length)); returns how many. */
function osbPairsInto(bytes: Uint8Array, seed: number, out: Uint32Array): number {
  if (wordScratch.length < Math.ceil(bytes.length / 2)) wordScratch = new Uint32Array(Math.ceil(bytes.length / 2));
  const words = wordScratch;
  let count = 0;
  let h = 0x811c9dc5;
  let inWord = false;
  for (let i = 0; i <= bytes.length; i++) {
    const b = i < bytes.length ? bytes[i] : 32;
    if (b > 32 && b !== 127) {
      h = Math.imul(h ^ b, 0x01000193);
      inWord = true;
    } else if (inWord) {
      words[count++] = h >>> 0;
      h = 0x811c9dc5;
      inWord = false;
    }
  }
  let n = 0;
  for (let i = 0; i < count; i++)
    for (let d = 1; d <= OSB_WINDOW && i + d < count; d++) {
      const x = Math.imul(words[i] ^ seed ^ Math.imul(words[i + d], 0x85ebca6b + 2 * d), 0x9e3779b1);
      out[n++] = (x ^ (x >>> 15)) >>> (32 - MODEL_BITS);
    }
  return n;
}
