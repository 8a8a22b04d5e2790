// The one MIME splitter every reader of a message uses (the walk, the text scan, the rewrites):
// mailsplit's Splitter with one repair, so that what the scanners see and what the rewrite
// writes out are the same bytes the sender sent.
//
// The repair: a part whose header block is not closed by a blank line before the next
// delimiter line ("--B\r\nContent-Type: text/plain\r\n--B\r\n"). mailsplit 5.4 drops the
// header lines of such a part when a sibling delimiter follows (the part is never emitted, its
// bytes vanish from the copy) and emits them twice when a closing delimiter follows (once as
// the part's headers, once glued to the delimiter line). Both broke "a part nobody changed keeps
// every byte" (and DKIM) while the rewrite reported nothing changed, and a part the scanners
// never saw was one a mail client may still show. Here such a part is emitted as a part with
// headers and an empty body, and the delimiter line as its own data chunk, like any other.
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';

export interface SplitterLimits {
  /** Header block bytes per MIME node (mailsplit maxHeadSize). */
  maxHeaderBytes: number;
  /** MIME nodes per message. */
  maxParts: number;
}

/** Splitter settings shared by every reader so that all number parts alike. */
export function splitterOptions(l: SplitterLimits) {
  return { maxHeadSize: l.maxHeaderBytes, maxChildNodes: l.maxParts + 1 };
}

type LineCallback = (err?: Error | null, data?: SplitterChunk | false, flush?: boolean) => void;

/** mailsplit's internals this repair relies on (message-splitter.js, mime-node.js of 5.4.x). */
interface SplitterInternals {
  state: number;
  node: MimeNode & { headers: unknown; _headerlen: number; parseHeaders(): void };
  processLine(line: Buffer | false, final: boolean, next: LineCallback): void;
  push(chunk: unknown): boolean;
}

const HEAD = 0x01;

class RepairedSplitter extends Splitter {
  processLine(line: Buffer | false, final: boolean, next: LineCallback): void {
    const self = this as unknown as SplitterInternals;
    const before = self.node;
    const openHeaderBlock = self.state === HEAD && before._headerlen > 0 && !before.headers;
    const parent = Splitter.prototype as unknown as SplitterInternals;
    // Nothing to repair on this line: no callback of our own (this runs for every line).
    if (!openHeaderBlock) return parent.processLine.call(this, line, final, next);
    parent.processLine.call(this, line, final, (err, data, flush) => {
      // A delimiter line ended a header block that had no blank line: the splitter has moved on.
      if (!err && data && data.type === 'data' && self.node !== before) {
        if (!before.headers) {
          before.parseHeaders();
          self.push(before);
        }
        // flush: the delimiter line goes out alone, not glued to the header bytes before it.
        return next(err, data, true);
      }
      next(err, data, flush);
    });
  }
}

/**
 * Splitters made by this process (this thread): what a test reads to see that one message is
 * split once per analysis, not once per analyser (gateway/pipeline/mime-pass.ts).
 */
export const splitterStats = { created: 0 };

/** A mailsplit Splitter with the header-block repair above. */
export function createSplitter(limits: SplitterLimits, extra: { ignoreEmbedded?: boolean } = {}): Splitter {
  splitterStats.created++;
  return new RepairedSplitter({ ...splitterOptions(limits), ...extra });
}
