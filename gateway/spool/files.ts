// The spool's file primitives: descriptors opened, written, fsync'd and closed once on every
// path; durable writes by temp file and rename; the group directory fsync; the bounded header
// block; a batching Writable for the scanned copy. Kept apart from spool.ts, which decides what is
// written when (the commit order), so that each file reads as one of the two.
import { promises as fs, closeSync, fsync as fsyncCb, open as openCb, write as writeCb, writeFile as writeFileCb, writev as writevCb } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';

/**
 * The hot path's file operations on plain descriptors: a FileHandle costs a JS object, its
 * close-on-GC tracking and more promise steps per call (measured: ~25% more CPU for the
 * open/write/fsync/close/rename of a message's file). Every descriptor is closed once, on every path.
 */
export const fdOps = {
  open: promisify(openCb),
  write: promisify(writeCb) as (fd: number, data: Buffer) => Promise<unknown>,
  writev: promisify(writevCb) as (fd: number, data: Buffer[]) => Promise<unknown>,
  /** Writes all of `data` from the current position (repeats a short write). */
  writeAll: promisify(writeFileCb) as (fd: number, data: string | Uint8Array) => Promise<void>,
  fsync: promisify(fsyncCb),
};

/**
 * Closes `fd` on the first call only: a second close could hit a descriptor number reused by then.
 * Synchronous: closing a local file (written, usually fsync'd) is one quick system call, cheaper
 * than the trip through the thread pool and back that an asynchronous close takes.
 */
export function closer(fd: number): () => void {
  let closed = false;
  return () => {
    if (closed) return;
    closed = true;
    closeSync(fd);
  };
}

/** Writes `data` to a temp file, fsyncs it and renames it into place (`tmp` unique when writers may race). */
export async function writeFileDurably(file: string, data: string | Uint8Array, tmp = `${file}.tmp`): Promise<void> {
  try {
    const fd = await fdOps.open(tmp, 'w');
    try {
      await fdOps.writeAll(fd, data);
      await fdOps.fsync(fd);
    } finally {
      closeSync(fd); // see closer()
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

let fetchSeq = 0;

/**
 * Writes a file fetched from the replica unless the local one already holds these bytes (reads
 * are frequent, changes rare). Its temp name is unique: two jobs of one node fetching the same
 * message must not write into each other's file. Resolves to whether it wrote.
 */
export async function writeIfChanged(file: string, data: Buffer): Promise<boolean> {
  const current = await fs.readFile(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (current?.equals(data)) return false;
  await writeFileDurably(file, data, `${file}.${process.pid}-${++fetchSeq}.tmp`);
  return true;
}

/** fs.rm({ force }) without its lstat first: these are files, four per message on the hot path. */
export async function unlinkIfPresent(file: string): Promise<void> {
  await fs.unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/**
 * Group fsync: a caller is covered only by a sync that STARTED after its call (its rename is done
 * by then), so callers arriving while one runs share the next one. N sessions committing at the
 * same moment cost one directory fsync instead of N; each still resolves only once its entry is
 * durable, and a failed sync rejects every caller it was for. A sync starts one event-loop turn
 * after the first call that needs it, as the metadata group commit does: the commits completing
 * in the same poll phase share it (started at once, it covered the first of them alone, and at 50
 * sessions the batches, and the metadata commits that follow them, were half as large).
 */
export function groupSync(sync: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    next = undefined;
    const p = sync().finally(() => {
      if (running === p) running = undefined;
    });
    running = p;
    return p;
  };
  const afterTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  return () =>
    (next ??= (running ?? Promise.resolve())
      .catch(() => {})
      .then(afterTurn)
      .then(start));
}

/** Header blocks are read up to this many bytes; a longer one is cut (the rest is body, or hostile). */
const MAX_HEADER_BYTES = 64 * 1024;

/** The top header block of a spooled message file (without the empty line that ends it), bounded. */
export async function readHeaderBlock(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return headerBlockOf(buf.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** The top header block of a message already read (without the empty line that ends it), bounded as readHeaderBlock. */
export function headerBlockOf(message: Buffer): Buffer {
  const head = message.subarray(0, MAX_HEADER_BYTES);
  const end = head.indexOf('\r\n\r\n');
  return end >= 0 ? head.subarray(0, end) : head;
}

/** Buffered bytes at most before a write: a copy is written in one or a few system calls, not one per chunk. */
const WRITE_BATCH_BYTES = 256 * 1024;

/**
 * A file's Writable that gathers what is written (the rewrite emits a chunk per header line and
 * per part) and writes it in batches: one write for a small message where fs.WriteStream made one
 * per chunk, each a trip through libuv's thread pool.
 */
export class CoalescingFileWriter extends Writable {
  readonly #handle: FileHandle;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(handle: FileHandle) {
    super();
    this.#handle = handle;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size < WRITE_BATCH_BYTES) return done();
    this.#flush().then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#flush().then(() => done(), done);
  }

  async #flush(): Promise<void> {
    const data = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    this.#size = 0;
    // writeFile on a handle writes from its position on and repeats a short write.
    if (data.length > 0) await this.#handle.writeFile(data);
  }
}
