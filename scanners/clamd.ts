// Our own clamd client (INSTREAM over a unix or TCP socket). The `clamscan` package was rejected:
// it loses clamd's size-limit reply behind a bare EPIPE and turns unknown replies into `null`
// (see docs/dependencies.md §3). Contract of `scan()`: it never throws for a scan failure and never
// reports "clean" unless clamd said `stream: OK` for every byte we sent (fail closed).
import net from 'node:net';
import { Readable } from 'node:stream';
import type { VirusScan } from './types.ts';

export type ClamdAddress = { socketPath: string } | { host: string; port: number };

export interface ClamdOptions {
  /** Budget for one whole command: connect, send, and clamd's last reply byte. */
  timeoutMs: number;
  /**
   * Client-side cap. Above it we stop sending and report "unscannable" ourselves, so a
   * mis-set clamd (StreamMaxLength larger than MaxScanSize without AlertExceedsMax) cannot
   * turn a partial scan into "clean". Unset: only clamd's own limits apply.
   */
  maxStreamBytes?: number;
}

/** Thrown by ping()/version() (health checks), never by scan(). */
export class ClamdError extends Error {
  override name = 'ClamdError';
}

// clamd's stream buffer is 64 KiB-friendly; smaller frames also keep backpressure responsive.
const FRAME_BYTES = 64 * 1024;
// A legitimate reply is a line or a few (AllMatchScan); anything larger is not clamd.
const MAX_REPLY_BYTES = 64 * 1024;

interface Exchange {
  reply: Buffer;
  error: Error | undefined;
  timedOut: boolean;
  overflow: boolean;
}

type SendOutcome = 'sent' | 'peer-closed' | 'client-limit' | 'input-error';

export class ClamdClient {
  readonly #address: ClamdAddress;
  readonly #timeoutMs: number;
  readonly #maxStreamBytes: number | undefined;

  constructor(address: ClamdAddress, options: ClamdOptions) {
    if (!('socketPath' in address) && !('host' in address && 'port' in address)) {
      throw new TypeError('ClamdClient needs { socketPath } or { host, port }');
    }
    if (!(options.timeoutMs > 0)) throw new TypeError('ClamdClient: timeoutMs must be > 0');
    if (options.maxStreamBytes !== undefined && !(options.maxStreamBytes > 0)) {
      throw new TypeError('ClamdClient: maxStreamBytes must be > 0');
    }
    this.#address = address;
    this.#timeoutMs = options.timeoutMs;
    this.#maxStreamBytes = options.maxStreamBytes;
  }

  /** Resolves when clamd answers PONG; throws ClamdError otherwise. */
  async ping(): Promise<void> {
    const reply = await this.#command('zPING\0');
    if (reply !== 'PONG') throw new ClamdError(`clamd answered PING with ${quote(reply)}`);
  }

  /** e.g. "ClamAV 1.4.6/27500/Mon Nov 23 09:00:00 2026". Throws ClamdError on failure. */
  async version(): Promise<string> {
    return this.#command('zVERSION\0');
  }

  /**
   * Streams the input to clamd with zINSTREAM. A Readable is consumed, and destroyed if the
   * scan stops early (limit, clamd closed, timeout), so the caller's file handle is released.
   */
  async scan(input: Readable | Buffer): Promise<VirusScan> {
    if (!Buffer.isBuffer(input) && !(input instanceof Readable)) {
      throw new TypeError('ClamdClient.scan needs a Buffer or a Readable');
    }
    let outcome: SendOutcome = 'peer-closed';
    let inputError: unknown;
    const ex = await exchange(this.#address, this.#timeoutMs, async (socket, stopped) => {
      try {
        outcome = await sendInstream(socket, input, this.#maxStreamBytes, stopped);
      } catch (err) {
        // Only the input can throw here: socket trouble ends the send loop quietly and shows
        // up as the exchange's error, after whatever clamd managed to reply.
        outcome = 'input-error';
        inputError = err;
      }
      if (outcome === 'client-limit' || outcome === 'input-error') socket.destroy();
    });
    if (input instanceof Readable && !input.readableEnded) input.destroy();
    return this.#judge(ex, outcome, inputError);
  }

