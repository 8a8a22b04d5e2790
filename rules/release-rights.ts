// Who may release, download or preview a quarantined message, by verdict class. One decision for
// every path (console buttons and posts, bulk actions, digest links, the CLI): a user who can click
// a virus into their own inbox defeats the quarantine, so dangerous classes are for administrators.
//
// Levels, weakest first: `recipient` (the end user the message was for, and every administrator),
// `admin` (the superadmin and the admin of the recipients' domains), `superadmin`. A message with
// recipients in several domains takes the strictest level among those domains' tables; a message
// with several classes of evidence takes the strictest level among its classes. A class that is not
// in the table (an unknown or missing verdict) is for administrators: fail closed.

export type Right = 'release' | 'download' | 'preview';
export const RIGHTS: readonly Right[] = ['release', 'download', 'preview'];
export type RightLevel = 'recipient' | 'admin' | 'superadmin';
export const RIGHT_LEVELS: readonly RightLevel[] = ['recipient', 'admin', 'superadmin'];
export type ConsoleRole = 'superadmin' | 'domainadmin' | 'user';

/** Verdict classes a message can be held as (scanners/types.ts PolicyOutcome.class). */
export const RIGHTS_CLASSES = ['virus', 'banned', 'malformed', 'unscannable', 'spoofed', 'phishing', 'blocked', 'high-spam', 'spam', 'clean'] as const;
export type RightsClass = (typeof RIGHTS_CLASSES)[number];

export type ClassRights = Record<Right, RightLevel>;
/** A table or a patch of one (the config's `console.releaseRights` and `domains.<d>.releaseRights`). */
export type RightsPatch = Partial<Record<RightsClass, Partial<ClassRights>>>;

const ADMIN_ONLY: ClassRights = { release: 'admin', download: 'admin', preview: 'admin' };
const RECIPIENT_TOO: ClassRights = { release: 'recipient', download: 'recipient', preview: 'recipient' };

/** The built-in table: what can harm a mailbox is for administrators; spam-like classes for the recipient too. */
export const DEFAULT_RIGHTS: Record<RightsClass, ClassRights> = {
  virus: ADMIN_ONLY,
  banned: ADMIN_ONLY,
  malformed: ADMIN_ONLY,
  unscannable: ADMIN_ONLY,
  spoofed: ADMIN_ONLY,
  phishing: RECIPIENT_TOO,
  blocked: RECIPIENT_TOO,
  'high-spam': RECIPIENT_TOO,
  spam: RECIPIENT_TOO,
  clean: RECIPIENT_TOO,
};

const rank = (l: RightLevel) => RIGHT_LEVELS.indexOf(l);
const stricter = (a: RightLevel, b: RightLevel): RightLevel => (rank(a) >= rank(b) ? a : b);

/** The level one class needs under the built-in table, the global patch and one domain's patch. */
export function levelFor(right: Right, cls: string, global: RightsPatch = {}, domain: RightsPatch = {}): RightLevel {
  if (!(RIGHTS_CLASSES as readonly string[]).includes(cls)) return 'admin';
  const c = cls as RightsClass;
  return domain[c]?.[right] ?? global[c]?.[right] ?? DEFAULT_RIGHTS[c][right];
}

export interface RightFacts {
  role: ConsoleRole;
  /** The classes with evidence against the message (its verdict first); empty or null entries: unknown. */
  classes: (string | null)[];
  /** The global patch (config `console.releaseRights`). */
  global: RightsPatch;
  /** One patch per recipient domain (config `domains.<d>.releaseRights`; {} where none). */
  domains: RightsPatch[];
}

export type RightDecision = { allowed: true; level: RightLevel } | { allowed: false; level: RightLevel; reason: string };

const VERB: Record<Right, string> = { release: 'release', download: 'download', preview: 'preview' };
const WHO: Record<RightLevel, string> = { recipient: 'the recipient', admin: 'an administrator', superadmin: 'the superadmin' };

function satisfies(role: ConsoleRole, level: RightLevel): boolean {
  if (role === 'superadmin') return true;
  if (role === 'domainadmin') return level !== 'superadmin';
  return level === 'recipient';
}

/** May this role do this to a message with these classes? The refusal is a sentence for the user. */
export function decideRight(right: Right, f: RightFacts): RightDecision {
  const classes = f.classes.length ? f.classes : [null];
  const domains = f.domains.length ? f.domains : [{}];
  let level: RightLevel = 'recipient';
  let deciding = String(classes[0] ?? 'unknown');
  for (const cls of classes) {
    for (const d of domains) {
      const l = levelFor(right, cls ?? '', f.global, d);
      if (rank(l) > rank(level)) deciding = cls ?? 'unknown';
      level = stricter(level, l);
    }
  }
  if (satisfies(f.role, level)) return { allowed: true, level };
  return { allowed: false, level, reason: `Only ${WHO[level]} may ${VERB[right]} a message held as ${deciding}.` };
}
