// Lists a zip (and zips inside it) from memory with yauzl, bounded against zip bombs. Produces
// plain ArchiveFacts for rules/attachments.ts; decides nothing.
//
// Threats and the bound that meets each:
// - 42.zip-style nesting → maxDepth; beyond it the inner archive is "unscannable", not skipped.
// - Overlapping-entry bombs (one deflate stream referenced by thousands of entries) and plain
//   high-ratio entries → maxEntries, maxTotalUncompressed (declared sizes, summed across all
//   nesting levels) and maxRatio. Declared sizes can lie low: yauzl's validateEntrySizes makes a
//   stream that inflates past its declared size fail, and every read here is capped anyway.
// - Names that yauzl refuses (absolute, "..") are still names a victim's unzip tool may accept:
//   strings are decoded by us (decodeStrings: false) so such an entry is listed, not an error.

import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import type { ArchiveEntryFacts, ArchiveFacts } from './facts.ts';
import { isZip, sniff, SNIFF_BYTES_SMALL } from './magic.ts';

export interface ZipLimits {
  /** Archive levels opened, the outer zip being level 1. */
  maxDepth: number;
  /** Entries listed across the outer zip and everything nested in it. */
  maxEntries: number;
  /** Sum of declared uncompressed sizes across all levels. */
  maxTotalUncompressed: number;
  /** Declared uncompressed/compressed ratio allowed for an entry bigger than ratioMinBytes. */
  maxRatio: number;
  ratioMinBytes: number;
  /** A nested zip is inflated into memory up to this many bytes to be opened. */
  maxNestedBytes: number;
  /** Leading bytes read from each entry to sniff its real type. */
  sniffBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = {
  maxDepth: 4,
  maxEntries: 1000,
  maxTotalUncompressed: 512 * 1024 * 1024,
  maxRatio: 200,
  ratioMinBytes: 1024 * 1024,
  maxNestedBytes: 16 * 1024 * 1024,
  sniffBytes: SNIFF_BYTES_SMALL,
};

interface Budget {
  entries: number;
  total: number;
}

class LimitHit extends Error {}

async function readUpTo(zip: ZipFile, entry: Entry, max: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  let n = 0;
  let truncated = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    n += chunk.length;
    if (n > max) {
      truncated = true;
      break; // leaving the loop destroys the inflate stream
    }
  }
  const all = Buffer.concat(chunks, n);
  return { bytes: truncated ? all.subarray(0, max) : all, truncated };
}

function entryName(entry: Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
}

/** Checks the declared sizes of one entry against the bomb bounds; throws LimitHit. */
function checkBounds(entry: Entry, name: string, budget: Budget, limits: ZipLimits): void {
  budget.entries++;
  if (budget.entries > limits.maxEntries) throw new LimitHit(`more than ${limits.maxEntries} archive entries`);
  budget.total += entry.uncompressedSize;
  if (budget.total > limits.maxTotalUncompressed) {
    throw new LimitHit(`declared uncompressed size exceeds ${limits.maxTotalUncompressed} bytes`);
  }
  const big = entry.uncompressedSize > limits.ratioMinBytes;
  if (big && (entry.compressedSize === 0 || entry.uncompressedSize / entry.compressedSize > limits.maxRatio)) {
    throw new LimitHit(`compression ratio of "${name}" exceeds ${limits.maxRatio}:1`);
  }
}

async function describeEntry(zip: ZipFile, entry: Entry, depth: number, budget: Budget, limits: ZipLimits): Promise<ArchiveEntryFacts> {
  const path = entryName(entry);
  checkBounds(entry, path, budget, limits);
  const facts: ArchiveEntryFacts = {
    path,
    directory: path.endsWith('/'),
    encrypted: entry.isEncrypted(),
    compressedSize: entry.compressedSize,
    uncompressedSize: entry.uncompressedSize,
    detected: null,
  };
  if (facts.directory || facts.encrypted || entry.uncompressedSize === 0) return facts;
  if (!entry.canDecodeFileData()) {
    // Deflate64, bzip2, LZMA…: we cannot see inside, so the archive is not fully scanned.
    throw new LimitHit(`"${path}" uses compression method ${entry.compressionMethod}, which cannot be read`);
  }
  const head = await readUpTo(zip, entry, limits.sniffBytes);
  facts.detected = sniff(head.bytes);
  if (isZip(head.bytes)) facts.archive = await nested(zip, entry, depth, budget, limits);
  return facts;
}

async function nested(zip: ZipFile, entry: Entry, depth: number, budget: Budget, limits: ZipLimits): Promise<ArchiveFacts> {
  if (depth >= limits.maxDepth) {
    return { format: 'zip', status: 'unscannable', reason: `archives nested deeper than ${limits.maxDepth}`, entries: [] };
  }
  if (entry.uncompressedSize > limits.maxNestedBytes) {
    return { format: 'zip', status: 'unscannable', reason: `nested archive larger than ${limits.maxNestedBytes} bytes`, entries: [] };
  }
  const whole = await readUpTo(zip, entry, limits.maxNestedBytes);
  if (whole.truncated) {
    return { format: 'zip', status: 'unscannable', reason: `nested archive larger than ${limits.maxNestedBytes} bytes`, entries: [] };
  }
  return list(whole.bytes, depth + 1, budget, limits);
}

async function list(buf: Buffer, depth: number, budget: Budget, limits: ZipLimits): Promise<ArchiveFacts> {
  const facts: ArchiveFacts = { format: 'zip', status: 'ok', entries: [] };
  let zip: ZipFile | undefined;
  try {
    zip = await yauzl.fromBufferPromise(buf, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true });
    if (budget.entries + zip.entryCount > limits.maxEntries) {
      throw new LimitHit(`more than ${limits.maxEntries} archive entries`);
    }
    for await (const entry of zip.eachEntry()) {
      facts.entries.push(await describeEntry(zip, entry, depth, budget, limits));
    }
  } catch (err) {
    facts.status = 'unscannable';
    facts.reason = err instanceof LimitHit ? err.message : `unreadable zip: ${(err as Error).message}`;
  } finally {
    zip?.close();
  }
  // A nested archive that could not be fully read makes the whole one unscannable as well.
  const inner = facts.entries.find((e) => e.archive?.status === 'unscannable');
  if (facts.status === 'ok' && inner) {
    facts.status = 'unscannable';
    facts.reason = `${inner.path}: ${inner.archive!.reason}`;
  }
  return facts;
}

/** Lists a zip held in memory, opening nested zips within the limits. Never throws. */
export async function inspectZip(buf: Buffer, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Promise<ArchiveFacts> {
  return list(buf, 1, { entries: 0, total: 0 }, limits);
}