  #judge(ex: Exchange, outcome: SendOutcome, inputError: unknown): VirusScan {
    if (outcome === 'client-limit') {
      return { status: 'unscannable', reason: `message is larger than the clamd scan limit of ${this.#maxStreamBytes} bytes` };
    }
    if (outcome === 'input-error') {
      return { status: 'error', reason: `could not read the message to scan: ${errorText(inputError)}` };
    }
    if (ex.timedOut) return { status: 'error', reason: `clamd did not answer within ${this.#timeoutMs} ms` };
    if (ex.overflow) return { status: 'error', reason: 'clamd reply is implausibly long' };
    // A reply is judged even when the socket also failed: on the size limit clamd answers and
    // closes at once, so a write of ours fails with EPIPE next to a perfectly good reply.
    if (ex.reply.length > 0) return parseScanReply(ex.reply);
    if (ex.error) return { status: 'error', reason: `clamd connection failed: ${errorText(ex.error)}` };
    return { status: 'error', reason: 'clamd closed the connection without a reply' };
  }

  /** One short command (PING, VERSION): the NUL-terminated reply, without the NUL. */
  async #command(command: string): Promise<string> {
    const ex = await exchange(this.#address, this.#timeoutMs, async (socket) => {
      socket.write(command);
    });
    if (ex.timedOut) throw new ClamdError(`clamd did not answer within ${this.#timeoutMs} ms`);
    if (ex.overflow) throw new ClamdError('clamd reply is implausibly long');
    const text = ex.reply.toString('utf8');
    if (!text.endsWith('\0')) {
      const why = ex.error ? errorText(ex.error) : `incomplete reply ${quote(text)}`;
      throw new ClamdError(`clamd ${command.slice(1, -1)} failed: ${why}`);
    }
    return text.slice(0, -1).trim();
  }
}

/**
 * Maps clamd's INSTREAM reply to a VirusScan. Exported for protocol tests. In z-mode every
 * reply ends with NUL; with AllMatchScan there can be several "FOUND" replies.
 */
export function parseScanReply(reply: Buffer): VirusScan {
  const text = reply.toString('utf8');
  // A reply cut short (clamd died mid-write) must not pass as "OK".
  if (!text.endsWith('\0')) return { status: 'error', reason: `incomplete clamd reply ${quote(text)}` };
  const lines = text
    .split('\0')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (lines.length === 0) return { status: 'error', reason: 'empty clamd reply' };
  const found: string[] = [];
  let ok = false;
  for (const line of lines) {
    if (line === 'stream: OK') {
      ok = true;
      continue;
    }
    const m = /^stream: (.+) FOUND$/.exec(line);
    if (m) {
      found.push(m[1]!);
      continue;
    }
    if (/size limit exceeded/i.test(line)) return { status: 'unscannable', reason: `clamd: ${clip(line)}` };
    return { status: 'error', reason: `unexpected clamd reply ${quote(line)}` };
  }
  if (found.length === 0) return ok ? { status: 'clean' } : { status: 'error', reason: 'no verdict in clamd reply' };
  // With AlertExceedsMax/AlertEncrypted clamd reports "could not look" as a pseudo-signature.
  // Alone, it means "not scanned" rather than "malware"; next to a real signature, the real
  // signature decides.
  if (found.every(isLimitSignature)) {
    return { status: 'unscannable', reason: `clamd: ${found.join(', ')}` };
  }
  return { status: 'infected', viruses: found };
}

function isLimitSignature(sig: string): boolean {
  return /^Heuristics\.(Limits\.Exceeded|Exceeds|Encrypted)\b/i.test(sig);
}

/**
 * Opens one connection, lets `send` write the request, and collects every byte clamd sends
 * until the connection closes (clamd closes after each command outside IDSESSION). Never rejects.
 */
function exchange(address: ClamdAddress, timeoutMs: number, send: (s: net.Socket, stopped: () => boolean) => Promise<void>): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const ex: Exchange = { reply: Buffer.alloc(0), error: undefined, timedOut: false, overflow: false };
    const socket = 'socketPath' in address ? net.connect({ path: address.socketPath }) : net.connect({ host: address.host, port: address.port });
    const writes = absorbPeerGoneWrites(socket);
    const timer = setTimeout(() => {
      ex.timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REPLY_BYTES) {
        ex.overflow = true;
        socket.destroy();
        return;
      }
      chunks.push(chunk);
    });
    socket.on('error', (err) => {
      ex.error ??= err;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      ex.error ??= writes.failed();
      ex.reply = Buffer.concat(chunks);
      resolve(ex);
    });
    // Stop sending once clamd has spoken (it only speaks early when it gives up) or a write failed.
    socket.once('connect', () => {
      void send(socket, () => size > 0 || writes.failed() !== undefined);
    });
  });
}

