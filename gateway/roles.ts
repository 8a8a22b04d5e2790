// Composition roots: the only place that picks concrete adapters. `start` runs everything on one
// machine (engines it manages, SMTP front, workers, demo mailbox); `smtp` and `worker` run one role.
import path from 'node:path';
import { monotonicFactory } from 'ulid';
import type { Config } from './config/schema.ts';
import type { Logger } from './log.ts';
import { Spool } from './spool/spool.ts';
import { fileBlobStore, type BlobStore } from './store/blobs.ts';
import { openSqliteStore, type MetadataStore } from './store/metadata.ts';
import { openJobQueue, startWorkers, type JobQueue, type RedisTarget, type WorkerSet } from './store/queue.ts';
import { createSmtpFront, type SmtpFront } from './smtp/server.ts';
import { handleScanJob, type Scanners } from './pipeline/scan.ts';
import { handleDeliverJob, type DeliveryDeps } from './delivery/deliver.ts';
import { HostLimiter } from './delivery/transport.ts';
import { createResolver, type DnsResolver } from './dns/resolver.ts';
import { reconcileSpool } from './pipeline/reconcile.ts';
import { ClamdClient } from '../scanners/clamd.ts';
import { SpamdClient, scanSpam } from '../scanners/spamd.ts';
import {
  chooseClamavDatabase,
  startManagedClamd,
  startManagedRedis,
  startManagedSpamd,
  type ManagedService,
} from './services/managed.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
/** BullMQ needs an attempt count; far more than a 5-day lifetime at the maximal backoff needs. */
const DELIVERY_ATTEMPTS_CEILING = 100_000;
/** Port of the spamd that mailmoat manages itself (loopback only). */
const MANAGED_SPAMD_PORT = 7830;

export type SocketOrTcp = { socketPath: string } | { host: string; port: number };

export interface Endpoints {
  redis: RedisTarget;
  clamd: SocketOrTcp;
  spamd: SocketOrTcp;
}

/** Stores that every role opens from the config alone. */
export interface Stores {
  spool: Spool;
  store: MetadataStore;
  quarantine: BlobStore;
}

export async function openStores(config: Config): Promise<Stores> {
  const spool = new Spool(path.join(config.dataDir, 'spool'));
  await spool.init();
  return {
    spool,
    store: openSqliteStore(path.join(config.dataDir, 'mailmoat.sqlite')),
    quarantine: fileBlobStore(path.join(config.dataDir, 'quarantine')),
  };
}

function configuredEndpoint(e: { socket?: string; host?: string; port?: number }): SocketOrTcp | undefined {
  if (e.socket) return { socketPath: e.socket };
  if (e.host && e.port) return { host: e.host, port: e.port };
  return undefined;
}

export function configuredRedis(config: Config): RedisTarget | undefined {
  if (config.redis.url) return { url: config.redis.url };
  if (config.redis.socket) return { socketPath: config.redis.socket };
  return undefined;
}

/** Starts the engines the config marks as managed; the others are used where configured. */
export async function startEngines(config: Config, logger: Logger): Promise<{ endpoints: Endpoints; stop(): Promise<void> }> {
  const engineDir = (name: string) => path.join(config.dataDir, 'engines', name);
  const started: ManagedService[] = [];
  const [redis, clamd, spamd] = await Promise.all([
    configuredRedis(config) ? Promise.resolve(configuredRedis(config)!) : startManagedRedis({ dir: engineDir('redis'), logger }).then((s) => (started.push(s), { socketPath: s.socketPath })),
    configuredEndpoint(config.clamd) ??
      startManagedClamd({
        dir: engineDir('clamd'),
        databaseDir: config.clamd.databaseDir ?? chooseClamavDatabase({ logger, fallbackDir: path.join(REPO_ROOT, 'deploy/clamav-test-db') }),
        logger,
      }).then((s) => (started.push(s), { socketPath: s.socketPath })),
    configuredEndpoint(config.spamd) ??
      startManagedSpamd({ dir: engineDir('spamd'), port: config.spamd.port ?? MANAGED_SPAMD_PORT, logger, allowTell: true }).then(
        (s) => (started.push(s), { host: s.host, port: s.port }),
      ),
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

export function openQueue(config: Config, redis: RedisTarget): JobQueue {
  return openJobQueue(redis, {
    prefix: config.redis.prefix,
    // Deliveries end by queue lifetime (rules/retry.ts decideDeferral), not by an attempt count.
    attempts: { scan: config.scan.maxAttempts, deliver: DELIVERY_ATTEMPTS_CEILING },
  });
}

export function makeScanners(config: Config, endpoints: Endpoints): Scanners {
  const clamd = new ClamdClient(endpoints.clamd, { timeoutMs: config.clamd.timeoutMs });
  const spamd = new SpamdClient(endpoints.spamd, { timeoutMs: config.spamd.timeoutMs });
  return {
    virus: (input) => clamd.scan(input),
    spam: (message) => scanSpam(spamd, message, { maxBytes: config.spamd.maxBytes }),
  };
}

export async function runSmtp(config: Config, stores: Stores, queue: JobQueue, logger: Logger): Promise<SmtpFront & { port: number }> {
  // A body left in incoming/ by a crash mid-DATA was never acknowledged: the client will resend it.
  const discarded = await stores.spool.discardIncomplete();
  if (discarded > 0) logger.warn({ discarded }, 'discarded incomplete messages from an earlier crash');
  const newId = monotonicFactory();
  const front = createSmtpFront({ config, ...stores, queue, logger: logger.child({ role: 'smtp' }), newId: () => newId() });
  const port = await front.listen();
  logger.info({ host: config.smtp.listen.host, port }, 'SMTP listening');
  return Object.assign(front, { port });
}

/** The gateway's one DNS resolver: every lookup (checks, authentication, MX) goes through it. */
export function makeResolver(config: Config): DnsResolver {
  return createResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeoutMs, tries: 2 });
}

export function deliveryDeps(config: Config, stores: Stores, queue: JobQueue, logger: Logger): DeliveryDeps {
  return { config, ...stores, keep: stores.quarantine, queue, resolver: makeResolver(config), limiter: new HostLimiter(), logger };
}

export async function runWorkers(config: Config, stores: Stores, queue: JobQueue, endpoints: Endpoints, logger: Logger): Promise<WorkerSet> {
  const log = logger.child({ role: 'worker' });
  const scanners = makeScanners(config, endpoints);
  const delivery = deliveryDeps(config, stores, queue, log);
  const workers = startWorkers(
    endpoints.redis,
    {
      scan: (job) => handleScanJob({ config, ...stores, queue, scanners, logger: log }, job),
      deliver: (job) => handleDeliverJob(delivery, job),
    },
    {
      prefix: config.redis.prefix,
      concurrency: { scan: config.queue.scanConcurrency, deliver: config.queue.deliverConcurrency },
      lockDurationMs: config.queue.lockDurationMs,
      onError: (err) => log.warn({ err }, 'queue worker error'),
      onJobFault: (queue, id, err) => log.error({ queue, id, err }, 'job failed unexpectedly; it will be retried'),
    },
  );
  const requeued = await reconcileSpool({ ...stores, queue, logger: log });
  if (requeued > 0) log.warn({ requeued }, 'spool entries without a live job were queued again');
  return workers;
}
