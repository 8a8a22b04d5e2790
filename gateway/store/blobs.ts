// BlobStore: quarantined message bodies, kept apart from the spool so that the spool holds only
// work in progress. Contract: after put() resolves the body is durable (fsync'd); open() streams
// it back byte for byte; delete() is idempotent.
//
// Adapter: one file per message under <dir>.
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

export interface BlobStore {
  put(id: string, fromFile: string): Promise<void>;
  open(id: string): Readable;
  size(id: string): Promise<number | undefined>;
  delete(id: string): Promise<void>;
}

export function fileBlobStore(dir: string): BlobStore {
  const file = (id: string) => {
    if (!/^[0-9A-Za-z_-]+$/.test(id)) throw new Error(`invalid message id: ${id}`);
    return path.join(dir, `${id}.eml`);
  };
  return {
    async put(id, fromFile) {
      await fs.mkdir(dir, { recursive: true });
      const tmp = `${file(id)}.tmp`;
      await fs.copyFile(fromFile, tmp);
      const handle = await fs.open(tmp, 'r');
      await handle.sync();
      await handle.close();
      await fs.rename(tmp, file(id));
    },
    open(id) {
      return createReadStream(file(id));
    },
    async size(id) {
      return fs.stat(file(id)).then(
        (s) => s.size,
        () => undefined,
      );
    },
    async delete(id) {
      await fs.rm(file(id), { force: true });
    },
  };
}
