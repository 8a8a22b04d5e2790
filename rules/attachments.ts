// Attachment rules: facts from the MIME walk in, findings and a decision input out. Pure: no
// streams, no archives opened here (scanners/zip-inspect.ts did that). The caller's policy maps
// each class (banned, encrypted, unscannable, malformed) to an action: quarantine the message or
// remove the attachment (parts listed per class).
//
// Every declared name is checked, not just the one a given client would show: clients disagree
// on which of Content-Type name / Content-Disposition filename / filename* wins.

import type { ArchiveFacts, DetectedKind, DetectedType, MessageFacts, PartFacts } from '../scanners/facts.ts';

export interface AttachmentRules {
  /** Refused extensions, lower case without the dot. */
  bannedExtensions: readonly string[];
  /** Inner extension of a double extension (`invoice.pdf.exe`). */
  decoyExtensions: readonly string[];
  /** Last extensions that may follow a decoy without it counting as a double extension. */
  doubleExtensionAllowedLast: readonly string[];
  /** Content kinds refused whatever the name. */
  bannedKinds: readonly DetectedKind[];
  /** Extension → the format it claims (`pdf` → `pdf`, `docx` → `zip`). */
  claimedFormats: Readonly<Record<string, string>>;
  /** Detected kinds checked against claimedFormats (a zip named .pdf is disguised). */
  disguiseKinds: readonly DetectedKind[];
  /** Content-Type name and Content-Disposition filename (or duplicates) that disagree. */
  nameMismatch: 'ban' | 'ignore';
  /** Encrypted archive members cannot be scanned: reported as class 'encrypted'. */
  encrypted: 'report' | 'ignore';
  /** Archives we cannot open (rar, 7z, cab…): 'unscannable' or looked at by name only. */
  unopenedArchives: 'unscannable' | 'ignore';
  /** Apply the name and type rules to files inside zips. */
  archiveMembers: 'check' | 'ignore';
}

export type AttachmentRule =
  | 'banned-name'
  | 'double-extension'
  | 'hidden-extension'
  | 'name-mismatch'
  | 'banned-type'
  | 'type-mismatch'
  | 'encrypted'
  | 'archive-limit'
  | 'unscannable'
  | 'malformed';

export type AttachmentClass = 'malformed' | 'banned' | 'unscannable' | 'encrypted';

export interface AttachmentFinding {
  /** Part id ("2", "1.3"); null for a finding about the whole message. */
  part: string | null;
  /** The name concerned (the archive member's path inside archives); null when none. */
  filename: string | null;
  rule: AttachmentRule;
  class: AttachmentClass;
  reason: string;
  /** Names of the archives the file sits in, outermost first. */
  archivePath?: string[];
}

export interface AttachmentReport {
  findings: AttachmentFinding[];
  /** Distinct classes found, most severe first; empty means nothing to act on. */
  classes: AttachmentClass[];
  /** Part ids per class, for a remove-attachment action. */
  parts: Record<AttachmentClass, string[]>;
}

const CLASS_OF: Record<AttachmentRule, AttachmentClass> = {
  'banned-name': 'banned',
  'double-extension': 'banned',
  'hidden-extension': 'banned',
  'name-mismatch': 'banned',
  'banned-type': 'banned',
  'type-mismatch': 'banned',
  encrypted: 'encrypted',
  'archive-limit': 'unscannable',
  unscannable: 'unscannable',
  malformed: 'malformed',
};
const SEVERITY: AttachmentClass[] = ['malformed', 'banned', 'unscannable', 'encrypted'];

// Characters that reorder or hide what a name shows: bidi embeddings/overrides/isolates (U+202E
// turns "invoice<RLO>fdp.exe" into "invoiceexe.pdf" on screen), marks, zero-width characters.
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const INVISIBLE = /[\u200b-\u200d\u2060\ufeff\u00ad]/u;
const CONTROL = /[\u0000-\u001f\u007f]/u;
// A CLSID "extension" is hidden by Explorer and picks the handler ("file.{CLSID}" trick).
const CLSID = /\.\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/iu;
const isBlank = (c: string) => /[\s\u00a0\u2000-\u200a]/u.test(c);

// Windows drops trailing dots and spaces when it saves a file: "evil.exe." runs as evil.exe.
// (Loops, not /[.\s]+$/: that regex is quadratic on a long run of dots followed by a letter.)
function trimTrailing(name: string): string {
  let end = name.length;
  while (end > 0 && (name[end - 1] === '.' || isBlank(name[end - 1]))) end--;
  return name.slice(0, end);
}

