// The one schema for mailmoat's YAML config file. Every key has a default or is required, and a
// comment saying what it is for. Unknown keys are refused (a typo must not silently fall back to a
// default on a mail server). Relative paths are resolved against the config file's folder.
import { z } from 'zod';
import { parseListEntry } from '../../rules/lists.ts';
import { configListeners, portClashes } from './ports.ts';
import { checksSchema, domainChecksSchema, proxySchema, recipientsSchema, submissionSchema, tlsSchema } from './checks.ts';
import { contentPolicyKeys, domainPolicyKeys } from './policy.ts';
import { reportsSchema } from './reports.ts';
import { releaseRightsSchema } from './release-rights.ts';
import { consoleAuthSchema } from './console-auth.ts';

const port = z.number().int().min(1).max(65535);
const positiveInt = z.number().int().positive();
const hostname = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'expected a host name');
export const domainNameSchema = hostname.transform((d) => d.toLowerCase());
const domainName = domainNameSchema;

const listen = z
  .object({
    /** Address to bind. Use 0.0.0.0 / :: only on a real MX. */
    host: z.string().default('127.0.0.1'),
    /** 0 picks a free port (tests). */
    port: z.number().int().min(0).max(65535),
  })
  .strict();

const tlsMode = z.enum(['none', 'opportunistic', 'required', 'verified']);

/**
 * One next hop: a host (`host`, `port`) or the MX records of a name (`mx`, looked up through the
 * gateway's resolver). Hops are tried by `priority` (lower first, then in file order); a dead
 * host or a 4xx moves on to the next, and a 5xx too when the next one is marked `backup`.
 */
const nextHop = z
  .object({
    host: z.string().min(1).optional(),
    mx: hostname.optional(),
    port: port.default(25),
    priority: z.number().int().min(0).default(10),
    /** STARTTLS: none, opportunistic (default), required (any certificate), verified (valid certificate for the host name). */
    tls: tlsMode.default('opportunistic'),
    /**
     * Simultaneous connections from this gateway process to this host. Below the delivery slots
     * (queue.deliverConcurrency), so that one slow host cannot hold them all.
     */
    maxConnections: positiveInt.default(5),
    /** Messages per minute to this host (0: no limit). */
    maxPerMinute: z.number().int().min(0).default(0),
    /** A backup relay: it also takes what the hop before it refused with a 5xx (issue 18). */
    backup: z.boolean().optional(),
  })
  .strict()
  .refine((h) => (h.host === undefined) !== (h.mx === undefined), { message: 'set exactly one of host or mx' });

/** One hosted domain; also what the console, the API and `mailmoat domain` store (gateway/config/hosted-domains.ts). */
export const hostedDomainSchema = z
  .object({
    /** The domain's own mailbox servers, tried in order. */
    downstream: z.array(nextHop).min(1),
    /** Which recipients exist (any / list / verify by RCPT probe); see gateway/config/checks.ts. */
    recipients: recipientsSchema,
    /** Front-line checks for mail to this domain: any key here replaces the global `checks` value. */
    checks: domainChecksSchema.optional(),
    /** Content policy and first-match rules for mail to this domain (gateway/config/policy.ts). */
    ...domainPolicyKeys,
    /** Spam report addresses (reportspam@, notspam@): gateway/config/reports.ts, README "Reporting spam". */
    reports: reportsSchema.prefault({}),
    /** Who may release, download or preview each verdict class here: a patch over console.releaseRights (gateway/config/release-rights.ts). */
    releaseRights: releaseRightsSchema.optional(),
  })
  .strict();

/**
 * How to reach an engine (Redis, clamd, spamd): `managed: true` (mailmoat starts and supervises
 * a private instance under dataDir), or a unix socket, or host + port. Exactly one of them.
 */
function engineEndpoint<T extends z.ZodRawShape>(extra: T) {
  return z
    .object({
      managed: z.boolean().optional(),
      socket: z.string().optional(),
      host: z.string().optional(),
      port: port.optional(),
      ...extra,
    })
    .strict()
    .superRefine((e, ctx) => checkEndpoint(e as EngineEndpoint, ctx));
}

