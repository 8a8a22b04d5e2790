// Composition roots: the only place that picks concrete adapters. `start` runs everything on one
// machine (engines it manages, SMTP front, workers, console, demo mailbox); `smtp`, `worker` and
// `console` run one role.
import { createLearner } from './learner/learner.ts';
import { openLearnerStore } from './store/learner-store.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monotonicFactory } from 'ulid';
import { messageIds } from './smtp/message-ids.ts';
import type { Config } from './config/schema.ts';
import type { Stores } from './deps.ts';
import { configuredEngine, configuredRedis, managedEngineDir, managedSpamdAddress, type Endpoints } from './endpoints.ts';
import type { Logger } from './log.ts';
import { Spool, type Envelope } from './spool/spool.ts';
import type { SummaryRecord } from './summary.ts';
import { fileBlobStore, sqlBlobStore } from './store/blobs.ts';
import { openMetadataStore } from './store/metadata.ts';
import { openStatsStore } from './store/stats.ts';
import { openStatsCounter } from './stats.ts';
import { describeTarget, openSql, type DatabaseTarget } from './store/sql.ts';
import { DatabaseError, prepareSchema } from './store/migrations.ts';
import { sqlSpoolReplica } from './spool/replica.ts';
import { openJobQueue, openRedis, startWorkers, type JobQueue, type RedisTarget, type WorkerSet } from './store/queue.ts';
import { createSmtpFront, type SmtpFront } from './smtp/server.ts';
import { submissionAuthenticator } from './smtp/auth.ts';
import { redisOutboundLimits, type OutboundLimits } from './smtp/outbound-limits.ts';
import { watchOutboundSpam, withHijackWatch } from './smtp/hijack.ts';
import { openAccountStore } from './store/accounts.ts';
import { handleScanJob, type Scanners } from './pipeline/scan.ts';
import { createAnalysisPool, defaultAnalysisThreads } from './pipeline/analysis-pool.ts';
import { registrableDomain } from './pipeline/analyse.ts';
import { redisInlineVerdicts, refuseIfInlineVerdict, type InlineVerdicts } from './pipeline/inline.ts';
import { sendNotice } from './pipeline/notify.ts';
import type { InlineVerdictGate, NoticeSender } from './smtp/ports.ts';
import { createUrlChecker } from './pipeline/urls.ts';
import { openListStore } from './store/lists.ts';
import { openLearnLog } from './store/learnlog.ts';
import { attemptFirstHere, handleDeliverJob, type DeliveryDeps } from './delivery/deliver.ts';
import { DeliveryRecorder } from './delivery/recorded.ts';
import { DeliverySlots } from './delivery/slots.ts';
import { ConnectionPool } from './delivery/connection-pool.ts';
import { DsnRateWindow } from './delivery/notify.ts';
import { createResolver } from './dns/resolver.ts';
import type { DnsResolver } from '../core/dns.ts';
import { reconcileSpool } from './pipeline/reconcile.ts';
import { holdAsPoison, recordFault } from './poison.ts';
import { testFaultHook } from './test-faults.ts';
import { startRetention } from './retention.ts';
import { ClamdClient } from '../scanners/clamd.ts';
import { SpamdClient, scanSpam } from '../scanners/spamd.ts';
import { deleteMessage, releaseMessage } from './quarantine.ts';
import { CRITICAL, engineChecks } from './engine-checks.ts';
import type { RunningConsole } from '../quarantine-ui/server.ts';
import type { LiveConfig } from './config/live.ts';
import { startDomainSync, type DomainSync } from './domains/sync.ts';
import { openDomainStore } from './store/domains.ts';
import { chooseClamavDatabase, startManagedClamd, startManagedRedis, startManagedSpamd, type ManagedService } from './services/managed.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
/** BullMQ needs an attempt count; far more than a 5-day lifetime at the maximal backoff needs. */
const DELIVERY_ATTEMPTS_CEILING = 100_000;

export type { Stores } from './deps.ts';

/** Where the metadata lives: PostgreSQL when the config names one (several machines), else SQLite under dataDir. */
export function databaseTarget(config: Config): DatabaseTarget {
  return config.database.url ? { postgres: config.database.url, poolSize: config.database.poolSize } : { sqlite: path.join(config.dataDir, 'mailmoat.sqlite') };
}

