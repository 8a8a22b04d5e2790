// Starting the console: opens its stores on the process's metadata database, creates the first
// superadmin on first start, builds the Fastify app, listens, and runs the digests and notices.
// gateway/roles.ts (runConsole) calls this with the concrete adapters.
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { monotonicFactory } from 'ulid';
import type { Config } from '../gateway/config/schema.ts';
import type { Logger } from '../gateway/log.ts';
import { hashPassword, randomPassword } from '../gateway/passwords.ts';
import type { Spool } from '../gateway/spool/spool.ts';
import { openAccountStore } from '../gateway/store/accounts.ts';
import { openAuditStore } from '../gateway/store/audit.ts';
import type { BlobStore } from '../gateway/store/blobs.ts';
import { openDigestStore } from '../gateway/store/digests.ts';
import { openLearnLog } from '../gateway/store/learnlog.ts';
import { openListStore } from '../gateway/store/lists.ts';
import { openReleaseRequestStore } from '../gateway/store/release-requests.ts';
import type { MetadataStore } from '../gateway/store/metadata.ts';
import type { JobQueue } from '../gateway/store/queue.ts';
import { q, type Sql } from '../gateway/store/sql.ts';
import { consolePublicUrl } from './ctx.ts';
import { buildConsole } from './app.ts';
import type { ConsoleDeps } from './deps.ts';
import { deletePoison, releasePoison } from '../gateway/poison.ts';
import { sendDigests, startDigestScheduler, type DigestDeps } from './lib/digest.ts';
import { loadOrCreateSecret } from './lib/keys.ts';
import { sendGenerated, type GeneratedMail, type Submit } from './lib/mail-out.ts';
import { smtpConnectionTest } from '../gateway/delivery/smtp-test.ts';
import { openLedger } from '../gateway/ledger/ledger.ts';
import type { Writable } from 'node:stream';
import { openDomainStore } from '../gateway/store/domains.ts';
import { openApiTokenStore } from '../gateway/store/api-tokens.ts';
import { openTotpStore } from '../gateway/store/totp.ts';
import type { DomainSync } from '../gateway/domains/sync.ts';
import { openStatsStore } from '../gateway/store/stats.ts';
import { flushDeferred, retryNow } from '../gateway/delivery/queue-ops.ts';
import { runDailySummary, startDailySummaryScheduler, type DailySummaryDeps } from './lib/daily-summary.ts';

export interface ConsoleAdapters {
  config: Config;
  logger: Logger;
  spool: Spool;
  /** The process's connection to the metadata database (opened and closed by the role, not here). */
  sql: Sql;
  store: MetadataStore;
  quarantine: BlobStore;
  queue: JobQueue;
  release: ConsoleDeps['release'];
  remove: ConsoleDeps['remove'];
  spamd: ConsoleDeps['spamd'];
  /** The learned filter: learn buttons teach it, the Learner page snapshots and rolls it back. */
  learner?: ConsoleDeps['learner'];
  /** Engine checks for /healthz besides the database and the spool disk (redis, clamd, spamd). */
  engineChecks: Record<string, () => Promise<string>>;
  /** The checks whose failure makes /healthz answer 503 (gateway/engine-checks.ts CRITICAL); absent: all. */
  healthCritical?: readonly string[];
  /** The process's sync of database domains into its live config (gateway/domains/sync.ts); absent: changes apply at the next start. */
  domainSync?: DomainSync;
}

export interface RunningConsole {
  deps: ConsoleDeps;
  url: string;
  port: number;
  /** Set on the very first start: the generated superadmin login (to be shown once, never logged). */
  firstAdmin?: { username: string; password: string };
  /** Sends the digests now (the `mailmoat digest` command and tests). */
  sendDigests: () => Promise<{ sent: number; recipients: string[] }>;
  /** Sends one mail from the console (text, optionally HTML) through the generated-message path (lib/mail-out.ts). */
  sendMail: (m: GeneratedMail) => Promise<string>;
  /** One tick of the daily summary scheduler (claim the day before, then send), at `now` if given (tests). */
  runDailySummary: (now?: number) => Promise<{ sent: number; recipients: string[] } | null>;
  close(): Promise<void>;
}

export const FIRST_ADMIN = 'admin';

