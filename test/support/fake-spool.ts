// An in-memory spool for lifecycle tests (the ledger's port, gateway/ledger/ledger.ts
// LedgerSpool, plus what reconciliation asks). Envelopes and the committed set live in memory;
// bodies are written as files under a temp directory only because the BlobStore port copies a
// body from a path. `failNext` makes the next call of a method throw, as a crash between two
// steps of a verb would leave things.
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { LedgerSpool } from '../../gateway/ledger/ledger.ts';
import type { Envelope, Spool } from '../../gateway/spool/spool.ts';

type Method = keyof LedgerSpool;

export class MemorySpool implements LedgerSpool, Pick<Spool, 'sweepSharedOrphans' | 'hasBody'> {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-memspool-'));
  private readonly envelopes = new Map<string, Envelope>();
  private readonly outputs = new Set<string>();
  private readonly failing = new Set<Method>();

  /** The next call of `method` throws (once). */
  failNext(method: Method): void {
    this.failing.add(method);
  }

  private check(method: Method): void {
    if (this.failing.delete(method)) throw new Error(`injected failure: spool.${method}`);
  }

  /** A message accepted over SMTP: body and envelope committed. */
  async accept(envelope: Envelope, body: string): Promise<void> {
    await fs.writeFile(this.messagePath(envelope.id), body);
    this.envelopes.set(envelope.id, envelope);
  }

  /** The scan wrote its copy (what act.ts does with spool.restoreForDelivery). */
  async writeCopy(id: string, body: string): Promise<void> {
    await fs.writeFile(this.outputPath(id), body);
    this.outputs.add(id);
  }

  async readOutput(id: string): Promise<string | undefined> {
    return this.outputs.has(id) ? fs.readFile(this.outputPath(id), 'utf8') : undefined;
  }

  messagePath(id: string): string {
    return path.join(this.dir, `${id}.eml`);
  }

  outputPath(id: string): string {
    return path.join(this.dir, `${id}.out.eml`);
  }

  async readEnvelope(id: string): Promise<Envelope | undefined> {
    this.check('readEnvelope');
    return this.envelopes.get(id);
  }

  async restoreForDelivery(envelope: Envelope, produce: (out: Writable) => Promise<void>): Promise<void> {
    this.check('restoreForDelivery');
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
    await produce(out);
    await this.writeCopy(envelope.id, Buffer.concat(chunks).toString('latin1'));
    this.envelopes.set(envelope.id, envelope);
  }

  async hasBody(id: string): Promise<boolean> {
    return (
      this.envelopes.has(id) &&
      (await fs.access(this.messagePath(id)).then(
        () => true,
        () => false,
      ))
    );
  }

  /** Nothing is received into this spool over SMTP, so there is never a partial body to drop. */
  async discardIncoming(_id: string): Promise<void> {
    this.check('discardIncoming');
  }

  async hasOutput(id: string): Promise<boolean> {
    this.check('hasOutput');
    return this.outputs.has(id);
  }

  async remove(id: string): Promise<void> {
    this.check('remove');
    this.envelopes.delete(id);
    this.outputs.delete(id);
    await fs.rm(this.messagePath(id), { force: true });
    await fs.rm(this.outputPath(id), { force: true });
  }

  async committedIds(): Promise<string[]> {
    this.check('committedIds');
    return [...this.envelopes.keys()].sort();
  }

  async evictLocal(): Promise<void> {}

  async sweepSharedOrphans(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
