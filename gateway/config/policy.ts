// The content-policy parts of the config file (issue 5): `policy` (global defaults), `rules`
// (first-match rulesets), `urls` (URL blocklists and the bad-sites list), `authentication`
// (authserv-id, ARC sealing), `inline` (verdicts at SMTP time) and `mime` (parser bounds); and per
// hosted domain a `policy` and `rules` of its own. gateway/config/schema.ts puts them in place.
//
// `policy` at any level is a partial patch over the built-in defaults (rules/policy.ts
// DEFAULT_POLICY, listed in the README): only what is written changes. Every key is documented
// here; unknown keys are refused like everywhere else in the file.
import { z } from 'zod';
import { parseListEntry } from '../../rules/lists.ts';
import { DIGEST_MODES, DISPOSITIONS, VERDICT_CLASSES, type PolicyPatch } from '../../rules/policy.ts';
import type { PolicyRule } from '../../rules/rulesets.ts';

const positiveInt = z.number().int().positive();
const score = z.number().finite();
const email = z
  .string()
  .email()
  .transform((s) => s.toLowerCase());
const domainList = z.array(
  z
    .string()
    .regex(/^[a-z0-9.-]+\.[a-z0-9-]+$/i, 'expected a domain name')
    .transform((s) => s.toLowerCase()),
);

const action = z
  .union([
    z.enum(DISPOSITIONS),
    z
      .object({
        /** deliver | headers | tagged | strip (banned only) | quarantine | reject. */
        do: z.enum(DISPOSITIONS).optional(),
        /** Send the recipient a short notice (never the content). */
        notifyRecipient: z.boolean().optional(),
        /** Send the domain's adminAddress the details. */
        notifyAdmin: z.boolean().optional(),
        /** Send a copy of the message as received to these addresses. */
        forwardTo: z.array(email).optional(),
      })
      .strict(),
  ])
  .transform((a) => (typeof a === 'string' ? { do: a } : a));

const classKeys = <T extends z.ZodType>(value: T) =>
  z.object(Object.fromEntries(VERDICT_CLASSES.map((c) => [c, value.optional()])) as Record<(typeof VERDICT_CLASSES)[number], z.ZodOptional<T>>).strict();

const listPatch = z.object({ add: z.array(z.string()).optional(), remove: z.array(z.string()).optional() }).strict();
const kinds = z.enum(['executable', 'script', 'shortcut', 'archive', 'compound', 'document', 'image', 'disk-image']);

const attachmentRules = z
  .object({
    /** Extensions refused (without the dot): add to or remove from rules/defaults/attachments.ts. */
    bannedExtensions: listPatch.optional(),
    /** Inner extensions of a double extension ("invoice.pdf.exe"). */
    decoyExtensions: listPatch.optional(),
    /** Content kinds refused whatever the name (executable, script, shortcut, disk-image…). */
    bannedKinds: z
      .object({ add: z.array(kinds).optional(), remove: z.array(kinds).optional() })
      .strict()
      .optional(),
    /** Content-Type name and Content-Disposition filename that disagree: ban, or ignore. */
    nameMismatch: z.enum(['ban', 'ignore']).optional(),
    /** RAR, 7z, CAB… (not opened): unscannable, or judged by name only (ignore). */
    unopenedArchives: z.enum(['unscannable', 'ignore']).optional(),
    /** Apply the rules to files inside zips: check, or ignore. */
    archiveMembers: z.enum(['check', 'ignore']).optional(),
  })
  .strict();

