// The outbound relay part of the config: `submission`. Customers send through any number
// of listeners (587 STARTTLS, 465 implicit TLS per RFC 8314, 2525), each with its own AUTH rule,
// trusted client networks that relay without AUTH, and the MX port's HELO and DNSBL checks by
// choice. The first shape (`enabled` + `listen`, one listener) still works: it becomes the listener
// named "submission" in front of `listeners`.
import { z } from 'zod';
import { parseListEntry } from '../../rules/lists.ts';
import { VERDICT_CLASSES } from '../../rules/policy.ts';
import { SUBMISSION_REFUSE_DEFAULT } from '../../rules/submission.ts';

/** Every class but clean may be refused for submitted mail. */
const REFUSABLE_CLASSES = VERDICT_CLASSES.filter((c) => c !== 'clean');

const positiveInt = z.number().int().positive();
const network = z.string().refine((e) => {
  const p = parseListEntry(e);
  return p.ok && (p.entry.type === 'ip' || p.entry.type === 'cidr');
}, 'expected an IP address or network (10.0.0.0/8, 2001:db8::/32)');

const listener = z
  .object({
    /** A name for logs, metrics and the bound-ports list. Default: "submission-<port>". */
    name: z
      .string()
      .regex(/^[a-z0-9_-]+$/i, 'expected letters, digits, - and _')
      .optional(),
    host: z.string().default('127.0.0.1'),
    /** 0 picks a free port (tests). */
    port: z.number().int().min(0).max(65535),
    /** starttls: plain TCP with STARTTLS (587, 2525); implicit: TLS from the first byte (465, RFC 8314 §3.3). */
    tls: z.enum(['starttls', 'implicit']).default('starttls'),
    /**
     * required: MAIL only after AUTH, or from relayNetworks; off: AUTH is not offered and only
     * relayNetworks may send (a relay port for customers' static addresses). AUTH is only ever
     * taken over TLS (Postfix smtpd_tls_auth_only).
     */
    auth: z.enum(['required', 'off']).default('required'),
    /** Client networks that may relay without AUTH (a customer's static IP). */
    relayNetworks: z.array(network).default([]),
    /** MAIL only over TLS, for AUTH and relayNetworks alike. false lets relayNetworks send in the clear. */
    requireTls: z.boolean().default(true),
    /** Failed AUTH attempts in one session before it is closed with 421 4.7.0. */
    maxAuthFailures: positiveInt.default(3),
    /** Recipients per message on this listener (452 4.5.3 past it). Default: smtp.maxRecipients. */
    maxRecipients: positiveInt.optional(),
    /** The MX port's HELO checks (checks.helo) on this listener: an infected PC says "HELO localhost". */
    heloChecks: z.boolean().default(false),
    /** The client DNSBLs of checks.dnsbl.lists (e.g. Spamhaus XBL) on this listener, refused with the list's text. */
    dnsbl: z.boolean().default(false),
    /**
     * Only these zones of checks.dnsbl.lists count on this listener (default: all of them). A
     * customer at home is on a policy list (Spamhaus PBL) by design: give the XBL zone here.
     */
    dnsblZones: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type SubmissionListenerInput = z.input<typeof listener>;
export type SubmissionListener = z.output<typeof listener> & { name: string };

const senders = z
  .object({
    /** address: the envelope sender must be one of the account's addresses; domain: any address of the account's domains. */
    ownership: z.enum(['address', 'domain']).default('address'),
    /** Also check the From header's addresses (at the end of DATA, 553 5.7.1). */
    checkFromHeader: z.boolean().default(false),
    /** A console superadmin may send as anyone (off by default: a stolen superadmin login is the worst one). */
    superadminAnySender: z.boolean().default(false),
  })
  .strict()
  .default({ ownership: 'address', checkFromHeader: false, superadminAnySender: false });

const backend = z
  .object({
    /** accounts: the console's accounts; dovecot: mailbox credentials through Dovecot's auth-client socket. */
    type: z.enum(['accounts', 'dovecot']).default('accounts'),
    /** dovecot: the auth-client unix socket (e.g. /run/dovecot/auth-client). */
    socket: z.string().optional(),
    /** dovecot: the service name Dovecot's passdb sees. */
    service: z.string().default('smtp'),
    /** A backend answer slower than this is a failure of the backend (454 4.7.0), never a pass. */
    timeoutMs: positiveInt.default(5_000),
    /** Successful logins are remembered this long (by a hash of the credentials); 0: no cache. */
    cacheTtlSec: z.number().int().min(0).default(60),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.type === 'dovecot' && !b.socket) ctx.addIssue({ code: 'custom', path: ['socket'], message: 'the dovecot backend needs the auth-client socket path' });
  })
  .default({ type: 'accounts', service: 'smtp', timeoutMs: 5_000, cacheTtlSec: 60 });

const nonNegativeInt = z.number().int().min(0);
const caps = z
  .object({
    /** Messages (transactions past MAIL) per rolling hour; 0: no limit. */
    messagesPerHour: nonNegativeInt.default(0),
    /** Messages per rolling day; 0: no limit. */
    messagesPerDay: nonNegativeInt.default(0),
    /** Recipients (accepted RCPTs) per rolling hour; 0: no limit. */
    recipientsPerHour: nonNegativeInt.default(0),
  })
  .strict()
  .prefault({});

/** Counted in Redis, so every node of a cluster counts together (rate-limiter-flexible). Over a limit: 450 4.7.1. */
const limits = z
  .object({
    /** Per account (a relay-network client counts as its network). */
    perAccount: caps,
    /** Per envelope sender domain, whichever account sends. */
    perDomain: caps,
  })
  .strict()
  .prefault({});

/** Failed AUTH across sessions and nodes: past a count in the window, the account or address is locked out. */
const authLockout = z
  .object({
    /** Failures per username within windowSec before the username is locked; 0: off. */
    maxFailuresPerAccount: nonNegativeInt.default(5),
    /** Failures per client address (IPv6: its /64) within windowSec before the address is locked; 0: off. */
    maxFailuresPerIp: nonNegativeInt.default(20),
    windowSec: positiveInt.default(900),
    /** The first lockout; each further one within a day doubles, up to maxLockoutSec. */
    lockoutSec: positiveInt.default(60),
    maxLockoutSec: positiveInt.default(3600),
  })
  .strict()
  .prefault({});

/** An account whose sending jumps far above its own baseline is flagged (rules/hijack.ts). */
const hijack = z
  .object({
    enabled: z.boolean().default(false),
    /** The rolling window counted (messages, distinct recipients). */
    windowSec: positiveInt.default(3600),
    /** How many windows before the current one make the baseline (24 × 1 h: the last day). */
    baselineWindows: positiveInt.max(168).default(24),
    /** Flagged above factor × baseline... */
    factor: z.number().min(1).default(10),
    /** ...and above this many messages (or distinct recipients) in the window. */
    minimum: positiveInt.default(100),
    /**
     * Also flagged when its outbound spam share rises: at least `spamShare` of its messages scanned
     * in the window were classed spam or high-spam, and at least `spamMinimum` of them. 0: off.
     */
    spamShare: z.number().min(0).max(1).default(0.5),
    spamMinimum: positiveInt.default(20),
    /** Suspend a flagged account (550 5.7.1 at MAIL) until an administrator lifts it (`mailmoat relay lift ACCOUNT`). */
    suspend: z.boolean().default(false),
    /** Mail the sender domain's administrator (domains.<d>.policy.adminAddress, else postmaster@<d>). */
    notifyAdmin: z.boolean().default(true),
  })
  .strict()
  .prefault({});

export const submissionSchema = z
  .object({
    /** The first shape: one STARTTLS listener at `listen` with AUTH required (kept; named "submission"). */
    enabled: z.boolean().default(false),
    listen: z
      .object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(587) })
      .strict()
      .default({ host: '127.0.0.1', port: 587 }),
    /** Failed AUTH attempts in one session before 421 4.7.0 (the first shape's listener). */
    maxAuthFailures: positiveInt.default(3),
    /** More listeners (587, 465, 2525, a relay port), each with its own rules. */
    listeners: z.array(listener).default([]),
    senders,
    /** Where AUTH credentials are checked. */
    backend,
    limits,
    authLockout,
    hijack,
    /**
     * Verdict classes refused in session (554 with the reason) for submitted mail, whatever the
     * recipients' policies say (rules/submission.ts): the sender is the one who can fix it. []
     * leaves submitted mail to the recipients' policies.
     */
    refuse: z.array(z.enum(REFUSABLE_CLASSES)).default([...SUBMISSION_REFUSE_DEFAULT]),
  })
  .strict()
  .transform((s) => {
    const first: SubmissionListener[] = s.enabled ? [{ ...listener.parse({ ...s.listen, maxAuthFailures: s.maxAuthFailures }), name: 'submission' }] : [];
    const named = s.listeners.map((l) => ({ ...l, name: l.name ?? `submission-${l.port}` }));
    return { ...s, listeners: [...first, ...named] as SubmissionListener[] };
  })
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.listeners.forEach((l, i) => {
      if (seen.has(l.name)) ctx.addIssue({ code: 'custom', path: ['listeners', i, 'name'], message: `two listeners are named ${l.name}` });
      seen.add(l.name);
      if (l.auth === 'off' && l.relayNetworks.length === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', i, 'relayNetworks'],
          message: 'a listener without AUTH needs relayNetworks (else nobody may send)',
        });
    });
  })
  .prefault({});
export type SubmissionConfig = z.output<typeof submissionSchema>;
