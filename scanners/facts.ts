// Plain facts about one message, as seen by the streaming MIME walk (scanners/mime-walk.ts) and the
// zip inspector (scanners/zip-inspect.ts). Types only: rules/attachments.ts decides over these
// without touching a stream, so a policy can be unit-tested from a literal object.
//
// A limit that was hit is a fact of its own ("malformed", "unscannable"), never an empty list: a
// part we did not look at must not read as a clean part (reliability-notes: bounds every parser needs).

/** What the first bytes of a file say it is, whatever its name claims. */
export type DetectedKind = 'executable' | 'script' | 'shortcut' | 'archive' | 'compound' | 'document' | 'image' | 'disk-image';

export interface DetectedType {
  kind: DetectedKind;
  /** Short format tag: 'pe', 'elf', 'macho', 'shebang', 'ole', 'lnk', 'zip', 'rar', 'pdf', … */
  format: string;
  description: string;
}

export interface ArchiveEntryFacts {
  /** Name inside the archive as stored (slashes for folders). */
  path: string;
  directory: boolean;
  encrypted: boolean;
  compressedSize: number;
  /** As declared in the central directory; a bomb lies here, so it is bounded, never trusted. */
  uncompressedSize: number;
  /** From the entry's first bytes; null when not read (encrypted, directory, limit reached). */
  detected: DetectedType | null;
  /** Set when the entry is itself a zip and was opened (within the depth limit). */
  archive?: ArchiveFacts;
}

export interface ArchiveFacts {
  format: 'zip';
  /** 'unscannable': a bound was hit or the archive could not be read; entries are partial. */
  status: 'ok' | 'unscannable';
  reason?: string;
  entries: ArchiveEntryFacts[];
}

export interface PartFacts {
  /** IMAP-style part path ("1", "2.1"); the root of a single-part message is "1". */
  id: string;
  /** Number of MIME containers above this part (0 for a single-part message). */
  depth: number;
  contentType: string;
  charset: string | null;
  disposition: string | null;
  transferEncoding: string | null;
  /** Every name the headers declare, decoded (RFC 2231 and RFC 2047), duplicates kept apart. */
  names: { contentType: string[]; disposition: string[] };
  /** The name a mail client shows: Content-Disposition filename first, then Content-Type name. */
  filename: string | null;
  /** Bytes of the body as transmitted, and after the transfer encoding was removed. */
  encodedSize: number;
  size: number;
  /** First decoded bytes, for magic sniffing. */
  head: Uint8Array;
  detected: DetectedType | null;
  /** Present when the content is a zip (by magic). */
  archive?: ArchiveFacts;
}

export type MessageOutcome =
  | { status: 'ok' }
  /** The structure broke a bound or could not be parsed (part count, depth, header bytes). */
  | { status: 'malformed'; reason: string }
  /** Parsed, but some content could not be examined. */
  | { status: 'unscannable'; reason: string };

export interface MessageFacts {
  outcome: MessageOutcome;
  /** Leaf parts in document order; partial when the outcome is not 'ok'. */
  parts: PartFacts[];
  /** Every MIME node seen, containers included. */
  nodeCount: number;
  maxDepth: number;
  /** Raw message bytes read. */
  bytes: number;
}