/**
 * When clamd hits StreamMaxLength it answers and closes at once, so a write of ours can fail
 * with EPIPE while clamd's answer already sits in the kernel. Node would destroy the socket on
 * that write error and drop the answer (measured: lost in 16–50% of oversize scans). We wrap
 * this one socket's `_write`/`_writev` (the stream-implementer contract) so that a peer-gone
 * write error is recorded instead of destroying the socket; reading then continues to EOF.
 * The sender checks `failed()` before every write, so nothing is written after the failure.
 */
function absorbPeerGoneWrites(socket: net.Socket): { failed: () => Error | undefined } {
  let failure: Error | undefined;
  type Callback = (err?: Error | null) => void;
  const target = socket as unknown as {
    _write: (chunk: unknown, encoding: BufferEncoding, cb: Callback) => void;
    _writev?: (chunks: unknown[], cb: Callback) => void;
  };
  const guard =
    (cb: Callback): Callback =>
    (err) => {
      const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
      if (err && (code === 'EPIPE' || code === 'ECONNRESET')) {
        failure ??= err;
        cb();
        return;
      }
      cb(err);
    };
  const write = target._write;
  target._write = (chunk, encoding, cb) => write.call(socket, chunk, encoding, guard(cb));
  const writev = target._writev;
  if (writev) target._writev = (chunks, cb) => writev.call(socket, chunks, guard(cb));
  return { failed: () => failure };
}

/**
 * zINSTREAM framing: `<uint32 BE length><bytes>`…, then a zero length ends the stream.
 * We yield to the event loop between frames: Node writes synchronously while the kernel buffer
 * has room and would otherwise push megabytes after clamd has already given up and answered.
 */
async function sendInstream(socket: net.Socket, input: Readable | Buffer, limit: number | undefined, stopped: () => boolean): Promise<SendOutcome> {
  if (Buffer.isBuffer(input) && input.length > 0 && input.length <= FRAME_BYTES && (limit === undefined || input.length <= limit)) {
    // A message of one frame, in memory: the command, the frame and the end of the stream in one
    // write (nothing to yield between: clamd can only give up after reading all of it).
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(input.length, 0);
    return (await writeAll(socket, Buffer.concat([Buffer.from('zINSTREAM\0'), length, input, Buffer.alloc(4)]))) ? 'sent' : 'peer-closed';
  }
  if (!(await writeAll(socket, Buffer.from('zINSTREAM\0')))) return 'peer-closed';
  let total = 0;
  for await (const chunk of chunksOf(input)) {
    // A zero-length frame would end the stream early and get the rest of the message
    // unscanned: empty chunks are skipped, never sent.
    if (chunk.length === 0) continue;
    total += chunk.length;
    if (limit !== undefined && total > limit) return 'client-limit';
    for (let at = 0; at < chunk.length; at += FRAME_BYTES) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (stopped()) return 'peer-closed';
      const frame = chunk.subarray(at, at + FRAME_BYTES);
      const framed = Buffer.allocUnsafe(4 + frame.length);
      framed.writeUInt32BE(frame.length, 0);
      frame.copy(framed, 4);
      if (!(await writeAll(socket, framed))) return 'peer-closed';
    }
  }
  return (await writeAll(socket, Buffer.alloc(4))) ? 'sent' : 'peer-closed';
}

async function* chunksOf(input: Readable | Buffer): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(input)) {
    yield input;
    return;
  }
  for await (const chunk of input) {
    if (Buffer.isBuffer(chunk)) yield chunk;
    else if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else if (chunk instanceof Uint8Array) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw new TypeError('scan input stream yielded a non-binary chunk');
  }
}

/**
 * Writes and honours backpressure. Resolves false when the socket is gone (clamd closed it,
 * timeout): the caller stops sending and the exchange reports what clamd said.
 */
async function writeAll(socket: net.Socket, data: Buffer): Promise<boolean> {
  if (socket.destroyed || !socket.writable) return false;
  if (socket.write(data)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}

function errorText(err: unknown): string {
  return clip(err instanceof Error ? err.message : String(err));
}

/** Replies come from a socket: strip control characters and bound the length before logging. */
function clip(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ').trim();
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

function quote(text: string): string {
  return JSON.stringify(clip(text));
}
