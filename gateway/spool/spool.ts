// The durable spool: the source of truth for every accepted message until it is delivered or
// quarantined. Like Postfix, a message counts as received only when its body AND its envelope
// are on disk and fsync'd; the envelope file is the commit record, written last by an atomic
// rename. A body without an envelope (crash during DATA) is discarded at start-up.
//
// Layout under <dir>:  incoming/<id>.eml (being received)  →  <id>.eml + <id>.json (committed)
//                      <id>.out.eml (the scanned, stamped copy that delivery sends)
//
// Several machines (issue 9, a SpoolReplica in the database): an accepted message must survive
// the loss of the machine that accepted it, so commit puts body and envelope into the replica
// before the 250 (envelope last: the shared commit record) and keeps no local copy; a failure
// there refuses the message as a local one would. The directory is then only a working copy: the replica is the
// truth, readEnvelope fetches a message into the local directory of whichever node handles it,
// scanned copies and releases are copied back, remove clears both, and evictLocal drops a node's
// working copy when its job there ends. Without a replica (one machine) nothing of this happens.
import type { EnvelopeReport } from '../reports/rcpt.ts';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { SmtpRefusal, replies } from '../../rules/replies.ts';
import { CoalescingFileWriter, closer, exists, fdOps, groupSync, unlinkIfPresent, writeFileDurably, writeIfChanged } from './files.ts';
import type { SpoolReplica } from './replica.ts';

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
  /** Set when the message is a spam report to a report address (gateway/reports/). */
  report?: EnvelopeReport;
  /**
   * Set when the message came in on a submission listener: the one record of who submitted it
   * (outbound: limits, DKIM, no inbound stamps; `user`, when authenticated, makes its mail the
   * sender's side's: rules/submission.ts, the console's scope, ESMTPSA).
   */
  submitted?: Submitted;
}

/** Who submitted an outbound message: an authenticated account, or a client of a relay network. */
export interface Submitted {
  listener: string;
  user?: string;
  relayNetwork?: string;
}

/**
 * How long a commit to the shared store may take before the client gets 451 4.3.0: a hung
 * database (its connections open, nothing answering) would otherwise hold the session for the
 * pool's 30 s statement timeout per write. The README promises 5 s, as for Redis.
 */
export const SHARED_COMMIT_TIMEOUT_MS = 5_000;

