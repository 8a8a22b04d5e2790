// The delivery journal: where a downstream's final answer for a recipient ("delivered", or a 5xx
// "failed") is kept when the metadata store cannot take it (disk full, database restarting), so
// that the recipient is never sent the message again (gateway/delivery/recorded.ts decides when).
//
// It must be writable exactly when the store is not, so its space is taken in advance: each
// worker process owns one file of fixed size, filled with zeros when it is created, and a fact is
// written in place into a free slot (pwrite + fdatasync). Overwriting blocks a file already owns
// needs no new blocks on ext4, xfs or tmpfs, so a full disk cannot refuse it (a copy-on-write file
// system such as btrfs or ZFS may still refuse: keep the data dir off those, or accept that risk).
//
// Layout: SLOTS slots of SLOT_BYTES; a slot is all zeros (free) or MAGIC, payload length, CRC-32 of
// the payload, JSON payload. A slot torn by a crash fails its CRC and is read as free: the fact was
// then never written, exactly as if the crash had come before it.
//
// Files are named <boot id>-<pid>.journal: a file whose process is gone (or from an earlier boot) is
// an orphan; the next worker that opens the journal takes over its facts (see `pending`) and
// deletes the file once they have all reached the store.
import { promises as fs, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { isAlive } from '../services/supervisor.ts';

export interface JournalFact {
  id: string;
  recipient: string;
  outcome: 'delivered' | 'failed';
  reply: string;
  at: number;
}

const SLOT_BYTES = 512;
/** 1 MiB: far more facts than the transactions one worker has in flight when the store stops. */
const SLOTS = 2048;
const HEADER_BYTES = 12;
const MAGIC = 0x4d4d4a31; // "MMJ1"

interface JournalFile {
  path: string;
  handle: FileHandle;
  slots: (JournalFact | undefined)[];
}

export class DeliveryJournal {
  private readonly own: JournalFile;
  private readonly orphans: JournalFile[];

  private constructor(own: JournalFile, orphans: JournalFile[]) {
    this.own = own;
    this.orphans = orphans;
  }

  /** Opens (creating and pre-allocating) this process's file, and takes over orphaned ones. */
  static async open(dir: string): Promise<DeliveryJournal> {
    await fs.mkdir(dir, { recursive: true });
    const boot = bootId();
    const ownName = `${boot}-${process.pid}.journal`;
    const own = await openOwn(path.join(dir, ownName));
    const orphans: JournalFile[] = [];
    for (const name of await fs.readdir(dir)) {
      const m = /^([\w-]+)-(\d+)\.journal$/.exec(name);
      if (!m || name === ownName) continue;
      if (m[1] === boot && isAlive(Number(m[2]))) continue; // another live worker of this machine
      const orphan = await openExisting(path.join(dir, name));
      if (orphan.slots.some((f) => f !== undefined)) orphans.push(orphan);
      else await orphan.handle.close().then(() => fs.rm(orphan.path, { force: true })); // a worker that stopped with nothing pending
    }
    return new DeliveryJournal(own, orphans);
  }

  /** Every fact not yet in the store, with the means to clear it once it is. */
  pending(): { fact: JournalFact; clear: () => Promise<void> }[] {
    const out: { fact: JournalFact; clear: () => Promise<void> }[] = [];
    // Plain loops: this runs before every delivery attempt, over 2,048 mostly empty slots.
    for (const file of [this.own, ...this.orphans]) {
      for (let slot = 0; slot < file.slots.length; slot++) {
        const fact = file.slots[slot];
        if (fact) out.push({ fact, clear: () => this.clear(file, slot, fact) });
      }
    }
    return out;
  }

  /** The recipients of a message that the journal knows a final outcome for. */
  recipientsDone(id: string): Set<string> {
    const done = new Set<string>();
    for (const file of [this.own, ...this.orphans]) for (const fact of file.slots) if (fact?.id === id) done.add(fact.recipient);
    return done;
  }

  /** Writes a fact durably; resolves to its `clear`. Throws when no slot is free or the write fails. */
  async append(fact: JournalFact): Promise<() => Promise<void>> {
    const slot = this.own.slots.indexOf(undefined);
    if (slot < 0) throw new Error('the delivery journal is full');
    const stored = fitted(fact);
    this.own.slots[slot] = stored; // taken before the write, so that a concurrent append picks another
    try {
      await writeSlot(this.own.handle, slot, encode(stored));
    } catch (err) {
      this.own.slots[slot] = undefined;
      throw err;
    }
    return () => this.clear(this.own, slot, stored);
  }

  /** Frees a slot once its fact is in the store (unless it already was, and holds another fact now). */
  private async clear(file: JournalFile, slot: number, fact: JournalFact): Promise<void> {
    if (file.slots[slot] !== fact) return;
    await writeSlot(file.handle, slot, Buffer.alloc(SLOT_BYTES));
    file.slots[slot] = undefined;
    if (file !== this.own && file.slots.every((s) => s === undefined)) {
      this.orphans.splice(this.orphans.indexOf(file), 1);
      await file.handle.close();
      await fs.rm(file.path, { force: true });
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.own, ...this.orphans].map((f) => f.handle.close().catch(() => {})));
  }
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')
      .trim()
      .replace(/[^\w-]/g, '');
  } catch {
    return 'boot'; // no /proc: a file is then an orphan only when its process is gone
  }
}