export async function startConsole(a: ConsoleAdapters, o: { listen?: boolean } = {}): Promise<RunningConsole> {
  const { config, logger } = a;
  const accounts = openAccountStore(a.sql);
  const digests = openDigestStore(a.sql);
  const secret = loadOrCreateSecret(path.resolve(config.dataDir, config.console.keyFile));
  let firstAdmin: RunningConsole['firstAdmin'];
  if ((await accounts.count()) === 0) {
    const password = randomPassword();
    try {
      await accounts.create({ username: FIRST_ADMIN, role: 'superadmin', passwordHash: await hashPassword(password) });
      firstAdmin = { username: FIRST_ADMIN, password };
    } catch {
      // another console process created it at the same moment: its start prints the password
    }
  }
  const newId = monotonicFactory();
  const submit: Submit = (envelope, raw, subject) => submitGenerated(a, newId(), envelope, raw, subject);
  const sendMail = (m: GeneratedMail) => sendGenerated({ config, submit }, m);
  const deps: ConsoleDeps = {
    config,
    logger,
    store: a.store,
    quarantine: a.quarantine,
    accounts,
    audit: openAuditStore(a.sql),
    lists: openListStore(a.sql),
    learnLog: openLearnLog(a.sql),
    digests,
    requests: openReleaseRequestStore(a.sql),
    async notify(to, subject, text) {
      await sendMail({ to, subject, text });
    },
    secret,
    release: a.release,
    remove: a.remove,
    spamd: a.spamd,
    poison: {
      release: (id, by) => releasePoison({ store: a.store, queue: a.queue, logger }, id, by),
      remove: (id, by) => deletePoison({ store: a.store, queue: a.queue, spool: a.spool, logger }, id, by),
    },
    ...(a.learner ? { learner: a.learner } : {}),
    queueCounts: () => a.queue.counts(),
    healthChecks: {
      database: async () => {
        await a.sql.one(q`SELECT 1`);
        await a.store.get('healthz');
        return 'ok';
      },
      spool: async () => {
        const s = await statfs(a.spool.dir);
        const free = s.bavail * s.bsize;
        const needed = 2 * config.smtp.maxMessageBytes;
        if (free < needed) throw new Error(`only ${free} bytes free in the spool, less than ${needed}`);
        return `${Math.round(free / 1024 / 1024)} MB free`;
      },
      ...a.engineChecks,
    },
    healthCritical: a.healthCritical,
    smtpTest: smtpConnectionTest,
    now: Date.now,
    hostedDomains: {
      store: openDomainStore(a.sql),
      fileDomains: () => a.domainSync?.fileDomains() ?? config.domains,
      refresh: async () => a.domainSync?.refresh(),
    },
    tokens: openApiTokenStore(a.sql),
    stats: openStatsStore(a.sql),
    queueOps: {
      retry: (id) => retryNow({ store: a.store, queue: a.queue }, id),
      flush: (o) => flushDeferred({ store: a.store, queue: a.queue }, o),
    },
    totp: openTotpStore(a.sql),
  };
  const app = await buildConsole(deps);
  const digestDeps: DigestDeps = {
    config,
    store: a.store,
    accounts,
    digests,
    secret,
    publicUrl: consolePublicUrl(config),
    logger: logger.child({ role: 'digest' }),
    now: Date.now,
    submit,
  };
  const scheduler = config.console.digest.enabled ? startDigestScheduler(digestDeps) : undefined;
  const summaryDeps: DailySummaryDeps = { ...digestDeps, stats: deps.stats!, logger: logger.child({ role: 'daily-summary' }) };
  const summaries = config.console.dailySummary.enabled ? startDailySummaryScheduler(summaryDeps) : undefined;
  let port = config.console.listen.port;
  if (o.listen !== false) {
    await app.listen({ host: config.console.listen.host, port });
    const address = app.server.address();
    port = typeof address === 'object' && address ? address.port : port;
    logger.info({ host: config.console.listen.host, port }, 'console listening');
    // Without a configured public URL, links point at the port actually bound (port 0 in tests).
    if (!config.console.publicUrl)
      summaryDeps.publicUrl = digestDeps.publicUrl = consolePublicUrl({
        ...config,
        console: { ...config.console, listen: { ...config.console.listen, port } },
      });
  }
  return {
    deps,
    url: digestDeps.publicUrl,
    port,
    firstAdmin,
    sendDigests: () => sendDigests(digestDeps),
    sendMail,
    runDailySummary: (now) => runDailySummary(now === undefined ? summaryDeps : { ...summaryDeps, now: () => now }),
    async close() {
      scheduler?.stop();
      summaries?.stop();
      // The database connection belongs to the role that opened the stores; it closes it.
      await app.close();
    },
  };
}

/**
 * A message mailmoat writes itself (a digest) goes the way a released message goes: into the
 * spool with its envelope, then onto the delivery queue, so it is retried and shows in the log.
 */
async function submitGenerated(a: ConsoleAdapters, id: string, envelope: { from: string; to: string[] }, raw: Buffer, subject: string): Promise<string> {
  const e = {
    id,
    receivedAt: Date.now(),
    clientIp: '127.0.0.1',
    clientHostname: null,
    helo: a.config.hostname,
    mailFrom: envelope.from,
    rcptTo: envelope.to,
    size: raw.length,
    tls: false,
  };
  const produce = async (out: Writable) => {
    out.write(raw);
  };
  await openLedger(a).submitGenerated(e, produce, undefined, `generated by mailmoat: ${subject}`);
  return id;
}
