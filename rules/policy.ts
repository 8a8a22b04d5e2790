// Content policy: what mailmoat checks in a message and what it does with each verdict class, for
// one recipient. Pure: the effective policy of a recipient is the built-in defaults, then the
// config's `policy`, then the recipient domain's `policy`, then the first-match rules
// (rules/rulesets.ts). Each layer is a partial patch over the one below it.
//
// Why per recipient: a message to several people is judged once but handled per recipient, as
// each of their domains (and rules naming them) may want something else. Recipients whose
// handling ends up the same are processed together (rules/actions.ts groups them).
import type { AttachmentRulesOverride } from './attachments.ts';
import { DEFAULT_LEARNER_FUSION, type LearnerFusion } from './learner.ts';

/**
 * The verdict classes, most severe first. A message that is several things at once is handled by
 * the strictest action among all its classes (rules/actions.ts strictestAction); among classes with
 * that action, the first of this list names the verdict (a virus that is also spam is a virus).
 */
export const VERDICT_CLASSES = ['virus', 'blocked', 'malformed', 'banned', 'unscannable', 'spoofed', 'phishing', 'high-spam', 'spam', 'clean'] as const;
export type VerdictClass = (typeof VERDICT_CLASSES)[number];

/**
 * What happens to the message for a recipient:
 * - deliver     delivered with mailmoat's status headers (as every delivered copy is);
 * - headers     delivered with an added X-Mailmoat-Warning header (and X-Spam-Flag: YES for spam classes), subject unchanged;
 * - tagged      as `headers`, and the subject starts with the class's tag ({Spam?}, {Virus?}…);
 * - strip       (banned attachments only) the offending attachments are replaced by a short text note, then as `tagged`;
 * - quarantine  held in the quarantine; an administrator (or the recipient, in the console) may release it;
 * - reject      refused at SMTP time with 550/554 and the reason, when the SMTP session is still
 *               waiting for the verdict (inline verdicts) and every recipient's policy refuses;
 *               otherwise (accepted already) quarantined, never lost.
 */