async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export class Spool {
  readonly dir: string;
  readonly incomingDir: string;
  /** The shared copy (several machines); without it the directory is the only copy. */
  private readonly replica: SpoolReplica | undefined;

  /** The directory's fsync, shared by the commits of concurrent sessions (see groupSync). */
  private readonly syncSpoolDir: () => Promise<void>;

  constructor(dir: string, o: { replica?: SpoolReplica } = {}) {
    this.dir = dir;
    this.incomingDir = path.join(dir, 'incoming');
    this.replica = o.replica;
    this.syncSpoolDir = groupSync(() => this.fsyncDir());
  }

  /**
   * The spool directory, opened once for the life of the Spool: each commit ends with its fsync,
   * which then needs no open and close around it (two thread-pool round trips). A held descriptor
   * also reports every write-back error since its last fsync, where a fresh one would miss those
   * from before its open.
   */
  private dirFd: Promise<number> | undefined;

  private async fsyncDir(): Promise<void> {
    const opening = (this.dirFd ??= fdOps.open(this.dir, 'r'));
    let fd: number;
    try {
      fd = await opening;
    } catch (err) {
      if (this.dirFd === opening) this.dirFd = undefined;
      throw err;
    }
    await fdOps.fsync(fd);
  }

  /** Committed to the shared store (the database) rather than to this directory. */
  get shared(): boolean {
    return this.replica !== undefined;
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
    const fd = await fdOps.open(file, 'wx').catch((err) => {
      throw storageRefusal(err);
    });
    const closeOnce = closer(fd);
    let size = 0;
    let writeError: unknown;
    // The write under way, if any (it never rejects). A client that breaks off mid-DATA ends the
    // pipeline at once, while a write may still sit in the thread pool: the descriptor must not be
    // closed before it is done, or its number, reused by the next file opened (another message's
    // envelope), would take these bytes (a FileHandle waited for it; a plain descriptor does not).
    let inFlight: Promise<void> = Promise.resolve();
    try {
      // The client's stream is always drained to its end, even past the limit or after a write
      // error, so that the SMTP session stays in step and the client gets a proper reply.
      // Chunks that arrive while a write is under way go to disk together in one writev.
      const put = (chunks: Buffer[], done: () => void) => {
        for (const c of chunks) size += c.length;
        if (size > maxBytes || writeError) return done();
        const written = chunks.length === 1 ? fdOps.write(fd, chunks[0]) : fdOps.writev(fd, chunks);
        inFlight = written.then(
          () => done(),
          (err: unknown) => {
            writeError = err;
            done();
          },
        );
      };
      const sink = new Writable({
        write: (chunk: Buffer, _enc, done) => put([chunk], done),
        writev: (chunks, done) =>
          put(
            chunks.map((c) => c.chunk as Buffer),
            done,
          ),
      });
      await pipeline(input, sink);
      if (writeError) throw writeError;
      if (size > maxBytes) {
        closeOnce();
        await fs.rm(file, { force: true });
        return { size, oversized: true };
      }
      await fdOps.fsync(fd);
      closeOnce();
      return { size, oversized: false };
    } catch (err) {
      await inFlight;
      try {
        closeOnce();
      } catch {
        // the file is removed below either way
      }
      await fs.rm(file, { force: true });
      throw storageRefusal(err);
    }
  }

  /**
   * Makes a received message durable: envelope fsync'd and renamed into place last. With a
   * replica, the message is committed only once its envelope is there too.
   */
  async commit(envelope: Envelope): Promise<void> {
    if (this.replica) return this.commitShared(envelope, this.replica);
    const { id } = envelope;
    try {
      // Body first, envelope last: a crash between the two leaves a body without an envelope
      // (never listed, never acknowledged), not an envelope whose body is missing.
      await fs.rename(path.join(this.incomingDir, `${id}.eml`), this.messagePath(id));
      await writeFileDurably(this.envelopePath(id), JSON.stringify(envelope));
      await this.syncSpoolDir();
    } catch (err) {
      // Not committed, so not acknowledged: remove every trace, the body in incoming/ included.
      await this.removeLocal(id);
      await this.discardIncoming(id);
      throw storageRefusal(err);
    }
  }

  /**
   * Several machines: the message is committed to the shared store (body, then the envelope as
   * the commit record) and kept nowhere else, so the loss of this machine loses nothing; a worker
   * anywhere copies it in when its job runs (readEnvelope).
   */
  private async commitShared(envelope: Envelope, replica: SpoolReplica): Promise<void> {
    const { id } = envelope;
    const incoming = path.join(this.incomingDir, `${id}.eml`);
    const writes = (async () => {
      await replica.put(id, 'body', await fs.readFile(incoming));
      await replica.put(id, 'envelope', Buffer.from(JSON.stringify(envelope)));
    })();
    try {
      await withDeadline(writes, SHARED_COMMIT_TIMEOUT_MS);
    } catch (err) {
      // Not in the shared store, so not acknowledged: the client gets a 4xx and sends it again.
      // The rows are removed once the writes have ended (one still under way may land late), in
      // the background: a hung database must not hold the reply past the deadline (it took two
      // query timeouts, 60 s, when this waited). A body row without its envelope is never listed.
      void writes
        .catch(() => {})
        .then(() => replica.remove(id))
        .catch(() => {});
      throw Object.assign(new SmtpRefusal(replies.spoolWriteFailed()), { cause: err });
    } finally {
      await this.discardIncoming(id);
    }
  }

  /** Drops an uncommitted message (its SMTP transaction failed after DATA was received). */
  async discardIncoming(id: string): Promise<void> {
    await fs.rm(path.join(this.incomingDir, `${id}.eml`), { force: true });
  }

  /**
   * The envelope of a committed message, or undefined if there is none (already handled). With a
   * replica, the shared envelope decides, and the message's files are fetched into the local
   * directory first, so that messagePath and outputPath can be read after it.
   */
  async readEnvelope(id: string): Promise<Envelope | undefined> {
    if (!this.replica) {
      try {
        return JSON.parse(await fs.readFile(this.envelopePath(id), 'utf8')) as Envelope;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }
    const shared = await this.replica.get(id, 'envelope');
    if (!shared) {
      // Removed (or never committed) in the cluster: a local copy is a leftover, not a message.
      await this.removeLocal(id);
      return undefined;
    }
    await this.materialise(id, this.replica, shared);
    return JSON.parse(shared.toString('utf8')) as Envelope;
  }

  /** Brings the local working copy in line with the replica; the envelope goes last, as in a commit. */
  private async materialise(id: string, replica: SpoolReplica, envelope: Buffer): Promise<void> {
    let wrote = false;
    // A body never changes under its id, so a local one is current; it is fetched only if missing.
    if (!(await exists(this.messagePath(id)))) {
      const body = await replica.get(id, 'body');
      if (body) wrote = (await writeIfChanged(this.messagePath(id), body)) || wrote;
    }
    // The output can be replaced (a scan retried on another node, a release): never trust ours.
    const output = await replica.get(id, 'output');
    if (output) wrote = (await writeIfChanged(this.outputPath(id), output)) || wrote;
    else await fs.rm(this.outputPath(id), { force: true });
    wrote = (await writeIfChanged(this.envelopePath(id), envelope)) || wrote;
    if (wrote) await this.fsyncDir();
  }

  /** Whether the received body is in the (local working copy of the) spool; call readEnvelope first. */
  async hasBody(id: string): Promise<boolean> {
    return exists(this.messagePath(id));
  }

  /** Writes the scanned copy: produced into a temp file, fsync'd, renamed, so delivery never sees half of it. */
  async writeOutput(id: string, produce: (out: Writable) => Promise<void>): Promise<void> {
    const tmp = `${this.outputPath(id)}.tmp`;
    const handle = await fs.open(tmp, 'w');
    const out = new CoalescingFileWriter(handle);
    let open = true;
    try {
      await produce(out);
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      await handle.sync();
      open = false;
      await handle.close();
      await fs.rename(tmp, this.outputPath(id));
    } catch (err) {
      out.destroy();
      if (open) await handle.close().catch(() => {});
      await fs.rm(tmp, { force: true });
      throw err;
    }
    if (!this.replica) return;
    try {
      await this.replica.put(id, 'output', await fs.readFile(this.outputPath(id)));
    } catch (err) {
      // The deliver job may run on another machine: a copy only here does not count as written.
      await fs.rm(this.outputPath(id), { force: true });
      throw err;
    }
  }

  /**
   * The scan's copy of a message whose envelope stays as it was committed (not narrowed by a
   * split): the copy is written and its rename made durable, and the envelope file, already the
   * commit record of exactly this envelope, is not written again.
   */
  async writeScannedCopy(id: string, produce: (out: Writable) => Promise<void>): Promise<void> {
    await this.writeOutput(id, produce);
    await this.fsyncDir();
  }

  /**
   * Puts a message back into the spool for delivery only (a release from quarantine): its output
   * copy first, then the envelope as the commit record, exactly as a fresh message is committed.
   */
  async restoreForDelivery(envelope: Envelope, produce: (out: Writable) => Promise<void>): Promise<void> {
    const json = JSON.stringify(envelope);
    await this.writeOutput(envelope.id, produce);
    await writeFileDurably(this.envelopePath(envelope.id), json);
    await this.fsyncDir();
    // The shared commit record last, as in commit(): another node sees the output with it.
    if (this.replica) await this.replica.put(envelope.id, 'envelope', Buffer.from(json));
  }

  /**
   * Whether the scanned copy exists (with a replica: in the cluster, and then also here). A local
   * copy that is present is not fetched again: readEnvelope, which every job calls first,
   * refreshes it.
   */
  async hasOutput(id: string): Promise<boolean> {
    if (!this.replica) {
      return fs.access(this.outputPath(id)).then(
        () => true,
        () => false,
      );
    }
    if (!(await this.replica.has(id, 'output'))) {
      await fs.rm(this.outputPath(id), { force: true });
      return false;
    }
    if (await exists(this.outputPath(id))) return true;
    const output = await this.replica.get(id, 'output');
    if (!output) return false;
    await writeIfChanged(this.outputPath(id), output);
    await this.fsyncDir();
    return true;
  }

  /**
   * The scanned copy's bytes when it is at most `maxBytes` long (one read for the loop check and
   * the transaction), its path when it is longer (streamed from the file), or undefined when there
   * is none (as hasOutput).
   */
  async readOutput(id: string, maxBytes: number): Promise<Buffer | string | undefined> {
    const file = this.outputPath(id);
    if (this.replica && !(await this.hasOutput(id))) return undefined;
    let handle: FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size > maxBytes) return file;
      // Sized by the stat, read from the start (readFile would stat again and read to a second EOF).
      const buf = Buffer.allocUnsafe(size);
      let at = 0;
      while (at < size) {
        const { bytesRead } = await handle.read(buf, at, size - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return buf.subarray(0, at);
    } finally {
      await handle.close();
    }
  }

  /** Removes every file of a message once it is delivered or safely quarantined. */
  async remove(id: string): Promise<void> {
    // The shared copy first: if that fails, the local copy still matches the truth.
    if (this.replica) await this.replica.remove(id);
    await this.removeLocal(id);
  }

  /**
   * Drops this node's working copy of a message whose job here has ended; the message itself
   * stays in the replica. Without a replica the local files are the message: nothing is done.
   */
  /**
   * Shared files without an envelope (a commit or release that failed half-way and could not
   * clean up) are never a message; after an hour nothing can still be writing them.
   */
  async sweepSharedOrphans(now = Date.now()): Promise<number> {
    return this.replica ? this.replica.sweepOrphans(now - ORPHAN_AGE_MS) : 0;
  }

  async evictLocal(id: string): Promise<void> {
    if (this.replica) await this.removeLocal(id);
  }

  private async removeLocal(id: string): Promise<void> {
    await Promise.all([this.messagePath(id), this.outputPath(id), `${this.outputPath(id)}.tmp`, this.envelopePath(id)].map(unlinkIfPresent));
  }

  /**
   * Ids of committed messages still in the spool (for reconciliation with the queue at start).
   * With a replica, those committed in the cluster: a local copy without a shared envelope is a
   * leftover of a message handled elsewhere, or a commit still in progress, never a message to queue.
   */
  async committedIds(): Promise<string[]> {
    if (this.replica) return this.replica.ids();
    const names = await fs.readdir(this.dir);
    return names
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -'.json'.length))
      .sort();
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

const ORPHAN_AGE_MS = 60 * 60_000;

function storageRefusal(err: unknown): SmtpRefusal {
  if (err instanceof SmtpRefusal) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return Object.assign(new SmtpRefusal(code === 'ENOSPC' || code === 'EDQUOT' ? replies.spoolFull() : replies.spoolWriteFailed()), { cause: err });
}
