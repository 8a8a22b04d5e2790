// The durable spool: the source of truth for every accepted message until it is delivered or
// quarantined. Like Postfix, a message counts as received only when its body AND its envelope
// are on disk and fsync'd; the envelope file is the commit record, written last by an atomic
// rename. A body without an envelope (crash during DATA) is discarded at start-up.
//
// Layout under <dir>:  incoming/<id>.eml (being received)  →  <id>.eml + <id>.json (committed)
//                      <id>.out.eml (the scanned, stamped copy that delivery sends)
import type { EnvelopeReport } from '../reports/rcpt.ts';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { SmtpRefusal, replies } from '../../rules/replies.ts';

/** DSN parameters received with the message (RFC 3461), passed on downstream and honoured in our own DSNs. */
export interface EnvelopeDsn {
  ret?: string;
  envid?: string;
  /** Per recipient: NOTIFY values (NEVER, SUCCESS, FAILURE, DELAY) and ORCPT ("rfc822;addr"). */
  recipients?: Record<string, { notify?: string[]; orcpt?: string }>;
}

export interface Envelope {
  id: string;
  receivedAt: number;
  clientIp: string;
  clientHostname: string | null;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  tls: boolean;
  dsn?: EnvelopeDsn;
  /** Issue 8: set when the message is a spam report to a report address (gateway/reports/). */
  report?: EnvelopeReport;
}

export class Spool {
  readonly dir: string;
  readonly incomingDir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.incomingDir = path.join(dir, 'incoming');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.incomingDir, { recursive: true });
  }

  messagePath(id: string): string {
    return path.join(this.dir, `${id}.eml`);
  }

  outputPath(id: string): string {
    return path.join(this.dir, `${id}.out.eml`);
  }

  private envelopePath(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  /**
   * Streams DATA into incoming/<id>.eml, stopping writes (but draining the input) once more than
   * maxBytes arrived. Returns the byte count and whether the limit was passed. A write failure
   * becomes the SMTP reply the client should get: 452 4.3.1 when the disk is full, else 451 4.3.0.
   */
  async receive(id: string, input: Readable, maxBytes: number): Promise<{ size: number; oversized: boolean }> {
    const file = path.join(this.incomingDir, `${id}.eml`);
    const handle = await fs.open(file, 'wx').catch((err) => {
      throw storageRefusal(err);
    });
    let size = 0;
    let writeError: unknown;
    try {
      // The client's stream is always drained to its end, even past the limit or after a write
      // error, so that the SMTP session stays in step and the client gets a proper reply.
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size > maxBytes || writeError) return done();
          handle.write(chunk).then(
            () => done(),
            (err: unknown) => {
              writeError = err;
              done();
            },
          );
        },
      });
      await pipeline(input, sink);
      if (writeError) throw writeError;
      if (size > maxBytes) {
        await handle.close();
        await fs.rm(file, { force: true });
        return { size, oversized: true };
      }
      await handle.sync();
      await handle.close();
      return { size, oversized: false };
    } catch (err) {
      await handle.close().catch(() => {});
      await fs.rm(file, { force: true });
      throw storageRefusal(err);
    }
  }

  /** Makes a received message durable: envelope fsync'd and renamed into place last. */
  async commit(envelope: Envelope): Promise<void> {
    const { id } = envelope;
    try {
      await writeFileDurably(this.envelopePath(id), JSON.stringify(envelope));
      await fs.rename(path.join(this.incomingDir, `${id}.eml`), this.messagePath(id));
      await syncDir(this.dir);
    } catch (err) {
      // Not committed, so not acknowledged: remove every trace, the body in incoming/ included.
      await this.remove(id);
      await this.discardIncoming(id);
      throw storageRefusal(err);
    }
  }

  /** Drops an uncommitted message (its SMTP transaction failed after DATA was received). */
  async discardIncoming(id: string): Promise<void> {
    await fs.rm(path.join(this.incomingDir, `${id}.eml`), { force: true });
  }

  async readEnvelope(id: string): Promise<Envelope | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.envelopePath(id), 'utf8')) as Envelope;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Writes the scanned copy: produced into a temp file, fsync'd, renamed, so delivery never sees half of it. */
  async writeOutput(id: string, produce: (out: Writable) => Promise<void>): Promise<void> {
    const tmp = `${this.outputPath(id)}.tmp`;
    const out = createWriteStream(tmp);
    try {
      await produce(out);
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      const handle = await fs.open(tmp, 'r');
      await handle.sync();
      await handle.close();
      await fs.rename(tmp, this.outputPath(id));
    } catch (err) {
      out.destroy();
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Puts a message back into the spool for delivery only (a release from quarantine): its output
   * copy first, then the envelope as the commit record, exactly as a fresh message is committed.
   */
  async restoreForDelivery(envelope: Envelope, produce: (out: Writable) => Promise<void>): Promise<void> {
    await this.writeOutput(envelope.id, produce);
    await writeFileDurably(this.envelopePath(envelope.id), JSON.stringify(envelope));
    await syncDir(this.dir);
  }

  async hasOutput(id: string): Promise<boolean> {
    return fs.access(this.outputPath(id)).then(
      () => true,
      () => false,
    );
  }

  /** Removes every file of a message once it is delivered or safely quarantined. */
  async remove(id: string): Promise<void> {
    await Promise.all(
      [this.messagePath(id), this.outputPath(id), `${this.outputPath(id)}.tmp`, this.envelopePath(id)].map((f) =>
        fs.rm(f, { force: true }),
      ),
    );
  }

  /** Ids of committed messages still in the spool (for reconciliation with the queue at start). */
  async committedIds(): Promise<string[]> {
    const names = await fs.readdir(this.dir);
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)).sort();
  }

  /** Bodies left in incoming/ by a crash mid-DATA were never acknowledged: discard them. */
  async discardIncomplete(): Promise<number> {
    const names = await fs.readdir(this.incomingDir);
    await Promise.all(names.map((n) => fs.rm(path.join(this.incomingDir, n), { force: true })));
    return names.length;
  }

  /** Free bytes on the spool's file system (for the "insufficient storage" check at MAIL FROM). */
  async freeBytes(): Promise<number> {
    const s = await fs.statfs(this.dir);
    return s.bavail * s.bsize;
  }
}

function storageRefusal(err: unknown): SmtpRefusal {
  if (err instanceof SmtpRefusal) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new SmtpRefusal(code === 'ENOSPC' || code === 'EDQUOT' ? replies.spoolFull() : replies.spoolWriteFailed());
}

async function writeFileDurably(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Header blocks are read up to this many bytes; a longer one is cut (the rest is body, or hostile). */
const MAX_HEADER_BYTES = 64 * 1024;

/** The top header block of a spooled message file (without the empty line that ends it), bounded. */
export async function readHeaderBlock(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    const end = head.indexOf('\r\n\r\n');
    return end >= 0 ? head.subarray(0, end) : head;
  } finally {
    await handle.close();
  }
}
