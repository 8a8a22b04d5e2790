// The front-line part of the config: `checks` (global), `domains.<d>.checks` (per-domain
// overrides), `domains.<d>.recipients`, `tls`, `proxy` and `submission`. Every key has a comment
// and a default that is safe for a public MX; each published provider rule (issue 4) is one line:
//
//   checks.helo.unresolvable: reject        "550 Bad HELO: <name> does not exist"
//   checks.rdns.missingPtr: reject          no reverse DNS, no mail
//   checks.dnsbl.lists: [ …zen… ]           Spamhaus lookups (needs your own resolver / DQS key)
//   smtp.maxRecipients: 30                  30 recipients per message
//   smtp.maxMessageBytes: 31457280          30 MB
//
// A check's failure is a policy: reject (5xx), tempfail (4xx), score (adds to the connection
// score, see checks.score.rejectAt) or ignore (logged and counted only). A string is short for
// { action: <string> }.
import { z } from 'zod';
import { parseListEntry } from '../../rules/lists.ts';
import { SKIPPABLE } from '../../rules/frontline.ts';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);

const ACTIONS = ['reject', 'tempfail', 'score', 'ignore'] as const;
const policyObject = <A extends readonly [string, ...string[]]>(actions: A) =>
  z.union([
    z.enum(actions).transform((action) => ({ action })),
    z
      .object({
        action: z.enum(actions),
        /** Added to the connection score when action is score. Default 1. */
        score: z.number().min(0).optional(),
      })
      .strict(),
  ]);
/** What a failed check does. */
export const checkPolicy = policyObject(ACTIONS);
/** What a DNS error does: never a reject (we do not know). auto: tempfail when the check would reject, else ignore. */
const dnsErrorPolicy = z.union([z.literal('auto'), policyObject(['tempfail', 'score', 'ignore'] as const)]);

const networkEntry = z.string().refine((e) => {
  const p = parseListEntry(e);
  return p.ok && (p.entry.type === 'ip' || p.entry.type === 'cidr');
}, 'expected an IP address or network (CIDR)');
const senderEntry = z.string().refine((e) => {
  const p = parseListEntry(e);
  return p.ok && ['address', 'domain-exact', 'domain'].includes(p.entry.type);
}, 'expected an address, *@domain or domain');

// ---- HELO / rDNS / SPF: the global shape has defaults, the per-domain shape is all-optional ----

const heloFields = {
  /** false: no HELO check at all (no lookups). */
  enabled: z.boolean(),
  /** Not a host name or [address literal]: bad characters, underscore, bare IP, empty label. */
  invalidSyntax: checkPolicy,
  /** A single label such as "server1" (RFC 5321 §4.1.1.1 wants the FQDN). */
  notFqdn: checkPolicy,
  /** localhost, or a name under reservedSuffixes ("server1.local"). */
  reservedName: checkPolicy,
  reservedSuffixes: z.array(z.string().min(1)),
  /** An address literal that is not the client's own address (NAT gets this wrong: only scored). */
  literalMismatch: checkPolicy,
  /** Our own host name (hostname, ourNames) or listening address, sent by someone else. */
  forgedSelf: checkPolicy,
  /** More names only we may use in HELO, e.g. the MX names of a cluster. */
  ourNames: z.array(z.string().min(1)),
  /** The name does not exist or has no A/AAAA/MX record. Postfix warns reject_unknown_helo_hostname loses mail: scored by default. */
  unresolvable: checkPolicy,
  /** The HELO lookup failed (timeout, SERVFAIL). */
  dnsError: dnsErrorPolicy,
};
const HELO_DEFAULTS = {
  enabled: true,
  invalidSyntax: { action: 'reject' as const },
  notFqdn: { action: 'reject' as const },
  reservedName: { action: 'reject' as const },
  reservedSuffixes: ['localhost', 'localdomain', 'local', 'invalid', 'example', 'internal', 'home.arpa', 'lan', 'home', 'corp', 'onion'],
  literalMismatch: { action: 'score' as const, score: 1 },
  forgedSelf: { action: 'reject' as const },
  ourNames: [] as string[],
  unresolvable: { action: 'score' as const, score: 2 },
  dnsError: 'auto' as const,
};