/** This process's file: reused (with its facts) if a worker of this process had it, else pre-allocated. */
async function openOwn(file: string): Promise<JournalFile> {
  const size = await fs.stat(file).then(
    (s) => s.size,
    () => -1,
  );
  if (size === SLOT_BYTES * SLOTS) return openExisting(file);
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    const zeros = Buffer.alloc(64 * 1024);
    for (let at = 0; at < SLOT_BYTES * SLOTS; at += zeros.length) await handle.write(zeros, 0, zeros.length, at);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await fs.rename(tmp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  await dir.sync().finally(() => dir.close());
  return openExisting(file);
}

async function openExisting(file: string): Promise<JournalFile> {
  const handle = await fs.open(file, 'r+');
  const data = await handle.readFile();
  const slots: (JournalFact | undefined)[] = [];
  for (let slot = 0; slot < Math.max(SLOTS, Math.floor(data.length / SLOT_BYTES)); slot++) {
    slots.push(decode(data.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES)));
  }
  return { path: file, handle, slots };
}

async function writeSlot(handle: FileHandle, slot: number, bytes: Buffer): Promise<void> {
  await handle.write(bytes, 0, SLOT_BYTES, slot * SLOT_BYTES);
  await handle.datasync();
}

/** The fact cut to fit one slot: the reply is the only long field, and is for humans. */
function fitted(fact: JournalFact): JournalFact {
  let f = fact;
  while (Buffer.byteLength(JSON.stringify(f)) > SLOT_BYTES - HEADER_BYTES) {
    if (f.reply.length === 0) throw new Error(`a delivery fact too long for the journal: ${fact.id} ${fact.recipient.slice(0, 80)}`);
    f = { ...f, reply: f.reply.slice(0, Math.floor(f.reply.length / 2)) };
  }
  return f;
}

function encode(fact: JournalFact): Buffer {
  const payload = Buffer.from(JSON.stringify(fact));
  const slot = Buffer.alloc(SLOT_BYTES);
  slot.writeUInt32BE(MAGIC, 0);
  slot.writeUInt32BE(payload.length, 4);
  slot.writeUInt32BE(crc32(payload), 8);
  payload.copy(slot, HEADER_BYTES);
  return slot;
}

function decode(slot: Buffer): JournalFact | undefined {
  if (slot.length < HEADER_BYTES || slot.readUInt32BE(0) !== MAGIC) return undefined;
  const length = slot.readUInt32BE(4);
  if (length > SLOT_BYTES - HEADER_BYTES) return undefined;
  const payload = slot.subarray(HEADER_BYTES, HEADER_BYTES + length);
  if (crc32(payload) !== slot.readUInt32BE(8)) return undefined;
  try {
    return JSON.parse(payload.toString('utf8')) as JournalFact;
  } catch {
    return undefined;
  }
}
