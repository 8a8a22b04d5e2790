// The tests' one ZIP writer (PKWARE APPNOTE 4.3; stored or deflated, no zip64), so tests can build
// archives with exact contents: EICAR inside a zip, zips nested deeper than clamd's recursion
// limit, entries flagged as encrypted.
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntrySpec {
  name: string;
  data: Buffer | string;
  /** Sets general purpose bit 0 and prefixes the 12-byte ZipCrypto header (contents not really encrypted). */
  encrypted?: boolean;
  deflate?: boolean;
}

function localHeader(name: Buffer, flags: number, method: number, crc: number, csize: number, usize: number): Buffer {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt16LE(method, 8);
  h.writeUInt16LE(0, 10); // time
  h.writeUInt16LE(0x5b77, 12); // date 2025-11-23
  h.writeUInt32LE(crc, 14);
  h.writeUInt32LE(csize, 18);
  h.writeUInt32LE(usize, 22);
  h.writeUInt16LE(name.length, 26);
  h.writeUInt16LE(0, 28);
  return Buffer.concat([h, name]);
}

function centralHeader(name: Buffer, flags: number, method: number, crc: number, csize: number, usize: number, offset: number): Buffer {
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(20, 6);
  h.writeUInt16LE(flags, 8);
  h.writeUInt16LE(method, 10);
  h.writeUInt16LE(0, 12);
  h.writeUInt16LE(0x5b77, 14);
  h.writeUInt32LE(crc, 16);
  h.writeUInt32LE(csize, 20);
  h.writeUInt32LE(usize, 24);
  h.writeUInt16LE(name.length, 28);
  h.writeUInt32LE(offset, 42);
  return Buffer.concat([h, name]);
}

/** Builds a zip archive in memory. */
export function zip(entries: ZipEntrySpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data;
    const flags = (e.encrypted ? 0x1 : 0) | 0x800;
    const method = e.deflate ? 8 : 0;
    let stored = e.deflate ? deflateRawSync(data) : data;
    if (e.encrypted) stored = Buffer.concat([Buffer.alloc(12, 0x5a), stored]);
    const crc = crc32(data);
    const local = localHeader(name, flags, method, crc, stored.length, data.length);
    locals.push(local, stored);
    centrals.push(centralHeader(name, flags, method, crc, stored.length, data.length, offset));
    offset += local.length + stored.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** `data` wrapped in `depth` zips, one inside the next. */
export function nestedZip(data: Buffer, innerName: string, depth: number): Buffer {
  let current = zip([{ name: innerName, data }]);
  for (let level = 2; level <= depth; level += 1) {
    current = zip([{ name: `level-${level - 1}.zip`, data: current }]);
  }
  return current;
}