/**
 * One machine: metadata in SQLite, spool and quarantined bodies in files under dataDir. Several
 * machines (database.url): metadata and quarantined bodies in PostgreSQL, and every accepted
 * message copied there before its 250 (the local spool is then a working copy; gateway/spool/).
 */
export async function openStores(config: Config, logger?: Logger): Promise<Stores> {
  const target = databaseTarget(config);
  const sql = await openSql(target);
  try {
    await prepareSchema(sql);
  } catch (err) {
    await sql.close();
    if (err instanceof DatabaseError) throw err;
    throw new DatabaseError(`cannot use the database ${describeTarget(target)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const shared = sql.dialect === 'postgres';
  const spool = new Spool(path.join(config.dataDir, 'spool'), shared ? { replica: sqlSpoolReplica(sql) } : {});
  await spool.init();
  const store = openMetadataStore(sql);
  // The counts still in memory are written before the shared connection closes (store.close()).
  const stats = openStatsCounter({ store: openStatsStore(sql), hostedDomains: () => config.domains, logger });
  return {
    sql,
    spool,
    store: { ...store, close: () => stats.close().finally(() => store.close()) },
    quarantine: shared ? sqlBlobStore(sql) : fileBlobStore(path.join(config.dataDir, 'quarantine')),
    stats,
  };
}

/** Starts the engines the config marks as managed; the others are used where configured. */
export async function startEngines(config: Config, logger: Logger): Promise<{ endpoints: Endpoints; stop(): Promise<void> }> {
  const engineDir = (name: 'redis' | 'clamd' | 'spamd') => managedEngineDir(config, name);
  const started: ManagedService[] = [];
  const [redis, clamd, spamd] = await Promise.all([
    configuredRedis(config)
      ? Promise.resolve(configuredRedis(config)!)
      : startManagedRedis({ dir: engineDir('redis'), logger }).then((s) => (started.push(s), { socketPath: s.socketPath })),
    configuredEngine(config.clamd) ??
      startManagedClamd({
        dir: engineDir('clamd'),
        databaseDir: config.clamd.databaseDir ?? chooseClamavDatabase({ logger, fallbackDir: path.join(REPO_ROOT, 'deploy/clamav-test-db') }),
        logger,
      }).then((s) => (started.push(s), { socketPath: s.socketPath })),
    configuredEngine(config.spamd) ??
      (config.spamd.enabled ? startManagedSpamdFor(config, logger).then((s) => (started.push(s), managedSpamdAddress(config))) : managedSpamdAddress(config)),
  ]).catch(async (err: unknown) => {
    await Promise.all(started.map((s) => s.stop()));
    throw err;
  });
  return {
    endpoints: { redis, clamd, spamd },
    async stop() {
      await Promise.all(started.map((s) => s.stop()));
    },
  };
}

/** The managed spamd where managedSpamdAddress says (spamd.enabled false: none is started at all). */
function startManagedSpamdFor(config: Config, logger: Logger): Promise<ManagedService> {
  const common = { dir: managedEngineDir(config, 'spamd'), logger, allowTell: true, networkTests: config.spamd.networkTests };
  const address = managedSpamdAddress(config);
  return 'port' in address ? startManagedSpamd({ ...common, port: address.port }) : startManagedSpamd(common);
}

export function openQueue(config: Config, redis: RedisTarget): JobQueue {
  const queue = openJobQueue(redis, {
    prefix: config.redis.prefix,
    // Deliveries end by queue lifetime (rules/retry.ts decideDeferral), not by an attempt count.
    attempts: { scan: config.scan.maxAttempts, deliver: DELIVERY_ATTEMPTS_CEILING },
  });
  // Inline verdicts (gateway/pipeline/inline.ts) share the queue's Redis; opened on first use,
  // closed with the queue.
  let inline: InlineVerdicts | undefined;
  // Issue 18: the outbound sending limits count in the same Redis (opened on first use).
  let limitsRedis: ReturnType<typeof openRedis> | undefined;
  const wrapped: JobQueue = Object.assign({}, queue, {
    close: async () => {
      await queue.close();
      await inline?.close();
      limitsRedis?.disconnect();
    },
  });
  inlineChannels.set(wrapped, (logger) => (inline ??= redisInlineVerdicts(redis, { prefix: config.redis.prefix, logger })));
  limitChannels.set(wrapped, (logger) => {
    if (limitsRedis) return limitsRedis;
    limitsRedis = openRedis(redis, 'client');
    limitsRedis.on('error', (err) => logger.debug({ err }, 'sending limits: redis error'));
    return limitsRedis;
  });
  return wrapped;
}

const inlineChannels = new WeakMap<JobQueue, (logger: Logger) => InlineVerdicts>();
const limitChannels = new WeakMap<JobQueue, (logger: Logger) => ReturnType<typeof openRedis>>();

/** Issue 18: the sending limits and hijack watch of the submission listeners, counted in the queue's Redis. */
function outboundLimits(config: Config, stores: Stores, queue: JobQueue, logger: Logger, newId: () => string): OutboundLimits | undefined {
  const redis = limitChannels.get(queue)?.(logger);
  if (!redis) return undefined;
  const o = { prefix: config.redis.prefix, logger };
  const limits = redisOutboundLimits(redis, config.submission, o);
  return withHijackWatch(limits, redis, config.submission.hijack, { ...o, config, sendNotice: adminNotices(config, stores, queue, logger, newId) });
}
/** Issue 18: the scan side of hijack detection (a rising outbound spam share), in the queue's Redis. */
function outboundSpamWatch(config: Config, stores: Stores, queue: JobQueue, logger: Logger) {
  const cfg = config.submission.hijack;
  if (!cfg.enabled || config.submission.listeners.length === 0) return undefined;
  const redis = limitChannels.get(queue)?.(logger);
  if (!redis) return undefined;
  const newId = monotonicFactory();
  return watchOutboundSpam(redis, cfg, { prefix: config.redis.prefix, logger, config, sendNotice: adminNotices(config, stores, queue, logger, () => newId()) });
}
/** Issue 18: the hijack watch's mails to administrators, committed by the pipeline's notifier (gateway/smtp/ports.ts NoticeSender). */
function adminNotices(config: Config, stores: Stores, queue: JobQueue, logger: Logger, newId: () => string): NoticeSender {
  const deps = { config, spool: stores.spool, store: stores.store, queue, logger };
  return (notice) => sendNotice(deps, newId(), notice);
}
/** The inline-verdict channel on a queue's Redis (undefined for a queue not opened by openQueue). */
export function inlineVerdicts(queue: JobQueue, logger: Logger): InlineVerdicts | undefined {
  return inlineChannels.get(queue)?.(logger);
}

/** Issue 5: the SMTP front's InlineVerdictGate (gateway/smtp/ports.ts) on the queue's inline channel. */
function inlineVerdictGate(queue: JobQueue, logger: Logger): InlineVerdictGate {
  const inline = inlineVerdicts(queue, logger);
  return (config, envelope) => refuseIfInlineVerdict({ config, logger, inline }, envelope);
}

export function makeScanners(config: Config, endpoints: Endpoints): Scanners {
  const clamd = new ClamdClient(endpoints.clamd, { timeoutMs: config.clamd.timeoutMs });
  const spamd = new SpamdClient(endpoints.spamd, { timeoutMs: config.spamd.timeoutMs });
  return {
    virus: (input) => clamd.scan(input),
    spam: (message) => scanSpam(spamd, message, { maxBytes: config.spamd.maxBytes }),
    mailauth: makeResolver(config).forMailauth(),
    urls: createUrlChecker({ config: config.urls, resolver: makeResolver(config), registrableDomain }),
    // HTML parsing off the event loop that serves SMTP and renews job locks, with a time budget.
    analysis: createAnalysisPool({ threads: config.scan.analysisThreads ?? defaultAnalysisThreads(), timeMs: config.scan.analysisTimeMs }),
  };
}

export async function runSmtp(config: Config, stores: Stores, queue: JobQueue, logger: Logger): Promise<SmtpFront & { port: number }> {
  // A body left in incoming/ by a crash mid-DATA was never acknowledged: the client will resend it.
  const discarded = await stores.spool.discardIncomplete();
  if (discarded > 0) logger.warn({ discarded }, 'discarded incomplete messages from an earlier crash');
  const newId = messageIds();
  // Submission AUTH: the console's accounts (in the same database as the metadata) or Dovecot.
  const auth = config.submission.listeners.length > 0 ? submissionAuthenticator(config.submission.backend, () => openAccountStore(stores.sql)) : undefined;
  const smtpLogger = logger.child({ role: 'smtp' });
  const front = createSmtpFront({
    config,
    ...stores,
    queue,
    logger: smtpLogger,
    newId: () => newId(),
    resolver: makeResolver(config),
    ...(auth ? { auth } : {}),
    ...(auth && limitChannels.has(queue) ? { limits: outboundLimits(config, stores, queue, logger, () => newId()) } : {}),
    inlineVerdict: inlineVerdictGate(queue, smtpLogger),
  });
  const port = await front.listen();
  logger.info({ host: config.smtp.listen.host, port, submission: front.ports.submission }, 'SMTP listening');
  // A config reload (SIGHUP, cli.ts) reaches the front through the live config: new sessions get
  // the new config, and the TLS certificate files are read again at once.
  return Object.assign(front, { port });
}

/**
 * The gateway's one DNS resolver: every lookup (checks, SPF, authentication, MX) goes through it.
 * One instance per config, so the roles of one process (`start`) share its cache.
 */
const resolvers = new WeakMap<Config, DnsResolver>();
export function makeResolver(config: Config): DnsResolver {
  let resolver = resolvers.get(config);
  if (!resolver) {
    resolver = createResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeoutMs, tries: config.dns.tries });
    resolvers.set(config, resolver);
  }
  return resolver;
}

/** The outside lane always leaves the hosted domains at least one delivery slot (and gets at least one). */
function outsideLaneSize(config: Config): number {
  return Math.max(1, Math.min(config.delivery.externalConcurrency, config.queue.deliverConcurrency - 1));
}

export function deliveryDeps(config: Config, stores: Stores, queue: JobQueue, logger: Logger): DeliveryDeps {
  const connections = new ConnectionPool({
    idleMs: config.delivery.reuseIdleMs,
    maxMessages: config.delivery.reuseMaxMessages,
    maxIdle: config.queue.deliverConcurrency,
  });
  return {
    config,
    ...stores,
    keep: stores.quarantine,
    queue,
    resolver: makeResolver(config),
    slots: new DeliverySlots({ externalConcurrency: outsideLaneSize(config), maxAttempts: config.queue.deliverConcurrency }),
    connections,
    dsnWindow: new DsnRateWindow(),
    logger,
  };
}

export async function runWorkers(config: Config, stores: Stores, queue: JobQueue, endpoints: Endpoints, logger: Logger): Promise<WorkerSet> {
  const log = logger.child({ role: 'worker' });
  // Issue 19: the learned filter, its models in the metadata database (every node sees them).
  const learner = createLearner(openLearnerStore(stores.sql));
  const scanners = { ...makeScanners(config, endpoints), learner };
  // Delivery results survive a store that fails after a 250 (gateway/delivery/recorded.ts).
  const recorder = new DeliveryRecorder({
    store: stores.store,
    logger: log,
    journalDir: path.join(config.dataDir, 'delivery-journal'),
    ...(stores.sql.dialect === 'sqlite' ? { reserveFile: path.join(config.dataDir, 'store-reserve') } : {}),
    retryMs: config.delivery.recordRetryMs,
    pauseMs: config.delivery.storePauseMs,
  });
  await recorder.start();
  const delivery = { ...deliveryDeps(config, stores, queue, log), recorder };
  const arcKey = config.authentication.arcSeal && { ...config.authentication.arcSeal, privateKey: readFileSync(config.authentication.arcSeal.keyFile, 'utf8') };
  const lists = openListStore(stores.sql);
  // Issue 8: spam reports (reportspam@) are learned by the worker through gateway/learning.ts.
  const reports = { spamd: new SpamdClient(endpoints.spamd, { timeoutMs: config.spamd.timeoutMs }), learnLog: openLearnLog(stores.sql), lists, learner };
  const scanDeps = {
    config,
    ...stores,
    queue,
    scanners,
    logger: log,
    lists,
    inline: inlineVerdicts(queue, log),
    arcKey,
    reports,
    outboundSpam: outboundSpamWatch(config, stores, queue, log),
    // A clean message's first delivery attempt is made by its scan job, with this process's
    // delivery slots, connections and recorder: one job per message instead of two.
    deliverHere: (envelope: Envelope, scanned: SummaryRecord) =>
      attemptFirstHere(delivery, envelope, { faultRetryMs: config.scan.retryDelayMs, isLastAttempt: DELIVERY_ATTEMPTS_CEILING <= 1, scanned }),
  };
  // Reconcile before taking jobs: it evicts local copies (several machines), which a job already
  // running on this node would then miss (ENOENT mid-scan after Redis lost its data).
  const requeued = await reconcileSpool({ ...stores, queue, logger: log });
  if (requeued > 0) log.warn({ requeued }, 'spool entries without a live job were queued again');
  const poison = { store: stores.store, queue, logger: log };
  const testFault = testFaultHook(); // undefined outside the crash tests (MAILMOAT_TEST_FAULTS)
  const workers = startWorkers(
    endpoints.redis,
    {
      // A node's copy of a message is only a working copy when the spool is shared (several
      // machines): the next job of this message may run on another node.
      scan: async (job) => {
        await testFault?.(job.messageId);
        await handleScanJob(scanDeps, job).finally(() => stores.spool.evictLocal(job.messageId));
      },
      deliver: (job) => handleDeliverJob(delivery, job).finally(() => stores.spool.evictLocal(job.messageId)),
    },
    {
      prefix: config.redis.prefix,
      concurrency: { scan: config.queue.scanConcurrency, deliver: config.queue.deliverConcurrency },
      lockDurationMs: config.queue.lockDurationMs,
      onError: (err) => log.warn({ err }, 'queue worker error'),
      onJobFault: (queue, ctx, reason) => recordFault(poison, queue, ctx, reason),
      onPoison: (queue, ctx, reason) => holdAsPoison(poison, queue, ctx, reason),
      faultRetryMs: config.scan.retryDelayMs,
    },
  );
  // Retention (quarantine and message log expiry) runs on every worker; it stops with them.
  const retention = startRetention({ config, store: stores.store, quarantine: stores.quarantine, logger: log }, config.retention.checkEveryMinutes * 60_000);
  return {
    async close(graceMs) {
      await Promise.all([retention.stop(), workers.close(graceMs)]);
      await recorder.stop();
      delivery.connections?.close();
      await scanners.analysis?.close();
    },
  };
}

const domainSyncs = new WeakMap<Config, DomainSync>();
/**
 * Hosted domains from the database, merged into the live config now and on every change
 * (gateway/domains/sync.ts). Start it right after the stores, before the SMTP front listens.
 */
export async function syncDomains(live: LiveConfig, stores: Stores, logger: Logger): Promise<DomainSync> {
  const sync = await startDomainSync({ store: openDomainStore(stores.sql), live, logger, intervalMs: live.current.database.domainsPollMs });
  domainSyncs.set(live.config, sync);
  return sync;
}

/**
 * The quarantine web console (quarantine-ui/): releases go through the spool and the delivery
 * queue like the CLI's, learning goes to spamd (TELL), /healthz checks every engine.
 */
export async function runConsole(
  config: Config,
  stores: Stores,
  queue: JobQueue,
  endpoints: Endpoints,
  logger: Logger,
  o: { listen?: boolean } = {},
): Promise<RunningConsole> {
  const log = logger.child({ role: 'console' });
  const learner = createLearner(openLearnerStore(stores.sql));
  const spamd = new SpamdClient(endpoints.spamd, { timeoutMs: config.spamd.timeoutMs });
  // Loaded here, not at the top: the console pulls in jsdom and friends (~1,000 modules, ~100 MB),
  // which the smtp and worker roles must not carry.
  const { startConsole } = await import('../quarantine-ui/server.ts');
  return startConsole(
    {
      config,
      logger: log,
      ...stores,
      queue,
      release: (id, by) => releaseMessage({ config, ...stores, queue, logger: log, learner }, id, by),
      learner,
      remove: (id, by) => deleteMessage({ ...stores, logger: log }, id, by),
      spamd,
      domainSync: domainSyncs.get(config),
      // The same checks as every role's health server; a console node fails /healthz for its own faults only.
      engineChecks: engineChecks(config, stores, queue, endpoints),
      healthCritical: CRITICAL.console,
    },
    o,
  );
}