/** Runs of blanks push the real extension out of a narrow attachment column. */
function padded(name: string): boolean {
  let i = name.lastIndexOf('.') - 1;
  let run = 0;
  while (i >= 0 && (isBlank(name[i]) || name[i] === '_')) {
    run++;
    i--;
  }
  return run >= 5;
}

export interface NameAnalysis {
  /** The name as the file system will store it: hidden characters removed, lower case, NFKC. */
  effective: string;
  extensions: string[];
  /** Why the name hides its real end; empty when it does not. */
  hiding: string[];
}

/** How a file system and an unwary reader will see a declared name. */
export function analyseName(name: string): NameAnalysis {
  const hiding: string[] = [];
  if (BIDI.test(name)) hiding.push('contains a bidirectional control character (e.g. U+202E right-to-left override)');
  if (INVISIBLE.test(name)) hiding.push('contains an invisible character');
  if (CONTROL.test(name)) hiding.push('contains a control character');
  if (trimTrailing(name) !== name) hiding.push('ends in dots or spaces, which Windows drops');
  if (CLSID.test(name)) hiding.push('ends in a {CLSID} extension, which Windows hides');
  if (padded(name)) hiding.push('pads the name with blanks before its extension');
  if (name.includes(':')) hiding.push('contains ":" (an NTFS alternate data stream)');
  let effective = name.normalize('NFKC').replace(new RegExp(`${BIDI.source}|${INVISIBLE.source}|${CONTROL.source}`, 'gu'), '');
  effective = trimTrailing(trimTrailing(effective).replace(CLSID, '')).toLowerCase();
  const base = effective.split(/[\\/]/).pop() ?? effective;
  const extensions = base
    .split('.')
    .slice(1)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  return { effective: base, extensions, hiding };
}

type Hit = Omit<AttachmentFinding, 'part' | 'class' | 'archivePath'>;

function nameHits(name: string, r: AttachmentRules): Hit[] {
  const a = analyseName(name);
  const hits: Hit[] = a.hiding.map((h) => ({ filename: name, rule: 'hidden-extension' as const, reason: `name ${h}` }));
  const last = a.extensions.at(-1);
  if (last !== undefined && r.bannedExtensions.includes(last)) {
    hits.push({ filename: name, rule: 'banned-name', reason: `.${last} files are not allowed` });
  }
  const inner = a.extensions.at(-2);
  if (last !== undefined && inner !== undefined && r.decoyExtensions.includes(inner) && !r.doubleExtensionAllowedLast.includes(last)) {
    hits.push({ filename: name, rule: 'double-extension', reason: `double extension: looks like .${inner} but is .${last}` });
  }
  return hits;
}

function typeHits(detected: DetectedType | null, names: string[], r: AttachmentRules): Hit[] {
  if (!detected) return [];
  const label = names[0] ?? null;
  if (r.bannedKinds.includes(detected.kind)) {
    return [{ filename: label, rule: 'banned-type', reason: `content is a ${detected.description}` }];
  }
  if (!r.disguiseKinds.includes(detected.kind)) return [];
  for (const n of names) {
    const ext = analyseName(n).extensions.at(-1);
    const claimed = ext === undefined ? undefined : r.claimedFormats[ext];
    if (claimed !== undefined && claimed !== detected.format) {
      return [{ filename: n, rule: 'type-mismatch', reason: `named .${ext} but the content is a ${detected.description}` }];
    }
  }
  return [];
}

function mismatchHits(p: PartFacts, r: AttachmentRules): Hit[] {
  if (r.nameMismatch === 'ignore') return [];
  const norm = (s: string) => analyseName(s).effective;
  const all = [...p.names.contentType, ...p.names.disposition];
  const distinct = [...new Set(all.map(norm))];
  if (distinct.length < 2) return [];
  const ct = p.names.contentType.join('", "');
  const cd = p.names.disposition.join('", "');
  return [{ filename: p.filename, rule: 'name-mismatch', reason: `declared names disagree: Content-Type name "${ct}", Content-Disposition filename "${cd}"` }];
}

/** Parts that can be saved and opened as files; inline nameless text is read, not run. */
function isFileLike(p: PartFacts): boolean {
  const named = p.names.contentType.length + p.names.disposition.length > 0;
  return named || p.disposition === 'attachment' || !p.contentType.startsWith('text/');
}

