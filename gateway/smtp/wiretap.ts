// A passive observer of what a client sends, read by read, to find RFC 2920 pipelining violations
// (Postfix 3.9 smtpd_forbid_unauth_pipelining) and bare LF in command lines. smtp-server gives no
// command-level hook and parses commands on CR?LF, so this watches the same bytes its parser gets.
//
// Why one socket read is the unit: the server answers a command only after it has read it, so
// bytes that arrive in the SAME read as a command the client had to wait on were sent before our
// reply — the client did not wait. RFC 2920 §3.1: EHLO/HELO and DATA must end a command group
// (and a client that said HELO, not EHLO, knows of no PIPELINING at all). Bytes after the end of
// DATA (".") are allowed, as in Postfix. False negatives are possible (a DATA we refused leaves
// the tap waiting for an end-of-data that never comes); false positives are not.
//
// It never changes or consumes data: it only listens to 'data' events added AFTER smtp-server
// piped the socket into its parser (see server.ts), and stops at STARTTLS (the TLS socket gets
// a tap of its own).
const END_OF_DATA = Buffer.from('\r\n.\r\n');
const MAX_LINE = 4096;
const EMPTY = Buffer.alloc(0);
const CRLF = Buffer.from('\r\n');
const FIRST_WORD = /\S+/;

export interface WireFindings {
  /** The command the client did not wait for ("DATA", "EHLO", "MAIL (after HELO)"), the first one only. */
  pipelining?: string;
  /** A command line ended by LF alone. */
  bareLfInCommand: boolean;
}

export class WireTap {
  readonly findings: WireFindings = { bareLfInCommand: false };
  #mode: 'command' | 'data' | 'stopped' = 'command';
  #line: Buffer = EMPTY;
  #tail: Buffer = EMPTY;
  #heloOnly = false;

  observe(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.#mode !== 'stopped') {
      pos = this.#mode === 'data' ? this.#scanData(chunk, pos) : this.#scanCommand(chunk, pos);
    }
  }

  /** Consumes one command line (or the partial rest of the chunk); returns where it stopped. */
  #scanCommand(chunk: Buffer, from: number): number {
    const nl = chunk.indexOf(0x0a, from);
    if (nl === -1) {
      this.#line = Buffer.concat([this.#line, chunk.subarray(from)]).subarray(0, MAX_LINE);
      return chunk.length;
    }
    const line = this.#line.length === 0 ? chunk.subarray(from, nl) : Buffer.concat([this.#line, chunk.subarray(from, nl)]);
    if (this.#line.length > 0) this.#line = EMPTY;
    if (line.length === 0 || line[line.length - 1] !== 0x0d) this.findings.bareLfInCommand = true;
    const more = nl + 1 < chunk.length;
    // the first word (as trim + split on whitespace, without building either)
    const name = FIRST_WORD.exec(line.toString('latin1'))?.[0].toUpperCase() ?? '';
    const violate = (what: string) => {
      if (more) this.findings.pipelining ??= what;
    };
    switch (name) {
      case 'EHLO':
        this.#heloOnly = false;
        violate('EHLO');
        break;
      case 'HELO':
        this.#heloOnly = true;
        violate('HELO');
        break;
      case 'DATA':
        violate('DATA');
        this.#mode = 'data';
        // the CRLF that ended "DATA" lets an empty message end at once with ".\r\n"
        this.#tail = CRLF;
        break;
      case 'STARTTLS':
      case 'QUIT':
        this.#mode = 'stopped';
        break;
      default:
        if (this.#heloOnly) violate(`${name || 'a command'} (after HELO, without PIPELINING)`);
    }
    return nl + 1;
  }

  /**
   * Looks for <CRLF>.<CRLF> across reads; returns where command mode resumes, or the chunk's end.
   * The body is searched where it lies (no copy of it per read): only an end that starts in the
   * few bytes kept from the previous read is looked for in a joined window of at most 8 bytes.
   */
  #scanData(chunk: Buffer, from: number): number {
    const tail = this.#tail;
    if (tail.length > 0) {
      const joint = Buffer.concat([tail, chunk.subarray(from, from + END_OF_DATA.length - 1)]);
      const at = joint.indexOf(END_OF_DATA);
      if (at !== -1 && at < tail.length) return this.#resume(from + at + END_OF_DATA.length - tail.length);
    }
    const at = chunk.indexOf(END_OF_DATA, from);
    if (at !== -1) return this.#resume(at + END_OF_DATA.length);
    // Keep the last bytes seen (up to 4), copied: they may start an end split across reads.
    const keep = END_OF_DATA.length - 1;
    const rest = chunk.length - from;
    this.#tail = rest >= keep ? Buffer.from(chunk.subarray(chunk.length - keep)) : Buffer.concat([tail, chunk.subarray(from)]).subarray(-keep);
    return chunk.length;
  }

  #resume(at: number): number {
    this.#mode = 'command';
    this.#tail = EMPTY;
    return at;
  }
}