function checkEndpoint(e: EngineEndpoint, ctx: z.RefinementCtx): void {
  const ways = [e.managed === true, e.socket !== undefined, e.host !== undefined].filter(Boolean).length;
  if (ways !== 1) {
    ctx.addIssue({ code: 'custom', message: 'set exactly one of: managed: true, socket, or host (with port)' });
  }
  if (e.host !== undefined && e.port === undefined) {
    ctx.addIssue({ code: 'custom', path: ['port'], message: 'port is required with host' });
  }
}

/**
 * The hash tag of a Redis key prefix: Redis Cluster hashes only the part between the first "{"
 * and the next "}" when that part is not empty. undefined: no hash tag.
 */
export function hashTag(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  if (open < 0) return undefined;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

const redisSentinel = z
  .object({
    /** The master group name, as in the Sentinels' `sentinel monitor <name> <ip> <port> <quorum>`. */
    name: z.string().min(1),
    /** The Sentinels to ask for the current master: list them all (one that answers is enough). */
    sentinels: z.array(z.object({ host: z.string().min(1), port }).strict()).min(1),
    /** Password of the Redis master and its replicas (their requirepass). */
    password: z.string().optional(),
    /** Password of the Sentinels themselves, if they have one. */
    sentinelPassword: z.string().optional(),
  })
  .strict();

/**
 * Where the queues live. None of url, socket and sentinel: mailmoat runs its own Redis (one
 * machine). Several machines share one Redis: `url`, or `sentinel` for a Sentinel-managed
 * master, or `url` + `cluster: true` for a Redis Cluster. Whatever it is, it must run with
 * `maxmemory-policy noeviction` (checked at start: an evicted job is a lost message).
 */
const redis = z
  .object({
    /** redis://… or rediss://… of a shared Redis (with cluster: true, any one node of the cluster). */
    url: z.string().url().optional(),
    /** Unix socket of a local Redis that is not managed by mailmoat. */
    socket: z.string().optional(),
    /** A Redis master found through Sentinel (it follows a failover). */
    sentinel: redisSentinel.optional(),
    /**
     * true: `url` is one node of a Redis Cluster; the others are discovered from it. Needs a
     * prefix with a hash tag, e.g. "{mailmoat}", so that every mailmoat key lands in one slot.
     */
    cluster: z.boolean().default(false),
    /**
     * Prefix of every key mailmoat creates (queues, inline verdicts). Several gateways on one
     * Redis need different prefixes. A Redis Cluster needs a hash tag: "{mailmoat}".
     */
    prefix: z.string().min(1).default('mailmoat'),
  })
  .strict()
  .superRefine((r, ctx) => {
    const ways = (['url', 'socket', 'sentinel'] as const).filter((k) => r[k] !== undefined);
    if (ways.length > 1) {
      for (const k of ways.slice(1))
        ctx.addIssue({ code: 'custom', path: [k], message: `set only one of url, socket or sentinel (${ways.join(' and ')} are set)` });
    }
    if (r.cluster) {
      if (r.url === undefined) ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'cluster: true needs url (any one node of the cluster)' });
      else if (/^rediss?:\/\/[^/]*\/[1-9]/.test(r.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'a Redis Cluster has only database 0' });
      if (hashTag(r.prefix) === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['prefix'],
          message: `a Redis Cluster needs a hash tag in the prefix so that all keys land in one slot, e.g. "{${r.prefix.replace(/[{}]/g, '') || 'mailmoat'}}"`,
        });
      }
    }
  });

/**
 * Where the metadata (message log, quarantine index, lists, accounts) lives. Without a URL: a
 * SQLite file under dataDir (one machine). With a PostgreSQL URL (several machines): metadata,
 * quarantined bodies and the spool's shared copy of every accepted message live in PostgreSQL.
 */