function archiveHits(a: ArchiveFacts, r: AttachmentRules): (Hit & { archivePath: string[] })[] {
  const out: (Hit & { archivePath: string[] })[] = [];
  const walk = (arch: ArchiveFacts, path: string[]) => {
    const innerFailed = arch.entries.some((e) => e.archive?.status === 'unscannable');
    if (arch.status === 'unscannable' && !innerFailed) {
      out.push({ filename: path.at(-1) ?? null, rule: 'archive-limit', reason: arch.reason ?? 'archive could not be read', archivePath: path.slice(0, -1) });
    }
    for (const e of arch.entries) {
      if (e.directory) continue;
      const hits: Hit[] = [];
      if (r.archiveMembers === 'check') hits.push(...nameHits(e.path, r), ...typeHits(e.detected, [e.path], r));
      if (e.encrypted && r.encrypted === 'report') hits.push({ filename: e.path, rule: 'encrypted', reason: 'encrypted archive member cannot be scanned' });
      if (!e.archive && e.detected?.kind === 'archive' && r.unopenedArchives === 'unscannable') {
        hits.push({ filename: e.path, rule: 'unscannable', reason: `${e.detected.description} was not opened` });
      }
      out.push(...hits.map((h) => ({ ...h, archivePath: path })));
      if (e.archive) walk(e.archive, [...path, e.path]);
    }
  };
  walk(a, []);
  return out;
}

function partFindings(p: PartFacts, r: AttachmentRules): AttachmentFinding[] {
  const names = [...new Set([...p.names.disposition, ...p.names.contentType])];
  const hits: (Hit & { archivePath?: string[] })[] = names.flatMap((n) => nameHits(n, r));
  hits.push(...mismatchHits(p, r));
  if (isFileLike(p)) hits.push(...typeHits(p.detected, names, r));
  if (p.archive) {
    const top = p.filename ?? `part ${p.id}`;
    hits.push(...archiveHits(p.archive, r).map((h) => ({ ...h, archivePath: [top, ...h.archivePath] })));
  } else if (p.detected?.kind === 'archive' && r.unopenedArchives === 'unscannable') {
    hits.push({ filename: p.filename, rule: 'unscannable', reason: `${p.detected.description} was not opened` });
  }
  return hits.map((h) => ({ part: p.id, class: CLASS_OF[h.rule], ...h }));
}

/** Every finding about a message's attachments, and what they mean for the caller's policy. */
export function evaluateAttachments(facts: MessageFacts, rules: AttachmentRules): AttachmentReport {
  const findings: AttachmentFinding[] = [];
  if (facts.outcome.status !== 'ok') {
    const rule = facts.outcome.status;
    findings.push({ part: null, filename: null, rule, class: CLASS_OF[rule], reason: facts.outcome.reason });
  }
  for (const p of facts.parts) findings.push(...partFindings(p, rules));
  const parts: Record<AttachmentClass, string[]> = { malformed: [], banned: [], unscannable: [], encrypted: [] };
  for (const f of findings) {
    if (f.part !== null && !parts[f.class].includes(f.part)) parts[f.class].push(f.part);
  }
  const classes = SEVERITY.filter((c) => findings.some((f) => f.class === c));
  return { findings, classes, parts };
}

type ListPatch = { add?: readonly string[]; remove?: readonly string[] };
export type AttachmentRulesOverride = Partial<Omit<AttachmentRules, 'bannedExtensions' | 'decoyExtensions' | 'bannedKinds'>> & {
  bannedExtensions?: ListPatch;
  decoyExtensions?: ListPatch;
  bannedKinds?: { add?: readonly DetectedKind[]; remove?: readonly DetectedKind[] };
};

function patch<T extends string>(base: readonly T[], p: { add?: readonly T[]; remove?: readonly T[] } | undefined): T[] {
  const lower = (s: T) => s.toLowerCase().replace(/^\./, '') as T;
  const remove = new Set((p?.remove ?? []).map(lower));
  return [...new Set([...base, ...(p?.add ?? []).map(lower)])].filter((x) => !remove.has(x));
}

/** A domain's override over the defaults: lists are patched (add/remove), scalars replaced. */
export function mergeAttachmentRules(base: AttachmentRules, o: AttachmentRulesOverride): AttachmentRules {
  return {
    ...base,
    ...o,
    bannedExtensions: patch(base.bannedExtensions, o.bannedExtensions),
    decoyExtensions: patch(base.decoyExtensions, o.decoyExtensions),
    bannedKinds: patch(base.bannedKinds, o.bannedKinds),
    claimedFormats: { ...base.claimedFormats, ...o.claimedFormats },
  };
}