export const policyPatchSchema = z
  .object({
    /** Which checks count (virus, spam, attachments, html, auth, urls, lists): true or false each. */
    checks: z
      .object({
        virus: z.boolean().optional(),
        spam: z.boolean().optional(),
        attachments: z.boolean().optional(),
        html: z.boolean().optional(),
        auth: z.boolean().optional(),
        urls: z.boolean().optional(),
        /** Use the allow/block lists kept in the console. */
        lists: z.boolean().optional(),
        /** The learned filter (issue 19): its points join the spam score. */
        learner: z.boolean().optional(),
      })
      .strict()
      .optional(),
    /** Spam thresholds for this level (overrides the top-level `spam` section). */
    spam: z.object({ threshold: score.optional(), highThreshold: score.optional() }).strict().optional(),
    /** The learned filter's weight in the spam score (rules/learner.ts): points per unit of log-odds, at most ± maxPoints, ramped in over rampExamples learned messages. */
    learner: z
      .object({
        pointsPerLogOdds: z.number().min(0).max(10).optional(),
        maxPoints: z.number().min(0).max(50).optional(),
        rampExamples: z.number().int().min(1).optional(),
      })
      .strict()
      .optional(),
    /** Per verdict class: a disposition ("quarantine") or { do, notifyRecipient, notifyAdmin, forwardTo }. */
    actions: classKeys(action)
      .refine((a) => Object.entries(a).every(([c, v]) => v?.do !== 'strip' || c === 'banned'), { message: 'strip is only for banned attachments' })
      .optional(),
    /** Subject tags per class ("" for none), and `cleaned` for a copy whose HTML was disarmed. */
    tags: classKeys(z.string().max(64))
      .extend({ cleaned: z.string().max(64).optional() })
      .strict()
      .optional(),
    attachments: z
      .object({
        /** Changes to the default attachment rules. */
        rules: attachmentRules.optional(),
        /** Encrypted archive members: banned | unscannable | allow. */
        encrypted: z.enum(['banned', 'unscannable', 'allow']).optional(),
      })
      .strict()
      .optional(),
    html: z
      .object({
        /** Disarm HTML in delivered copies. */
        disarm: z.boolean().optional(),
        /** Remote images that are not tracking pixels: keep | placeholder | remove. */
        remoteImages: z.enum(['keep', 'placeholder', 'remove']).optional(),
        /** Flag links whose text shows another host than their target (verdict "phishing"). */
        phishingNet: z.boolean().optional(),
        /** Domains never flagged by the phishing net, added to rules/defaults/phishing-safe-sites.ts. */
        phishingSafeSites: domainList.optional(),
        /** Also tag <Cleaned> when only web bugs / remote images were removed. */
        tagWebBugs: z.boolean().optional(),
      })
      .strict()
      .optional(),
    auth: z
      .object({
        /** DMARC failure of a p=reject domain: verdict "spoofed", or only add dmarcRejectScore. */
        dmarcReject: z.enum(['spoofed', 'score']).optional(),
        dmarcRejectScore: score.optional(),
        /** Added to the score when DMARC fails for a p=quarantine domain. */
        dmarcQuarantineScore: score.optional(),
        /** A passing ARC chain excuses a DMARC failure (mailing lists). */
        trustArc: z.boolean().optional(),
      })
      .strict()
      .optional(),
    /** A scanner down or timing out: retry (keep it queued, default), quarantine, or pass (with a header saying so). */
    outage: z
      .object({
        virus: z.enum(['retry', 'quarantine', 'pass']).optional(),
        spam: z.enum(['retry', 'quarantine', 'pass']).optional(),
      })
      .strict()
      .optional(),
    urls: z
      .object({
        /** Score per body host on the bad-sites list. */
        badSiteScore: score.optional(),
      })
      .strict()
      .optional(),
    /** Where notifyAdmin goes; default postmaster@<recipient domain>. */
    adminAddress: email.nullable().optional(),
    /** Quarantine digests to every recipient with held mail: off | daily | notice (within a minute of the hold). */
    digest: z.enum(DIGEST_MODES).optional(),
  })
  .strict();

// Keep the schema and the TypeScript type in step: a change to one that the other lacks fails here.
const _patchCheck: (p: z.infer<typeof policyPatchSchema>) => PolicyPatch = (p) => p;

function pattern(kind: 'address' | 'client') {
  const ok = kind === 'address' ? ['address', 'domain-exact', 'domain'] : ['ip', 'cidr'];
  const what = kind === 'address' ? 'an address, *@domain or a domain' : 'an IP address or network (CIDR)';
  return z.string().refine((s) => {
    const p = parseListEntry(s);
    return p.ok && ok.includes(p.entry.type);
  }, `expected ${what}`);
}

const ruleSchema = z
  .object({
    /** Shown in the scan report when the rule applied. */
    name: z.string().max(100).optional(),
    /** All given fields must match; each is a list of patterns, any of which may match. */
    match: z
      .object({
        /** Envelope sender. */
        from: z.array(pattern('address')).min(1).optional(),
        /** The recipient. */
        to: z.array(pattern('address')).min(1).optional(),
        /** Sender or recipient. */
        fromOrTo: z.array(pattern('address')).min(1).optional(),
        /** SMTP client address. */
        client: z.array(pattern('client')).min(1).optional(),
      })
      .strict()
      .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'a rule needs at least one of from, to, fromOrTo, client' }),
    /** The policy settings this rule sets (same keys as `policy`). */
    set: policyPatchSchema,
  })
  .strict();

export const rulesSchema = z.array(ruleSchema).default([]);

const _ruleCheck: (r: z.infer<typeof ruleSchema>) => PolicyRule = (r) => r;