// Least strict first: the order rules/actions.ts ranks them by when several classes apply.
export const DISPOSITIONS = ['deliver', 'headers', 'tagged', 'strip', 'quarantine', 'reject'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

export interface ClassAction {
  do: Disposition;
  /** Tell the recipient (a short notice, never the content) that a message to them was held, stripped or refused (no notice for a delivered copy). */
  notifyRecipient: boolean;
  /** Tell the domain's administrator (policy.adminAddress) with the scan details. */
  notifyAdmin: boolean;
  /** Send a copy of the message as received (with mailmoat's headers) to these addresses. */
  forwardTo: string[];
}

export interface Policy {
  /** Which checks count for this recipient. A check off is reported "skipped", never "clean". */
  checks: { virus: boolean; spam: boolean; attachments: boolean; html: boolean; auth: boolean; urls: boolean; lists: boolean; learner: boolean };
  spam: { threshold: number; highThreshold: number };
  /** How the learner's log-odds enter the spam score (rules/learner.ts learnerPoints). */
  learner: LearnerFusion;
  actions: Record<VerdictClass, ClassAction>;
  /** Subject tags per class (used by `tagged` and `strip`), and `cleaned` for a disarmed copy. "" = none. */
  tags: Record<VerdictClass | 'cleaned', string>;
  attachments: {
    /** Overrides of rules/defaults/attachments.ts, applied in order (config, domain, rules). */
    rules: AttachmentRulesOverride[];
    /** Encrypted archive members cannot be scanned: count them as banned, unscannable, or let them pass. */
    encrypted: 'banned' | 'unscannable' | 'allow';
  };
  html: {
    /** Disarm HTML in the delivered copy (scripts, forms, frames, handlers, web bugs; phishing links made inert). */
    disarm: boolean;
    /** Remote images that are not tracking pixels: kept, replaced by a note, or removed. */
    remoteImages: 'keep' | 'placeholder' | 'remove';
    /** Links whose text shows another host than their target are a "phishing" verdict. */
    phishingNet: boolean;
    /** Registrable domains never flagged by the phishing net (click-tracking redirectors). Added to rules/defaults/phishing-safe-sites.ts. */
    phishingSafeSites: string[];
    /** Tag the subject <Cleaned> also when only web bugs / remote images were removed. */
    tagWebBugs: boolean;
  };
  auth: {
    /** DMARC fails for a domain that publishes p=reject: verdict "spoofed", or only add `dmarcRejectScore`. */
    dmarcReject: 'spoofed' | 'score';
    dmarcRejectScore: number;
    /** Added to the spam score when DMARC fails for a domain that publishes p=quarantine. */
    dmarcQuarantineScore: number;
    /** A passing ARC chain (a mailing list that re-signed) excuses a DMARC failure. */
    trustArc: boolean;
  };
  urls: {
    /** Added to the spam score per host found on the local bad-sites list. */
    badSiteScore: number;
  };
  /**
   * When a scanner is down or times out: `retry` (the message stays queued and is scanned again
   * with backoff — an inline session gets 451 4.7.1), `quarantine` (held as unscannable at once),
   * or `pass` (delivered without that check; the status header says it was not scanned).
   */
  outage: { virus: OutagePolicy; spam: OutagePolicy };
  /** Where notifyAdmin goes; null: postmaster@<recipient domain>. */
  adminAddress: string | null;
  /**
   * Quarantine digests to every recipient with held mail (quarantine-ui/lib/digest.ts): none, one
   * a day, or a notice within a minute of the hold. Read per recipient domain, not per rule.
   */
  digest: DigestMode;
}

export const DIGEST_MODES = ['off', 'daily', 'notice'] as const;
export type DigestMode = (typeof DIGEST_MODES)[number];

/** Partial at every level: a layer of policy (config, domain, rule). Lists replace, except attachments.rules, which accumulate. */
export type OutagePolicy = 'retry' | 'quarantine' | 'pass';

export type PolicyPatch = {
  checks?: Partial<Policy['checks']>;
  spam?: Partial<Policy['spam']>;
  learner?: Partial<Policy['learner']>;
  actions?: Partial<Record<VerdictClass, Partial<ClassAction>>>;
  tags?: Partial<Policy['tags']>;
  attachments?: { rules?: AttachmentRulesOverride; encrypted?: Policy['attachments']['encrypted'] };
  html?: Partial<Policy['html']>;
  auth?: Partial<Policy['auth']>;
  urls?: Partial<Policy['urls']>;
  outage?: Partial<Policy['outage']>;
  adminAddress?: string | null;
  digest?: DigestMode;
};

const act = (d: Disposition, o: Partial<ClassAction> = {}): ClassAction => ({ do: d, notifyRecipient: false, notifyAdmin: false, forwardTo: [], ...o });

/**
 * The built-in defaults, MailScanner's where it has one. Nothing is refused at SMTP time unless
 * configured: a refusal gives the recipient no way to get a false positive back, so `reject` is an
 * operator's choice per class (see README "Rules, actions and tags").
 */
export const DEFAULT_POLICY: Policy = {
  checks: { virus: true, spam: true, attachments: true, html: true, auth: true, urls: true, lists: true, learner: true },
  spam: { threshold: 5, highThreshold: 10 },
  learner: DEFAULT_LEARNER_FUSION,
  actions: {
    virus: act('quarantine'),
    blocked: act('quarantine'),
    malformed: act('quarantine'),
    banned: act('quarantine'),
    unscannable: act('quarantine'),
    spoofed: act('quarantine'),
    // The phishing net has false positives (click trackers); the links are made inert in the
    // delivered copy anyway, so the reader gets the mail with a warning, as MailScanner does.
    phishing: act('tagged'),
    'high-spam': act('quarantine'),
    spam: act('tagged'),
    clean: act('deliver'),
  },
  tags: {
    virus: '{Virus?}',
    blocked: '{Blocked?}',
    malformed: '{Malformed?}',
    banned: '{Filename?}',
    unscannable: '{Unscannable?}',
    spoofed: '{Spoofed?}',
    phishing: '{Fraud?}',
    'high-spam': '{Spam?}',
    spam: '{Spam?}',
    clean: '',
    cleaned: '<Cleaned>',
  },
  attachments: { rules: [], encrypted: 'banned' },
  html: { disarm: true, remoteImages: 'keep', phishingNet: true, phishingSafeSites: [], tagWebBugs: false },
  auth: { dmarcReject: 'spoofed', dmarcRejectScore: 5, dmarcQuarantineScore: 3, trustArc: true },
  // Never deliver unscanned mail silently: a dead scanner keeps the mail queued until it is back.
  outage: { virus: 'retry', spam: 'retry' },
  urls: { badSiteScore: 5 },
  adminAddress: null,
  digest: 'daily',
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function mergeInto(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(base[k]) ? mergeInto(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/** One layer over a policy. */
export function applyPatch(base: Policy, patch: PolicyPatch): Policy {
  const { attachments, ...rest } = patch;
  const merged = mergeInto(base as unknown as Record<string, unknown>, rest as Record<string, unknown>) as unknown as Policy;
  if (!attachments) return merged;
  return {
    ...merged,
    attachments: {
      rules: attachments.rules ? [...base.attachments.rules, attachments.rules] : base.attachments.rules,
      encrypted: attachments.encrypted ?? base.attachments.encrypted,
    },
  };
}

/** Layers in order, the last one winning. */
export function layerPolicy(base: Policy, patches: readonly (PolicyPatch | undefined)[]): Policy {
  return patches.reduce<Policy>((p, patch) => (patch ? applyPatch(p, patch) : p), base);
}
