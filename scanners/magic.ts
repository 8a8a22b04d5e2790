// The real type of a file by its first bytes. A name is the sender's claim; the bytes are what the
// recipient's machine will run. Own small table, no package: only the formats a mail gateway acts
// on (executables, scripts, shortcuts, containers) plus the common documents, so that a container
// pretending to be a document can be told apart from the document itself.

import type { DetectedKind, DetectedType } from './facts.ts';

interface Signature {
  offset: number;
  bytes: readonly number[];
  kind: DetectedKind;
  format: string;
  description: string;
  /** Compare ASCII letters case-insensitively (text formats such as .url or .reg). */
  caseless?: boolean;
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

// Order matters only where one signature is a prefix of another (none today).
const SIGNATURES: readonly Signature[] = [
  // Windows PE / DOS MZ: .exe .dll .scr .cpl .sys .ocx all start so.
  { offset: 0, bytes: ascii('MZ'), kind: 'executable', format: 'pe', description: 'Windows/DOS executable (MZ)' },
  { offset: 0, bytes: ascii('ZM'), kind: 'executable', format: 'pe', description: 'DOS executable (ZM)' },
  { offset: 0, bytes: [0x7f, 0x45, 0x4c, 0x46], kind: 'executable', format: 'elf', description: 'ELF executable' },
  { offset: 0, bytes: [0xfe, 0xed, 0xfa, 0xce], kind: 'executable', format: 'macho', description: 'Mach-O executable' },
  { offset: 0, bytes: [0xfe, 0xed, 0xfa, 0xcf], kind: 'executable', format: 'macho', description: 'Mach-O executable' },
  { offset: 0, bytes: [0xce, 0xfa, 0xed, 0xfe], kind: 'executable', format: 'macho', description: 'Mach-O executable' },
  { offset: 0, bytes: [0xcf, 0xfa, 0xed, 0xfe], kind: 'executable', format: 'macho', description: 'Mach-O executable' },
  // 0xCAFEBABE is both a Mach-O universal binary and a Java class file: code either way.
  { offset: 0, bytes: [0xca, 0xfe, 0xba, 0xbe], kind: 'executable', format: 'macho-fat', description: 'Mach-O universal binary or Java class' },
  { offset: 0, bytes: ascii('dex\n'), kind: 'executable', format: 'dex', description: 'Android DEX bytecode' },
  { offset: 0, bytes: ascii('#!'), kind: 'script', format: 'shebang', description: 'script with #! interpreter line' },
  // Compiled HTML Help runs script and was a long-standing malware carrier.
  { offset: 0, bytes: ascii('ITSF'), kind: 'script', format: 'chm', description: 'Compiled HTML Help (CHM)' },
  { offset: 0, bytes: ascii('REGEDIT4'), kind: 'script', format: 'reg', description: 'Windows registry script' },
  // "Windows Registry Editor" in UTF-16LE after a BOM.
  {
    offset: 0,
    bytes: [0xff, 0xfe, 0x57, 0x00, 0x69, 0x00, 0x6e, 0x00, 0x64, 0x00],
    kind: 'script',
    format: 'reg',
    description: 'Windows registry script (UTF-16)',
  },
  { offset: 0, bytes: ascii('Windows Registry Editor'), kind: 'script', format: 'reg', description: 'Windows registry script' },
  // Shell link: header size 0x4C then the LinkCLSID {00021401-0000-0000-C000-000000000046}.
  { offset: 0, bytes: [0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0x00], kind: 'shortcut', format: 'lnk', description: 'Windows shortcut (LNK)' },
  { offset: 0, bytes: ascii('[InternetShortcut]'), kind: 'shortcut', format: 'url', description: 'Internet shortcut (.url)', caseless: true },
  { offset: 0, bytes: ascii('[Shell]'), kind: 'shortcut', format: 'scf', description: 'Shell command file (.scf)', caseless: true },
  // OLE2 compound file: .msi .msp and legacy Office (.doc .xls .ppt .msg) share it.
  {
    offset: 0,
    bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1],
    kind: 'compound',
    format: 'ole',
    description: 'OLE2 compound file (MSI installer or legacy Office)',
  },
  { offset: 0, bytes: [0x50, 0x4b, 0x03, 0x04], kind: 'archive', format: 'zip', description: 'zip archive' },
  { offset: 0, bytes: [0x50, 0x4b, 0x05, 0x06], kind: 'archive', format: 'zip', description: 'zip archive (empty)' },
  { offset: 0, bytes: [0x50, 0x4b, 0x07, 0x08], kind: 'archive', format: 'zip', description: 'zip archive (spanned)' },
  { offset: 0, bytes: ascii('Rar!\x1a\x07'), kind: 'archive', format: 'rar', description: 'RAR archive' },
  { offset: 0, bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], kind: 'archive', format: '7z', description: '7-Zip archive' },
  { offset: 0, bytes: ascii('MSCF'), kind: 'archive', format: 'cab', description: 'Microsoft cabinet' },
  { offset: 0, bytes: [0x1f, 0x8b], kind: 'archive', format: 'gzip', description: 'gzip data' },
  { offset: 0, bytes: ascii('BZh'), kind: 'archive', format: 'bzip2', description: 'bzip2 data' },
  { offset: 0, bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], kind: 'archive', format: 'xz', description: 'xz data' },
  { offset: 257, bytes: ascii('ustar'), kind: 'archive', format: 'tar', description: 'tar archive' },
  // Disk images mount with a double click on Windows 10+ and bypass Mark-of-the-Web.
  { offset: 0, bytes: ascii('conectix'), kind: 'disk-image', format: 'vhd', description: 'virtual hard disk (VHD)' },
  { offset: 0, bytes: ascii('vhdxfile'), kind: 'disk-image', format: 'vhdx', description: 'virtual hard disk (VHDX)' },
  { offset: 0x8001, bytes: ascii('CD001'), kind: 'disk-image', format: 'iso', description: 'ISO 9660 image' },
  { offset: 0, bytes: ascii('%PDF-'), kind: 'document', format: 'pdf', description: 'PDF document' },
  { offset: 0, bytes: ascii('{\\rtf'), kind: 'document', format: 'rtf', description: 'RTF document' },
  { offset: 0, bytes: [0x89, 0x50, 0x4e, 0x47], kind: 'image', format: 'png', description: 'PNG image' },
  { offset: 0, bytes: [0xff, 0xd8, 0xff], kind: 'image', format: 'jpeg', description: 'JPEG image' },
  { offset: 0, bytes: ascii('GIF8'), kind: 'image', format: 'gif', description: 'GIF image' },
];

/** How many leading bytes sniff() can use; callers keep at least this many (ISO needs 32 KiB). */
export const SNIFF_BYTES = 0x8001 + 5;
/** Enough for every signature except the ISO one; used where memory per entry matters. */
export const SNIFF_BYTES_SMALL = 512;

function matches(head: Uint8Array, sig: Signature): boolean {
  if (head.length < sig.offset + sig.bytes.length) return false;
  for (let i = 0; i < sig.bytes.length; i++) {
    let b = head[sig.offset + i];
    let want = sig.bytes[i];
    if (sig.caseless && b >= 0x61 && b <= 0x7a) b -= 0x20;
    if (sig.caseless && want >= 0x61 && want <= 0x7a) want -= 0x20;
    if (b !== want) return false;
  }
  return true;
}

/** The type the bytes say, or null when nothing in the table matches (plain text, unknown). */
export function sniff(head: Uint8Array): DetectedType | null {
  for (const sig of SIGNATURES) {
    if (matches(head, sig)) return { kind: sig.kind, format: sig.format, description: sig.description };
  }
  return null;
}

/** True when the bytes start like a zip we can open with yauzl. */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05) && (head[3] === 0x04 || head[3] === 0x06);
}