const urlList = z
  .object({
    /** A domain blocklist zone (Spamhaus DBL, SURBL, URIBL): the registrable domain of each host is looked up. */
    zone: z.string().regex(/^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/i, 'expected a DNS zone'),
    /** Answer → meaning; when given, only these answers count as a listing. */
    codes: z.record(z.string(), z.string()).optional(),
    /** Answers meaning "query refused" besides 127.255.255.0/24 (URIBL: 127.0.0.1). */
    refusedCodes: z.array(z.string()).optional(),
    /** Score added per listed host. */
    weight: score.default(5),
    /** A lookup that fails: ignore (noted in the report) or retry the whole scan later. */
    onError: z.enum(['ignore', 'retry']).default('ignore'),
  })
  .strict();

export const urlsSchema = z
  .object({
    /** Domain blocklists for the hosts found in message bodies. */
    lists: z.array(urlList).default([]),
    /** Extra bad sites (domains; subdomains match too), added to rules/defaults/bad-sites.ts. */
    badSites: domainList.default([]),
    /** A file with one bad-site domain per line (# comments), read at start. */
    badSitesFile: z.string().optional(),
    /** Distinct hosts looked up per message at most (the rest are counted, not checked). */
    maxHosts: positiveInt.max(1000).default(50),
  })
  .strict();

export const authenticationSchema = z
  .object({
    /** Our authserv-id in Authentication-Results (RFC 8601); default: `hostname`. */
    authservId: z.string().min(1).optional(),
    /** ARC-seal delivered copies (after our changes) with this key; no key, no seal. */
    arcSeal: z
      .object({
        domain: z.string().min(1),
        selector: z.string().min(1),
        /** PEM private key (RSA or Ed25519); relative to the config file. */
        keyFile: z.string().min(1),
      })
      .strict()
      .optional(),
  })
  .strict();

export const inlineSchema = z
  .object({
    /**
     * Let the SMTP session wait for the verdict when every recipient's policy may refuse
     * (some action is `reject`); without any `reject` in the policies nobody ever waits.
     */
    enabled: z.boolean().default(true),
    /** Longest wait before the message is accepted as usual (and handled after the queue). */
    deadlineMs: positiveInt.max(120_000).default(20_000),
  })
  .strict();

export const mimeSchema = z
  .object({
    /** MIME parts (containers included) per message, attached messages counted in. Past it: malformed. */
    maxParts: positiveInt.default(500),
    /** MIME nesting depth. Past it: malformed. */
    maxDepth: positiveInt.default(20),
    /** Header block bytes of one MIME part. Past it: malformed. */
    maxHeaderBytes: positiveInt.default(256 * 1024),
    /** Decoded size of a zip that is opened and listed. Past it: unscannable. */
    maxArchiveBytes: positiveInt.default(20 * 1024 * 1024),
    /** Encoded size of one HTML part that is disarmed. Past it: unscannable. */
    maxHtmlPartBytes: positiveInt.default(4 * 1024 * 1024),
    /** Decoded text per part read for URLs (the rest is not looked at for links). */
    maxTextPartBytes: positiveInt.default(1024 * 1024),
    /**
     * Element nesting of one HTML part, checked by a streaming pre-scan before any HTML tree is
     * built (scanners/html-bounds.ts: tree builders cost O(tags × depth)). Past it: unscannable.
     * Browsers stop nesting at 512.
     */
    maxHtmlDepth: positiveInt.default(512),
    /** Elements of one HTML part, checked by the same pre-scan. Past it: unscannable. */
    maxHtmlElements: positiveInt.default(100_000),
  })
  .strict();

export type UrlsConfig = z.infer<typeof urlsSchema>;
export type InlineConfig = z.infer<typeof inlineSchema>;
export type MimeConfig = z.infer<typeof mimeSchema>;
export type AuthenticationConfig = z.infer<typeof authenticationSchema>;

/** The content-policy keys of the config file's top level. */
export const contentPolicyKeys = {
  /** The content policy of every hosted domain (a patch over the built-in defaults, see README). */
  policy: policyPatchSchema.default({}),
  /** First-match rules, after each domain's own (see rules/rulesets.ts). */
  rules: rulesSchema,
  urls: urlsSchema.default(urlsSchema.parse({})),
  authentication: authenticationSchema.default({}),
  inline: inlineSchema.default(inlineSchema.parse({})),
  mime: mimeSchema.default(mimeSchema.parse({})),
};

/** The content-policy keys of one hosted domain. */
export const domainPolicyKeys = {
  /** This domain's content policy (a patch over the global `policy`). */
  policy: policyPatchSchema.optional(),
  /** This domain's first-match rules, read before the global ones. */
  rules: rulesSchema,
};

void _patchCheck;
void _ruleCheck;