const rdnsFields = {
  enabled: z.boolean(),
  /** The client address has no PTR record. Scored by default (Postfix, Haraka and PMG do not refuse on it by default). */
  missingPtr: checkPolicy,
  /** PTR names exist but none resolves back to the client address (FCrDNS). */
  notConfirmed: checkPolicy,
  /** The PTR or forward lookup failed. */
  dnsError: dnsErrorPolicy,
  /** At most this many PTR names are checked forward. */
  maxPtrNames: positiveInt,
};
const RDNS_DEFAULTS = {
  enabled: true,
  missingPtr: { action: 'score' as const, score: 2 },
  notConfirmed: { action: 'score' as const, score: 1 },
  dnsError: 'auto' as const,
  maxPtrNames: 10,
};

const spfFields = {
  enabled: z.boolean(),
  /** "-all" matched: 550 5.7.23 with the domain's explanation (what policyd-spf does by default). */
  fail: checkPolicy,
  /** "~all": kept for scoring. */
  softfail: checkPolicy,
  neutral: checkPolicy,
  /** No SPF record. */
  none: checkPolicy,
  /** A broken SPF record (syntax, too many lookups): the domain's problem, not proof of forgery. */
  permerror: checkPolicy,
  /** DNS trouble while evaluating: 451 4.7.24 (tempfail) or accept ("ignore"). */
  temperror: policyObject(['tempfail', 'score', 'ignore'] as const),
};
const SPF_DEFAULTS = {
  enabled: true,
  fail: { action: 'reject' as const },
  softfail: { action: 'score' as const, score: 1 },
  neutral: { action: 'ignore' as const },
  none: { action: 'ignore' as const },
  permerror: { action: 'ignore' as const },
  temperror: { action: 'tempfail' as const },
};

function withDefaults<S extends z.ZodRawShape>(fields: S, defaults: { [K in keyof S]: z.output<S[K]> }) {
  const shape = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, (v as z.ZodType).default((defaults as Record<string, unknown>)[k])]));
  return z
    .object(shape as unknown as { [K in keyof S]: z.ZodDefault<S[K]> })
    .strict()
    .default(defaults as never);
}
function allOptional<S extends z.ZodRawShape>(fields: S) {
  const shape = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, (v as z.ZodType).optional()]));
  return z.object(shape as unknown as { [K in keyof S]: z.ZodOptional<S[K]> }).strict();
}

// ---- DNSBL / DNSWL ----

const loopbackV4 = z.string().regex(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, 'expected an answer in 127.0.0.0/8');
const dnsblList = z
  .object({
    /** The list's DNS zone, e.g. zen.spamhaus.org (or <key>.zen.dq.spamhaus.net). */
    zone: z.string().regex(/^[a-z0-9_-]+(\.[a-z0-9_-]+)+\.?$/i, 'expected a DNS zone'),
    /** ip: the client address is looked up; domain: the HELO name and/or sender domain (DBL/URIBL style). */
    kind: z.enum(['ip', 'domain']).default('ip'),
    /** block: a hit counts against the sender; allow (DNSWL): a hit skips the block lists. */
    type: z.enum(['block', 'allow']).default('block'),
    /** Answer → meaning. When given, only these answers count as a listing (e.g. ZEN 127.0.0.2–11). */
    codes: z.record(loopbackV4, z.string()).optional(),
    /** Answers meaning "query refused" besides 127.255.255.0/24 (URIBL: 127.0.0.1). */
    refusedCodes: z.array(loopbackV4).optional(),
    /** reject: 554 5.7.1 at RCPT; score: adds `weight` to the connection score. Default: checks.dnsbl.defaultAction. */
    action: z.enum(['reject', 'score']).optional(),
    weight: z.number().min(0).optional(),
    /** What a lookup error on this list does. Default: checks.dnsbl.onError. */
    onError: z.enum(['ignore', 'tempfail']).optional(),
    /** Fetch the TXT reason of a listing for the reply. */
    txt: z.boolean().default(true),
  })
  .strict();
export type DnsblListConfig = z.output<typeof dnsblList>;