const database = z
  .object({
    /** postgres://user:password@host:port/db — every node of a cluster uses the same one. */
    url: z
      .string()
      .url()
      .refine((u) => /^postgres(ql)?:\/\//.test(u), { message: 'expected a postgres:// URL' })
      .optional(),
    /** Connections per process to PostgreSQL. */
    poolSize: positiveInt.default(10),
    /**
     * How often every process looks whether hosted domains kept in the database (console, API,
     * `mailmoat domain`) changed; a change is live on every node within about this long.
     */
    domainsPollMs: positiveInt.default(2_000),
  })
  .strict();

const clamd = engineEndpoint({
  /** Give up on one scan after this long (the message is retried, never passed). */
  timeoutMs: positiveInt.default(60_000),
  /** Folder with ClamAV databases for a managed clamd; default: freshclam's, else test signatures. */
  databaseDir: z.string().optional(),
});

const spamd = engineEndpoint({
  /** false: no spam scanning at all; every status header says "spam not scanned (disabled)". */
  enabled: z.boolean().default(true),
  /**
   * A managed spamd's DNS and network tests (RBL, URIBL; Razor/Pyzor when installed), on as
   * SpamAssassin runs by default. false: spamd -L, for machines without DNS (the demo, the tests).
   * A spamd that is not managed is configured by its own admin (Debian: /etc/default/spamd).
   */
  networkTests: z.boolean().default(true),
  timeoutMs: positiveInt.default(30_000),
  /** Larger messages are not sent to spamd (like spamc's 500 KB default); the status header says so. */
  maxBytes: positiveInt.default(512_000),
});

const spam = z
  .object({
    /** At or above: delivered with the subject tag and X-Spam-Flag: YES. */
    threshold: z.number().default(5),
    /** At or above: quarantined. */
    highThreshold: z.number().default(10),
    subjectTag: z.string().default('{Spam?}'),
  })
  .strict()
  .refine((s) => s.highThreshold >= s.threshold, { message: 'highThreshold must be >= threshold' });

const smtp = z
  .object({
    listen: listen.default({ host: '127.0.0.1', port: 25 }),
    /** Largest message accepted, in bytes (552 5.3.4 above it). */
    maxMessageBytes: positiveInt.default(30 * 1024 * 1024),
    /** Recipients per message (452 4.5.3 above it). RFC 5321 §4.5.3.1.8 asks for at least 100. */
    maxRecipients: positiveInt.default(100),
    /** Simultaneous SMTP sessions (421 above it). */
    maxClients: positiveInt.default(500),
    /** Idle time before a session is dropped (421). RFC 5321 §4.5.3.2.7 asks for at least 5 minutes. */
    socketTimeoutMs: positiveInt.default(300_000),
    /**
     * Deadlines no pattern of bytes can stretch (the idle timeout above is reset by every byte, so
     * a client sending one byte a second would hold its session forever): rules/deadlines.ts. On
     * expiry the client gets 421 4.4.2 <hostname> Error: timeout exceeded, and the session ends.
     */
    deadlines: z
      .object({
        /** One complete command line, from our reply on (Postfix smtpd_timeout; RFC 5321 §4.5.3.2.7 asks for at least 5 minutes). */
        commandMs: positiveInt.default(300_000),
        /** The same while the listener is nearly full (Postfix under stress: 10 s), so slow clients cannot fill it. */
        commandUnderLoadMs: positiveInt.default(10_000),
        /** "Nearly full": this share of smtp.maxClients in use (1: never shortened). */
        underLoadAt: z.number().gt(0).max(1).default(0.8),
        /** DATA: each byte received buys 1/dataMinBytesPerSec s, up to commandMs ahead (Postfix smtpd_min_data_rate). */
        dataMinBytesPerSec: positiveInt.default(500),
        /** DATA: from 354 to the final dot, whatever the rate (30 MB needs about 50 KB/s). */
        dataMs: positiveInt.default(600_000),
        /** The whole session, checked between commands: a message in transfer may finish first. */
        sessionMs: positiveInt.default(1_800_000),
      })
      .strict()
      .prefault({}),
    /** Longest command line (421 above it). RFC 5321 allows 512 octets plus extension parameters; Postfix uses 2048. */
    maxCommandLength: positiveInt.min(512).default(2048),
    /** Refuse MAIL before STARTTLS (530 5.7.0). Never on a public MX (RFC 3207 §4); needs tls.certificates. */
    requireTls: z.boolean().default(false),
  })
  .strict();

const queue = z
  .object({
    scanConcurrency: positiveInt.default(4),
    /**
     * Deliveries at once in this process (both lanes). A delivery that waits for a per-host or
     * lane slot gives its place up instead of holding it (gateway/delivery/slots.ts).
     */
    deliverConcurrency: positiveInt.default(16),
    /**
     * How long a worker may hold a job before another worker takes it over (crash recovery). A
     * dead worker's job waits at most this plus a sixth of it (the stalled check, queue.ts).
     */
    lockDurationMs: positiveInt.default(30_000),
  })
  .strict();

const delivery = z
  .object({
    /** First retry after a temporary failure; doubles each time up to maxRetryDelayMs. */
    retryDelayMs: positiveInt.default(5 * 60_000),
    maxRetryDelayMs: positiveInt.default(4 * 3600_000),
    /** A message still undelivered after this long is returned to its sender (Postfix: 5 days). */
    maxLifetimeMs: positiveInt.default(5 * 86_400_000),
    /** The sender is told once that delivery is delayed after this long (0: never). */
    delayWarningMs: z
      .number()
      .int()
      .min(0)
      .default(4 * 3600_000),
    /**
     * The store failing right after a downstream's 250 (disk full, database restart): the result
     * is retried in-process this long, the job kept, before it waits in the delivery journal.
     */
    recordRetryMs: positiveInt.default(60_000),
    /** While the store refuses writes delivery pauses: a job checks the store again after this. */
    storePauseMs: positiveInt.default(15_000),
    connectTimeoutMs: positiveInt.default(30_000),
    /** A connection that sends nothing for this long is dropped (deferred); Postfix waits 300 s per command. */
    socketTimeoutMs: positiveInt.default(300_000),
    /**
     * One SMTP transaction (connect to QUIT) ends after this long whatever the peer does, so that
     * a peer sending one byte a second cannot hold a slot for ever (Postfix smtp_data_done_timeout: 600 s).
     */
    transactionTimeoutMs: positiveInt.default(600_000),
    /**
     * A downstream connection whose message was accepted waits this long for the next message to
     * the same host, which is sent after RSET (0: a new connection per message). Postfix
     * smtp_connection_cache_time_limit; gateway/delivery/connection-pool.ts.
     */
    reuseIdleMs: z.number().int().min(0).default(5_000),
    /** Messages per downstream connection, then QUIT (Postfix smtp_connection_reuse_count_limit). */
    reuseMaxMessages: positiveInt.default(100),
    /**
     * Of queue.deliverConcurrency, at most this many deliver to destinations we do not host
     * (bounces, relay, MX): dead or slow outside hosts can never take the hosted domains' share.
     * Capped at deliverConcurrency - 1, so that the hosted domains always keep a slot.
     */
    externalConcurrency: positiveInt.default(6),
    /** Connections at once to one outside mail host found by MX (Postfix: default_destination_concurrency_limit). */
    maxConnectionsPerDestination: positiveInt.default(3),
    /** More Received headers than this: the message loops; it is returned to its sender with 5.4.6 (Postfix hopcount_limit). */
    maxReceivedHeaders: positiveInt.default(50),
    /**
     * DSNs (bounces and delay notices) per sender domain per hour from this process, beyond
     * which they are suppressed and the message log says so (0: no limit). Backscatter control.
     */
    maxDsnPerDomainPerHour: z.number().int().min(0).default(60),
    /**
     * Where mail for domains we do not host goes (bounces to senders): these hops, else the
     * recipient domain's MX records through the gateway's resolver.
     */
    relay: z.array(nextHop).default([]),
    /**
     * MTA-STS (RFC 8461) for domains reached by MX: a destination publishing `enforce` gets mail
     * only at the MX hosts its policy names, over TLS verified for that name (else deferred 4.7.5).
     * gateway/delivery/mta-sts.ts, rules/mta-sts.ts.
     */
    mtaSts: z
      .object({
        enabled: z.boolean().default(true),
        /** The policy fetch (HTTPS) gives up after this; with no cached policy, the domain counts as having none. */
        timeoutMs: positiveInt.default(10_000),
        /** A failed fetch is not tried again for this long (a cached valid policy stays in force meanwhile). */
        failureRetrySec: positiveInt.default(3600),
        /** The policy host's HTTPS port: 443 (RFC 8461 §3.3). Another value is only for tests against a local HTTPS server. */
        policyPort: z.number().int().min(1).max(65535).default(443),
      })
      .strict()
      .prefault({}),
    /** RET=FULL bounces carry the whole original message only up to this size, else headers. */
    returnFullMaxBytes: positiveInt.default(256 * 1024),
  })
  .strict();

const scanRetry = z
  .object({
    /** A scan that fails (engine down or timing out) is retried after this, doubling. */
    retryDelayMs: positiveInt.default(30_000),
    maxRetryDelayMs: positiveInt.default(3600_000),
    maxAttempts: positiveInt.default(50),
    /**
     * CPU time budget of one message's HTML and text analysis, which runs in worker threads so
     * that it never blocks the event loop serving SMTP and holding job locks. Past it the worker
     * is ended and the message is unscannable ("analysis time limit"), never retried.
     */
    analysisTimeMs: positiveInt.default(20_000),
    /** Worker threads for that analysis (per worker process); default: the cores less one, 1 to 2 (analysis-pool.ts). */
    analysisThreads: positiveInt.max(64).optional(),
  })
  .strict();

const dns = z
  .object({
    /** Resolvers to ask ("ip" or "ip:port"). Every DNS lookup of the gateway goes through them. */
    servers: z.array(z.string().min(1)).min(1).default(['127.0.0.1']),
    timeoutMs: positiveInt.default(5_000),
    /** Tries per server within timeoutMs (UDP retransmissions). */
    tries: positiveInt.max(5).default(2),
  })
  .strict();

const demo = z
  .object({
    /** The built-in demo downstream mailbox server (npm start only). */
    mailbox: z.object({ listen, dir: z.string() }).strict(),
  })
  .strict();

const consoleSection = z
  .object({
    /** false: `mailmoat start` runs no console (the `console` role still can be run alone). */
    enabled: z.boolean().default(true),
    /** Where the console's HTTP server listens. Keep it on loopback behind a TLS proxy in production. */
    listen: listen.default({ host: '127.0.0.1', port: 8080 }),
    /**
     * The URL people use to reach the console (digest links point here). https:// turns on
     * Secure "__Host-" cookies and HSTS. Default: http://<listen.host>:<listen.port>/.
     */
    publicUrl: z.string().url().optional(),
    /** The console's secret key (sessions, digest links); created on first start. Relative to dataDir. */
    keyFile: z.string().default('console.key'),
    /** Believe X-Forwarded-For/-Proto from a reverse proxy (true, or a list of proxy addresses). */
    trustProxy: z.union([z.boolean(), z.array(z.string())]).default(false),
    /** A login lasts this long, then the user logs in again. */
    sessionTtlMinutes: positiveInt.default(480),
    /**
     * Roles whose local accounts must use a second factor (TOTP, RFC 6238), e.g. [superadmin]: such
     * a user without it is sent to set it up right after the password and can do nothing else until
     * done. Anyone may turn it on for themselves on their account page.
     */
    requireTotpFor: z.array(z.enum(['superadmin', 'domainadmin', 'user'])).default([]),
    /** Who may release, download or preview each verdict class (gateway/config/release-rights.ts); per domain: domains.<d>.releaseRights. */
    releaseRights: releaseRightsSchema.default({}),
    login: z
      .object({
        /** Login attempts per client IP per window (HTTP 429 above it). */
        maxPerIp: positiveInt.default(10),
        /**
         * Failed logins per username and client address per window before that address is refused
         * for the username (with a doubling back-off before); other addresses can still log in.
         */
        maxFailuresPerUser: positiveInt.default(10),
        windowMinutes: positiveInt.default(15),
      })
      .strict()
      .default({ maxPerIp: 10, maxFailuresPerUser: 10, windowMinutes: 15 }),
    upload: z
      .object({
        /** Largest message file accepted by the report-spam upload (or paste). */
        maxFileBytes: positiveInt.default(5 * 1024 * 1024),
        /** Files per upload. */
        maxFiles: positiveInt.default(20),
      })
      .strict()
      .default({ maxFileBytes: 5 * 1024 * 1024, maxFiles: 20 }),
    /** Larger quarantined messages show headers and the scan report only (no parsed preview). */
    previewMaxBytes: positiveInt.default(10 * 1024 * 1024),
    /** Client addresses/networks that may read /metrics and /healthz. */
    monitoringAllow: z
      .array(
        z.string().refine((e) => {
          const p = parseListEntry(e);
          return p.ok && (p.entry.type === 'ip' || p.entry.type === 'cidr');
        }, 'expected an IP address or network (CIDR)'),
      )
      .default(['127.0.0.0/8', '::1']),
    digest: z
      .object({
        /** Send quarantine digests and notices (to whom and how often: policy.digest, per domain). */
        enabled: z.boolean().default(true),
        /** Hour of the day (UTC) at which the digests go out. */
        hourUtc: z.number().int().min(0).max(23).default(7),
        /** How long a release link in a digest works (it also works only once). */
        linkTtlHours: positiveInt.default(72),
        /** Sender address of the digests. Default: quarantine@<hostname>. */
        from: z.string().email().optional(),
        /**
         * Notice mode (policy.digest: notice): holds of one recipient are gathered this long after
         * the first, then sent as one notice; with noticeCheckMs the notice leaves within a minute.
         */
        noticeBatchMs: positiveInt.default(30_000),
        /** How often each console looks for held mail to notify (one console per interval sends: digest_runs). */
        noticeCheckMs: positiveInt.default(15_000),
      })
      .strict()
      .default({ enabled: true, hourUtc: 7, linkTtlHours: 72, noticeBatchMs: 30_000, noticeCheckMs: 15_000 }),
    /**
     * A mail each day to each domain admin (their domains' numbers of the day before) and each
     * superadmin (every domain), sent by one console of the cluster (quarantine-ui/lib/daily-summary.ts).
     * It goes to accounts whose username is a mail address.
     */
    dailySummary: z
      .object({
        enabled: z.boolean().default(true),
        /** Hour of the day (UTC) after which the summary of the day before goes out. */
        hourUtc: z.number().int().min(0).max(23).default(6),
      })
      .strict()
      .default({ enabled: true, hourUtc: 6 }),
    /** Logins from LDAP/AD and OpenID Connect, and their group → role mapping (console-auth.ts). */
    auth: consoleAuthSchema.default({ roleMapping: [] }),
  })
  .strict();

/**
 * Health endpoints for a load balancer (gateway/health.ts): GET /healthz and /readyz, plain HTTP
 * without login (bind them where only the balancer and monitoring reach them). One listener per
 * process: when several roles of one machine share its config file, give each its own port with
 * the per-role keys.
 */
const health = z
  .object({
    /** Where this process answers, whatever its role, unless its role has a key below. Absent: none. */
    listen: listen.optional(),
    /** Where `mailmoat smtp` (and `mailmoat start`) answers: what the balancer probes. */
    smtp: listen.optional(),
    /** Where `mailmoat worker` answers (for monitoring: a worker takes no connections). */
    worker: listen.optional(),
    /** Where `mailmoat console` answers (it also has /healthz on its own listener). */
    console: listen.optional(),
    /**
     * On shutdown /readyz answers 503 this long before the SMTP listener closes, so that the
     * balancer stops sending connections first (HAProxy: at least `inter` × `fall`).
     */
    drainDelayMs: z.number().int().min(0).default(5_000),
  })
  .strict();

/**
 * How long quarantined messages and the message log are kept (gateway/retention.ts), like
 * MailScanner's quarantine clean-up and MailWatch's log pruning. 0 days: kept forever.
 */
const retention = z
  .object({
    /**
     * Days a quarantined message stays; then it is deleted (status deleted, body removed). Also
     * how long the copy kept of a released, failed or reported message stays.
     */
    quarantineDays: z.number().int().min(0).default(30),
    /**
     * Days the message log stays (messages in a final state with their events and deliveries,
     * and SMTP refusals). At least quarantineDays: the log row is what the console shows for a
     * quarantined message.
     */
    logDays: z.number().int().min(0).default(90),
    /** How often each worker process looks for what has expired. */
    checkEveryMinutes: positiveInt.default(60),
  })
  .strict()
  .superRefine((r, ctx) => {
    const days = (d: number) => (d === 0 ? Infinity : d);
    if (days(r.logDays) < days(r.quarantineDays)) {
      ctx.addIssue({
        code: 'custom',
        path: ['logDays'],
        message: `must be at least quarantineDays (${r.quarantineDays === 0 ? '0: forever' : r.quarantineDays}): a quarantined message needs its log row`,
      });
    }
  });

export const configSchema = z
  .object({
    /** Our name in the SMTP greeting, Received headers and X-Mailmoat headers. */
    hostname,
    /** Spool, quarantine, database and managed daemons live here. */
    dataDir: z.string().min(1),
    smtp: smtp.default(smtp.parse({})),
    /** Hosted domains: only mail to these is accepted; everything else is a relay attempt. */
    domains: z.record(domainName, hostedDomainSchema).refine((d) => Object.keys(d).length > 0, {
      message: 'at least one hosted domain is required',
    }),
    database: database.default({ poolSize: 10, domainsPollMs: 2_000 }),
    redis: redis.default({ cluster: false, prefix: 'mailmoat' }),
    clamd: clamd.default({ managed: true, timeoutMs: 60_000 }),
    spamd: spamd.default({ managed: true, enabled: true, networkTests: true, timeoutMs: 30_000, maxBytes: 512_000 }),
    spam: spam.default({ threshold: 5, highThreshold: 10, subjectTag: '{Spam?}' }),
    queue: queue.default(queue.parse({})),
    delivery: delivery.default(delivery.parse({})),
    scan: scanRetry.default(scanRetry.parse({})),
    dns: dns.default(dns.parse({})),
    /** Front-line checks at SMTP time (gateway/config/checks.ts): HELO, rDNS, DNSBL, SPF, limits, protocol, trust. */
    checks: checksSchema.default(checksSchema.parse({})),
    /** Certificates for STARTTLS (both listeners). */
    tls: tlsSchema,
    /** PROXY protocol v1 from load balancers (both listeners). */
    proxy: proxySchema,
    /** The authenticated submission listener. */
    submission: submissionSchema,
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        /** json: one object a line (log shippers); text: one grep-able line an entry. Unset: text on a terminal or under journald, else json (gateway/log.ts). */
        format: z.enum(['json', 'text']).optional(),
      })
      .strict()
      .default({ level: 'info' }),
    /** The quarantine web console (quarantine-ui/). */
    console: consoleSection.default(consoleSection.parse({})),
    /** Health endpoints for a load balancer (gateway/health.ts). */
    health: health.default({ drainDelayMs: 5_000 }),
    /** How long quarantined messages and the message log are kept (gateway/retention.ts). */
    retention: retention.default({ quarantineDays: 30, logDays: 90, checkEveryMinutes: 60 }),
    /** Content policy, rules, URL checks, authentication, inline verdicts, MIME bounds (gateway/config/policy.ts). */
    ...contentPolicyKeys,
    demo: demo.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const noCerts = c.tls.certificates.length === 0;
    if (noCerts && c.submission.enabled)
      ctx.addIssue({ code: 'custom', path: ['submission', 'enabled'], message: 'the submission listener needs tls.certificates (AUTH only after STARTTLS)' });
    if (noCerts && !c.submission.enabled) {
      c.submission.listeners.forEach((l, i) => {
        if (l.tls === 'implicit' || l.auth === 'required' || l.requireTls)
          ctx.addIssue({
            code: 'custom',
            path: ['submission', 'listeners', i, 'tls'],
            message: 'this listener needs tls.certificates (implicit TLS, AUTH and requireTls all need them)',
          });
      });
    }
    if (noCerts && c.smtp.requireTls) ctx.addIssue({ code: 'custom', path: ['smtp', 'requireTls'], message: 'requireTls needs tls.certificates' });
    for (const clash of portClashes(configListeners(c))) ctx.addIssue({ code: 'custom', path: clash.key.split('.'), message: clash.message });
  });

export type Config = z.infer<typeof configSchema>;
export type HostedDomain = z.infer<typeof hostedDomainSchema>;
export type NextHop = z.infer<typeof nextHop>;
export type TlsMode = z.infer<typeof tlsMode>;
export type EngineEndpoint = { managed?: boolean; socket?: string; host?: string; port?: number };
