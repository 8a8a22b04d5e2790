// Issue 18: "by option the From header must belong to the account" (submission.senders.
// checkFromHeader). The envelope sender is checked at MAIL; the From header only exists once the
// message is in, so its addresses are taken from the header block as DATA streams past (at most
// 64 KiB are kept: the header block ends long before that in any real message), and decided
// with the same ownership rule at the end of DATA (rules/from-header.ts).
import type { Readable } from 'node:stream';

const MAX_HEAD = 64 * 1024;

/** Collects the header block of a DATA stream (alongside whatever else reads it). */
export function captureHead(stream: Readable): { head(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const onData = (chunk: Buffer) => {
    if (done) return;
    chunks.push(chunk);
    size += chunk.length;
    const text = Buffer.concat(chunks).toString('latin1');
    if (size >= MAX_HEAD || /\r?\n\r?\n/.test(text)) {
      done = true;
      stream.off('data', onData);
    }
  };
  stream.on('data', onData);
  return {
    head() {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.search(/\r?\n\r?\n/);
      return end === -1 ? text : text.slice(0, end);
    },
  };
}