const dnsbl = z
  .object({
    /** The lists, in order. None by default: public lists need your own resolver (Spamhaus refuses public ones). */
    lists: z.array(dnsblList).default([]),
    /** A lookup error: ignore (noted and counted; the scanners still fail closed) or tempfail (451 4.7.1). */
    onError: z.enum(['ignore', 'tempfail']).default('ignore'),
    /** Action of a block list that names none. */
    defaultAction: z.enum(['reject', 'score']).default('reject'),
    /** Look the HELO name up in the domain lists. */
    checkHelo: z.boolean().default(true),
    /** Look the sender domain up in the domain lists. */
    checkSender: z.boolean().default(true),
  })
  .strict()
  .default({ lists: [], onError: 'ignore', defaultAction: 'reject', checkHelo: true, checkSender: true });

// ---- limits, protocol, trust ----

const rate = z
  .object({
    /** Events allowed per client (IPv4 address, IPv6 /64) within the window. */
    max: positiveInt,
    windowSec: positiveInt.default(60),
  })
  .strict();

const limits = z
  .object({
    /** Simultaneous sessions per client address (421 4.7.0). Postfix's default is 50. 0: no limit. */
    connectionsPerClient: nonNegativeInt.default(50),
    /** New connections per client per window (421 4.7.0). Off by default, like Postfix. */
    connectionRate: rate.nullable().default(null),
    /** MAIL FROM commands per client per window (450 4.7.1). Off by default. */
    messageRate: rate.nullable().default(null),
    /** Accepted recipients per client per window (450 4.7.1). Off by default. */
    recipientRate: rate.nullable().default(null),
  })
  .strict()
  .default({ connectionsPerClient: 50, connectionRate: null, messageRate: null, recipientRate: null });

const protocol = z
  .object({
    /**
     * A bare CR or LF inside DATA (SMTP smuggling, RFC 5321 §2.3.8): reject (550 5.5.2, like
     * Postfix smtpd_forbid_bare_newline=reject), normalize (turned into CRLF) or accept.
     */
    bareLineEndings: z.enum(['reject', 'normalize', 'accept']).default('reject'),
    /** NUL bytes in DATA (RFC 2045 §2.8 forbids them): reject (550 5.6.0), strip (removed), or accept; rules/nul-bytes.ts. */
    nulBytes: z.enum(['reject', 'strip', 'accept']).default('reject'),
    /** Commands sent ahead of the reply where RFC 2920 forbids it (554 5.5.0, like Postfix 3.9 smtpd_forbid_unauth_pipelining). */
    pipelining: z.enum(['reject', 'ignore']).default('reject'),
    /** Extra wait before the greeting (postscreen's greet pause); a client talking first gets 421 (not from trusted networks). 0: greet at once (gateway/smtp/greeting.ts removes smtp-server's fixed 100 ms). */
    greetPauseMs: nonNegativeInt.max(30_000).default(0),
  })
  .strict()
  .default({ bareLineEndings: 'reject', nulBytes: 'reject', pipelining: 'reject', greetPauseMs: 0 });

const trusted = z
  .object({
    /** Networks (IP or CIDR) whose clients skip the checks in `skip`: trusted relays, monitoring. Like Postfix mynetworks. */
    networks: z.array(networkEntry).default(['127.0.0.0/8', '::1']),
    /** Envelope senders (address, *@domain, domain) that skip the checks in `skip`, only when SPF passes for them. */
    senders: z.array(senderEntry).default([]),
    /** The checks they skip. Never skipped: relay refusal, address syntax, recipient verification, size. */
    skip: z.array(z.enum(SKIPPABLE)).default([...SKIPPABLE]),
  })
  .strict()
  .default({ networks: ['127.0.0.0/8', '::1'], senders: [], skip: [...SKIPPABLE] });

export const checksSchema = z
  .object({
    helo: withDefaults(heloFields, HELO_DEFAULTS),
    rdns: withDefaults(rdnsFields, RDNS_DEFAULTS),
    spf: withDefaults(spfFields, SPF_DEFAULTS),
    dnsbl,
    score: z
      .object({
        /** Refuse (550 5.7.1) when the scores of the failed checks add up to this. null: scores only go to the scanners. */
        rejectAt: z.number().positive().nullable().default(5),
      })
      .strict()
      .default({ rejectAt: 5 }),
    /** Local parts (or full addresses) that the connection checks never refuse mail for (RFC 5321 §4.5.1, RFC 2142). */
    exemptRecipients: z.array(z.string().min(1)).default(['postmaster', 'abuse']),
    limits,
    protocol,
    trusted,
    /** Refuse a MAIL/RCPT address with a single-label domain ("user@localhost") with 553. */
    requireFqdnAddresses: z.boolean().default(true),
    /** Deadline for the whole SPF evaluation (RFC 7208 §4.6.4 asks for at least 20 s). */
    spfTimeoutMs: positiveInt.default(20_000),
  })
  .strict();
