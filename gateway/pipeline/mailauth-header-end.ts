// mailauth's DKIM verifier with a cheaper search for the end of the header section. Its
// MessageParser walks the header one byte at a time and, past the fourth byte, copies its
// four-byte window into a new array for every byte (`stateBytes.slice(-4)`): ~80 KB of garbage
// for a 2 KB message on the full path (8% of the gateway's JS allocations), and more for real
// mail, whose headers run to 2-10 KB. Here the same rule is applied at each LF only (found with
// indexOf), looking back at the bytes before it, so the split point — and so every header, body
// hash and result built on it — is the same; test/gateway/pipeline/mailauth-core.test.ts pins it
// against the published verifier over a corpus fed whole and in small chunks.
//
// Everything but processChunk is mailauth's own DkimVerifier (mailauth-core.ts loads the
// entry point with this class in its place). node_modules is never edited.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The parts of mailauth's MessageParser (lib/dkim/message-parser.js) that processChunk works with. */
interface MessageParser {
  state: 'header' | 'body';
  stateBytes: number[];
  headerBytes: number;
  headerChunks: Buffer[];
  emitHeaders(chunk?: Buffer): Promise<void>;
  nextChunk(chunk: Buffer): Promise<void>;
}
type Verifier = new (options: unknown) => MessageParser;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Where the header section ends in `chunk`: the index of the LF of its empty line (or of a
 * leading empty line: no header at all), or -1. The rule is MessageParser's, byte for byte:
 * an LF after an LF or after CR LF, or an LF that is the stream's first byte, or its second
 * after a CR. `before` is up to four bytes the stream had before this chunk; `seen` their count.
 */
export function headerEnd(chunk: Uint8Array, before: readonly number[], seen: number): number {
  const back = (i: number, n: number): number | undefined => (i - n >= 0 ? chunk[i - n] : before[before.length + i - n]);
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
    const at = seen + i + 1;
    const b1 = back(i, 1);
    if (b1 === LF || (b1 === CR && back(i, 2) === LF) || at === 1 || (at === 2 && b1 === CR)) return i;
  }
  return -1;
}

/** The last four bytes of `before` followed by `chunk[0..end)`: MessageParser's window. */
function lastFour(before: readonly number[], chunk: Uint8Array, end: number): number[] {
  const out = end >= 4 ? [] : before.slice(Math.max(0, before.length - (4 - end)));
  for (let i = Math.max(0, end - 4); i < end; i++) out.push(chunk[i]);
  return out;
}

function withHeaderEnd(DkimVerifier: Verifier): Verifier {
  return class HeaderEndVerifier extends DkimVerifier {
    async processChunk(input: Buffer): Promise<void> {
      let chunk = input;
      if (!chunk || !chunk.length) return;
      if (this.state === 'header') {
        const end = headerEnd(chunk, this.stateBytes, this.headerBytes);
        const upTo = end === -1 ? chunk.length : end + 1;
        this.stateBytes = lastFour(this.stateBytes, chunk, upTo);
        this.headerBytes += upTo;
        if (end === chunk.length - 1) {
          await this.emitHeaders(chunk);
          return;
        }
        if (end !== -1) {
          await this.emitHeaders(chunk.slice(0, end + 1));
          chunk = chunk.slice(end + 1);
        }
      }
      if (this.state !== 'body') {
        this.headerChunks.push(chunk);
        return;
      }
      await this.nextChunk(chunk);
    }
  };
}

/** mailauth's dkim-verifier module (its file, and its exports with DkimVerifier replaced by the subclass above). */
export function headerEndVerifierModule(): { file: string; exports: { DkimVerifier: Verifier } } {
  const file = require.resolve('mailauth/lib/dkim/dkim-verifier.js');
  const published = require(file) as { DkimVerifier: Verifier };
  return { file, exports: { ...published, DkimVerifier: withHeaderEnd(published.DkimVerifier) } };
}
