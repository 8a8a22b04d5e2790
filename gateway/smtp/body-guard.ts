// The DATA stream on its way to the spool: puts our trace headers (Received-SPF, the front-line
// summary) in front, and counts — or, by policy, normalises — bare CR and bare LF, and NUL bytes
// (counted, or stripped: rules/nul-bytes.ts says why).
//
// Why: smtp-server ends DATA only at <CRLF>.<CRLF> (so "<LF>.<LF>" cannot end a message here),
// but it passes stray CR and LF through. A downstream or an upstream server that reads them as
// line ends would see a different message boundary than we did: that is SMTP smuggling. The
// default refuses such a message (550 5.5.2, Postfix smtpd_forbid_bare_newline=reject);
// "normalize" turns each into CRLF (then "<LF>.<LF>" becomes an ordinary dot line, dot-stuffed
// by nodemailer on the way out). Chunk boundaries are handled: a CR at the end of one chunk is
// held back until the next chunk shows whether an LF follows.
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const CR_BUF = Buffer.from('\r');
const CRLF = Buffer.from('\r\n');

export interface BodyReport {
  bareLf: number;
  bareCr: number;
  /** NUL bytes seen (removed from the output when the guard strips them; rules/nul-bytes.ts). */
  nul: number;
  /** Body bytes (without the prefix), as the client sent them. */
  bytes: number;
}

export class BodyGuard extends Transform {
  readonly report: BodyReport = { bareLf: 0, bareCr: 0, nul: 0, bytes: 0 };
  readonly prefixBytes: number;
  #prefix: Buffer | null;
  #normalize: boolean;
  #stripNul: boolean;
  #heldCr = false;

  constructor(o: { prefix?: Buffer; normalize: boolean; stripNul?: boolean }) {
    super();
    this.#prefix = o.prefix && o.prefix.length > 0 ? o.prefix : null;
    this.prefixBytes = this.#prefix?.length ?? 0;
    this.#normalize = o.normalize;
    this.#stripNul = o.stripNul ?? false;
  }

  override _transform(input: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#prefix) {
      this.push(this.#prefix);
      this.#prefix = null;
    }
    this.report.bytes += input.length;
    let chunk = input;
    if (this.#heldCr) {
      this.#heldCr = false;
      chunk = Buffer.concat([CR_BUF, input]);
    }
    const out: Buffer[] = [];
    let start = 0;
    const len = chunk.length;
    // Jumps from one CR, LF or NUL to the next (Buffer.indexOf, native) instead of testing every
    // byte in JS: a text body has one CRLF per line and no NUL, so this is a few calls per line.
    let nextCr = chunk.indexOf(CR);
    let nextLf = chunk.indexOf(LF);
    let nextNul = chunk.indexOf(NUL);
    for (;;) {
      const i = Math.min(nextCr < 0 ? len : nextCr, nextLf < 0 ? len : nextLf, nextNul < 0 ? len : nextNul);
      if (i >= len) break;
      const b = chunk[i];
      if (b === CR) {
        if (i === len - 1) {
          // an LF may follow in the next chunk
          out.push(chunk.subarray(start, i));
          start = len;
          this.#heldCr = true;
          break;
        }
        if (chunk[i + 1] === LF) {
          nextCr = chunk.indexOf(CR, i + 2);
          nextLf = chunk.indexOf(LF, i + 2);
          continue;
        }
        this.report.bareCr++;
        if (this.#normalize) {
          out.push(chunk.subarray(start, i), CRLF);
          start = i + 1;
        }
        nextCr = chunk.indexOf(CR, i + 1);
      } else if (b === NUL) {
        this.report.nul++;
        if (this.#stripNul) {
          out.push(chunk.subarray(start, i));
          start = i + 1;
        }
        nextNul = chunk.indexOf(NUL, i + 1);
      } else {
        // a bare LF: one that is part of a CRLF was skipped above
        this.report.bareLf++;
        if (this.#normalize) {
          out.push(chunk.subarray(start, i), CRLF);
          start = i + 1;
        }
        nextLf = chunk.indexOf(LF, i + 1);
      }
    }
    if (start < len) out.push(chunk.subarray(start));
    for (const part of out) if (part.length > 0) this.push(part);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#prefix) this.push(this.#prefix);
    if (this.#heldCr) {
      this.report.bareCr++;
      this.push(this.#normalize ? CRLF : CR_BUF);
    }
    done();
  }
}

/** The first kind of bare line ending seen, if any (LF wins: it is the smuggling classic). */
export function bareKind(report: BodyReport): 'LF' | 'CR' | undefined {
  if (report.bareLf > 0) return 'LF';
  if (report.bareCr > 0) return 'CR';
  return undefined;
}