export type ChecksConfig = z.output<typeof checksSchema>;

/** `domains.<d>.checks`: any of these replaces the global value for mail to that domain. */
export const domainChecksSchema = z
  .object({
    helo: allOptional(heloFields).optional(),
    rdns: allOptional(rdnsFields).optional(),
    spf: allOptional(spfFields).optional(),
    dnsbl: z
      .object({
        /** false: no DNSBL refusals or scores for this domain. */
        enabled: z.boolean().optional(),
        onError: z.enum(['ignore', 'tempfail']).optional(),
        defaultAction: z.enum(['reject', 'score']).optional(),
      })
      .strict()
      .optional(),
    score: z.object({ rejectAt: z.number().positive().nullable().optional() }).strict().optional(),
    exemptRecipients: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type DomainChecksConfig = z.output<typeof domainChecksSchema>;

/** `domains.<d>.recipients`: which recipients exist (unknown → 550 5.1.1). */
export const recipientsSchema = z
  .object({
    /**
     * any: every address is accepted and the downstream decides (catch-all; the default, since we
     * know no users); list: only `list`; verify: ask the downstream with an RCPT probe, cached.
     */
    mode: z.enum(['any', 'list', 'verify']).default('any'),
    /** Local parts ("alice") or full addresses; case-insensitive. */
    list: z.array(z.string().min(1)).default([]),
    /** Subaddress separator: "alice+tag" is checked as "alice". Empty: none. */
    delimiter: z.string().max(1).default('+'),
    verify: z
      .object({
        /** How long an existing recipient is remembered. */
        positiveTtlSec: positiveInt.default(24 * 3600),
        /** How long an unknown one is remembered (a new mailbox waits at most this long). */
        negativeTtlSec: positiveInt.default(3600),
        /** Deadline of one probe; a probe that fails is a 450, never cached. */
        timeoutMs: positiveInt.default(15_000),
      })
      .strict()
      .default({ positiveTtlSec: 24 * 3600, negativeTtlSec: 3600, timeoutMs: 15_000 }),
  })
  .strict()
  .default({ mode: 'any', list: [], delimiter: '+', verify: { positiveTtlSec: 24 * 3600, negativeTtlSec: 3600, timeoutMs: 15_000 } });
export type RecipientsConfig = z.output<typeof recipientsSchema>;

export const tlsSchema = z
  .object({
    /** PEM certificate (chain) and key files; the first is the default, the others are chosen by SNI from their names. */
    certificates: z
      .array(
        z
          .object({
            cert: z.string().min(1),
            key: z.string().min(1),
            /** Names this certificate is for; default: the DNS names in its subjectAltName (or CN). */
            names: z.array(z.string().min(1)).optional(),
          })
          .strict(),
      )
      .default([]),
    minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** How often the files are checked for changes (renewed certificates load without a restart; SIGHUP reloads at once). 0: never. */
    reloadCheckSec: nonNegativeInt.default(60),
  })
  .strict()
  .default({ certificates: [], minVersion: 'TLSv1.2', reloadCheckSec: 60 });
export type TlsConfig = z.output<typeof tlsSchema>;

export const proxySchema = z
  .object({
    /**
     * Load balancer addresses that send a PROXY protocol v1 header (HAProxy send-proxy; v2 is not
     * supported, so not AWS NLB): every check then sees the real client address. Exact addresses, no CIDR.
     */
    from: z
      .array(
        z.string().refine((e) => {
          const p = parseListEntry(e);
          return p.ok && p.entry.type === 'ip';
        }, 'expected an IP address'),
      )
      .default([]),
  })
  .strict()
  .default({ from: [] });

// The submission listeners and the outbound relay: gateway/config/submission.ts.
export { submissionSchema, type SubmissionConfig } from './submission.ts';
