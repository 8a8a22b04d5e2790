// JobQueue: the "scan" and "deliver" queues between the SMTP front, the scan worker and the
// delivery worker. Jobs carry message ids, never bodies (the body is in the spool). The job id is
// the message id, so enqueueing the same message twice is a no-op while its job is alive.
//
// Contract: enqueue resolves only once Redis has the job, and fails fast (it never hangs an SMTP
// session) when Redis is unreachable. A handler that throws RetryLater is retried after the
// delay it asks for; a crashed worker's job is taken over by another within lockDurationMs plus
// one stalled check (stalledIntervalOf). A job that crashed or stalled its worker, or threw
// something other than RetryLater, POISON_FAULTS times is handed to onPoison instead of being run
// again: the count lives in Redis with the job (BullMQ's stalledCounter, and job data), not in
// memory, so it survives the crashes it counts.
//
// Adapter: BullMQ 6 on Redis: one server (socket or URL), a master found through Sentinel, or a
// Redis Cluster (then the key prefix needs a hash tag, "{mailmoat}"). redisOptions/openRedis are
// the one place where a RedisTarget becomes ioredis options; inline verdicts and the start-up
// check (redis-check.ts) connect through them too.
import { DelayedError, Queue, Worker, type Job, type ConnectionOptions } from 'bullmq';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { hashTag } from '../config/schema.ts';
import { runInJobScope } from '../containment.ts';

export type QueueName = 'scan' | 'deliver';

/** A Redis whose master is found through Sentinel (ioredis `sentinels` + `name`). */
export interface SentinelTarget {
  /** The master group name, as in the Sentinels' `sentinel monitor <name> …`. */
  name: string;
  sentinels: { host: string; port: number }[];
  /** Password of the Redis master (and replicas). */
  password?: string;
  /** Password of the Sentinels themselves (their `requirepass`), if they have one. */
  sentinelPassword?: string;
}

/**
 * Where Redis is: a unix socket, a URL (`cluster: true`: the URL names one node of a Redis
 * Cluster, the others are discovered), or the Sentinels that know the current master.
 */
export type RedisTarget = { socketPath: string } | { url: string; cluster?: boolean } | { sentinel: SentinelTarget };

/**
 * How a connection is used, which decides how it behaves while Redis is away:
 *   producer: fails fast (an SMTP client gets a 451, never a hung session);
 *   worker:   waits for Redis to come back (BullMQ requires maxRetriesPerRequest: null);
 *   client:   one retry, then the caller's error path (inline verdicts accept as usual).
 */
export type RedisUse = 'producer' | 'worker' | 'client';

export interface JobContext {
  messageId: string;
  /** 1 for the first try. */
  attempt: number;
  isLastAttempt: boolean;
  /** Faults of this job so far: stalls (its worker died or hung) plus unexpected exceptions. */
  faults: number;
}

/** Faults (crashes, stalls, unexpected exceptions) after which a message is held as poison. */
export const POISON_FAULTS = 3;

/**
 * How often workers look for jobs whose worker died. BullMQ moves a job only on the first check
 * after its lock expired (a check marks active jobs, the next one moves those without a lock), so
 * a dead worker's job waits up to lockDuration + this interval: a sixth of the lock keeps that
 * close to the lock (35 s with the default 30 s), at one small Redis script per interval.
 */
export function stalledIntervalOf(lockDurationMs: number): number {
  return Math.max(500, Math.round(lockDurationMs / 6));
}

/** Thrown by a handler: try this job again later (the message stays in the spool). */
export class RetryLater extends Error {
  readonly delayMs: number;
  constructor(reason: string, delayMs: number) {
    super(reason);
    this.name = 'RetryLater';
    this.delayMs = delayMs;
  }
}

/**
 * Thrown by a handler that cannot start yet because a local limit is reached (a per-host or lane
 * slot): the job goes back to the queue for delayMs without counting as an attempt, and without
 * holding a worker slot while it waits.
 */
export class WaitForSlot extends Error {
  readonly delayMs: number;
  constructor(reason: string, delayMs: number) {
    super(reason);
    this.name = 'WaitForSlot';
    this.delayMs = delayMs;
  }
}

/**
 * A job that continues what another job began (a delivery whose first attempt the scan job made):
 * it runs after `delayMs`, and counts the attempts and faults already spent, so that its attempt
 * number, backoff and poison count are those of a job that made them itself.
 */
export interface Continuation {
  delayMs?: number;
  attemptsBefore?: number;
  faultsBefore?: number;
}

export interface JobQueue {
  enqueue(queue: QueueName, messageId: string, o?: { jobId?: string; attempts?: number } & Continuation): Promise<void>;
  /** Whether a job for this message exists in the queue (waiting, delayed, active or failed). */
  hasJob(queue: QueueName, jobId: string): Promise<boolean>;
  counts(): Promise<Record<QueueName, Record<string, number>>>;
  /** State of one job: for a delayed job, when it runs next. */
  jobInfo(queue: QueueName, jobId: string): Promise<JobInfo | undefined>;
  /** Runs a waiting or delayed job now. */
  retryNow(queue: QueueName, jobId: string): Promise<boolean>;
  /** Removes a job unless a worker holds it; returns false then. */
  removeJob(queue: QueueName, jobId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** A job's data in Redis: the message, and the fault counts the processor keeps with it. */
interface JobData {
  messageId: string;
  /** Unexpected exceptions so far. */
  exceptions?: number;
  /** Stalls already recorded as faults (BullMQ's stalledCounter at the last run). */
  stallsSeen?: number;
  /** Attempts and faults spent before this job existed (Continuation). */
  attemptsBefore?: number;
  faultsBefore?: number;
}

export interface JobInfo {
  state: string;
  attemptsMade: number;
  lastError: string | null;
}

export interface WorkerSet {
  /**
   * Stops taking jobs and lets the running ones finish for up to `graceMs`; jobs still running
   * then are abandoned to the queue (their lock expires and they run again; the spool keeps the
   * message), never lost.
   */
  close(graceMs?: number): Promise<void>;
}

const ENQUEUE_TIMEOUT_MS = 5_000;

const USE_OPTIONS: Record<RedisUse, RedisOptions> = {
  // No auto-pipelining: ioredis builds a Pipeline per tick that copies every BullMQ script onto
  // itself (~80 properties, 8–13 KB), which costs more than the writes it saves. Measured (one
  // producer, batches of K enqueues in one tick): K=1 210–280 µs CPU per enqueue with it, 135–165
  // without; K=4 and K=10 the same either way.
  producer: { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: ENQUEUE_TIMEOUT_MS },
  worker: { maxRetriesPerRequest: null },
  client: { maxRetriesPerRequest: 1, connectTimeout: ENQUEUE_TIMEOUT_MS },
};

export function isClusterTarget(target: RedisTarget): target is { url: string; cluster: true } {
  return 'url' in target && target.cluster === true;
}

/**
 * Throws when the prefix cannot work on this target: a Redis Cluster needs a hash tag, so that
 * BullMQ's multi-key scripts and mailmoat's own keys all land in one slot.
 */
export function assertPrefixFits(target: RedisTarget, prefix: string): void {
  if (isClusterTarget(target) && hashTag(prefix) === undefined) {
    throw new Error(
      `redis.prefix ${JSON.stringify(prefix)} has no hash tag: on a Redis Cluster every key of mailmoat must hash to one slot; use a prefix such as "{mailmoat}"`,
    );
  }
}

/** Where Redis is, for messages and logs: never a password. */
export function describeRedisTarget(target: RedisTarget): string {
  if ('socketPath' in target) return `unix:${target.socketPath}`;
  if ('sentinel' in target) {
    return `master "${target.sentinel.name}" via Sentinel ${target.sentinel.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')}`;
  }
  let safe: string;
  try {
    const u = new URL(target.url);
    safe = `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    safe = '(unparsable URL)';
  }
  return target.cluster ? `${safe} (Redis Cluster)` : safe;
}

/**
 * ioredis options for one Redis server or a Sentinel-managed master (not a Cluster: see
 * openRedis), for one use.
 */
export function redisOptions(target: RedisTarget, use: RedisUse): RedisOptions {
  if (isClusterTarget(target)) throw new Error('a Redis Cluster has no single-server options: use openRedis');
  let base: RedisOptions;
  if ('socketPath' in target) base = { path: target.socketPath };
  else if ('sentinel' in target) {
    const s = target.sentinel;
    base = {
      name: s.name,
      sentinels: s.sentinels.map(({ host, port }) => ({ host, port })),
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.sentinelPassword !== undefined ? { sentinelPassword: s.sentinelPassword } : {}),
    };
  } else base = parseRedisUrl(target.url);
  return { ...base, ...USE_OPTIONS[use] };
}

/**
 * A connected (or connecting) client for a use: a Redis, or for a Cluster target an ioredis
 * Cluster seeded with the URL's node. The caller closes it. `extra` overrides options (checks
 * that must not retry forever).
 */
export function openRedis(target: RedisTarget, use: RedisUse, extra: RedisOptions & Pick<ClusterOptions, 'clusterRetryStrategy'> = {}): Redis | Cluster {
  if (!isClusterTarget(target)) {
    const { clusterRetryStrategy: _, ...rest } = extra;
    return new Redis({ ...redisOptions(target, use), ...rest });
  }
  const { host, port, db: _db, ...node } = parseRedisUrl(target.url);
  const { enableOfflineQueue, lazyConnect, clusterRetryStrategy, retryStrategy: _r, ...perNode } = { ...USE_OPTIONS[use], ...extra };
  return new Cluster([{ host: host ?? '127.0.0.1', port: port ?? 6379 }], {
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    ...(clusterRetryStrategy !== undefined ? { clusterRetryStrategy } : {}),
    redisOptions: { ...node, ...perNode },
  });
}

/**
 * What BullMQ gets: options for one server or a Sentinel-managed master; for a Cluster, an
 * ioredis Cluster instance (BullMQ takes no Cluster options), which the caller must close.
 */
function connectionFor(target: RedisTarget, use: RedisUse): { connection: ConnectionOptions; client?: Redis | Cluster } {
  if (!isClusterTarget(target)) return { connection: redisOptions(target, use) as ConnectionOptions };
  const client = openRedis(target, use);
  client.on('error', () => {}); // surfaced through BullMQ's own error events and rejections
  return { connection: client as unknown as ConnectionOptions, client };
}

function parseRedisUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function openJobQueue(target: RedisTarget, o: { prefix: string; attempts: Record<QueueName, number> }): JobQueue {
  assertPrefixFits(target, o.prefix);
  // One connection per queue (a Cluster instance is shared by BullMQ, not duplicated).
  const scan = connectionFor(target, 'producer');
  const deliver = connectionFor(target, 'producer');
  const queues: Record<QueueName, Queue> = {
    scan: new Queue('scan', { connection: scan.connection, prefix: o.prefix }),
    deliver: new Queue('deliver', { connection: deliver.connection, prefix: o.prefix }),
  };
  for (const q of Object.values(queues)) q.on('error', () => {}); // surfaced through enqueue's rejection

  return {
    async enqueue(queue, messageId, opts = {}) {
      const before = opts.attemptsBefore ?? 0;
      const data: JobData = { messageId, ...(before > 0 ? { attemptsBefore: before } : {}), ...(opts.faultsBefore ? { faultsBefore: opts.faultsBefore } : {}) };
      const add = queues[queue].add(queue, data, {
        jobId: opts.jobId ?? messageId,
        ...(opts.delayMs ? { delay: opts.delayMs } : {}),
        // The attempts already spent come off the job's own allowance.
        attempts: Math.max(1, (opts.attempts ?? o.attempts[queue]) - before),
        backoff: { type: 'mailmoat' },
        removeOnComplete: true,
        removeOnFail: 1000,
      });
      await withTimeout(add, ENQUEUE_TIMEOUT_MS, `enqueue to ${queue} timed out`);
    },
    async hasJob(queue, jobId) {
      const job = await queues[queue].getJob(jobId);
      return job !== undefined && job !== null;
    },
    async counts() {
      const states = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
      return {
        scan: await queues.scan.getJobCounts(...states),
        deliver: await queues.deliver.getJobCounts(...states),
      };
    },
    async jobInfo(queue, jobId) {
      const job = await queues[queue].getJob(jobId);
      if (!job) return undefined;
      const state = await job.getState();
      return {
        state,
        attemptsMade: job.attemptsMade + (job.data.attemptsBefore ?? 0),
        lastError: job.failedReason ?? null,
      };
    },
    async retryNow(queue, jobId) {
      const job = await queues[queue].getJob(jobId);
      if (!job || (await job.getState()) !== 'delayed') return false;
      await job.promote();
      return true;
    },
    async removeJob(queue, jobId) {
      const job = await queues[queue].getJob(jobId);
      if (!job) return true;
      try {
        await job.remove();
        return true;
      } catch {
        return false; // locked by a worker right now
      }
    },
    async close() {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      // Cluster instances are ours: BullMQ leaves a client it was given open.
      for (const c of [scan.client, deliver.client]) c?.disconnect();
    },
  };
}

export function startWorkers(
  target: RedisTarget,
  handlers: Record<QueueName, (ctx: JobContext) => Promise<void>>,
  o: {
    prefix: string;
    concurrency: Record<QueueName, number>;
    lockDurationMs: number;
    onError: (err: Error) => void;
    /**
     * A fault of a job: its worker died or stalled while running it, or its handler threw (or let
     * escape) something other than RetryLater. Called once per fault, with the fault count so far
     * (ctx.faults); the job is retried after faultRetryMs, or handed to onPoison.
     */
    onJobFault: (queue: QueueName, ctx: JobContext, reason: string) => Promise<void>;
    /** The job reached POISON_FAULTS: set the message aside; the job then ends without running. */
    onPoison: (queue: QueueName, ctx: JobContext, reason: string) => Promise<void>;
    faultRetryMs: number;
  },
): WorkerSet {
  assertPrefixFits(target, o.prefix);
  // For a Cluster, BullMQ duplicates the instance it is given (a worker needs a blocking
  // connection of its own) but may still use the original: it is closed after the workers.
  const templates: (Redis | Cluster)[] = [];
  const workers = (Object.keys(handlers) as QueueName[]).map((name) => {
    const { connection, client: template } = connectionFor(target, 'worker');
    if (template) templates.push(template);
    const worker = new Worker(
      name,
      async (job: Job<JobData>, token?: string) => {
        const ctx: JobContext = {
          messageId: job.data.messageId,
          attempt: job.attemptsMade + 1 + (job.data.attemptsBefore ?? 0),
          isLastAttempt: job.attemptsMade + 1 >= (job.opts.attempts ?? 1),
          faults: job.stalledCounter + (job.data.exceptions ?? 0) + (job.data.faultsBefore ?? 0),
        };
        if (job.stalledCounter > (job.data.stallsSeen ?? 0)) {
          await job.updateData({ ...job.data, stallsSeen: job.stalledCounter });
          await o.onJobFault(name, ctx, `its worker died or stalled while processing it (stall ${job.stalledCounter})`);
        }
        if (ctx.faults >= POISON_FAULTS) return o.onPoison(name, ctx, `${ctx.faults} faults; the last: a worker died or stalled while processing it`);
        try {
          await runInJobScope({ queue: name, messageId: ctx.messageId }, () => handlers[name](ctx));
        } catch (err) {
          if (err instanceof WaitForSlot) {
            // Not a fault: the host or lane is full; the job waits in the queue, holding no slot.
            await job.moveToDelayed(Date.now() + err.delayMs, token);
            throw new DelayedError();
          }
          if (err instanceof RetryLater) throw err;
          const reason = `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
          await job.updateData({ ...job.data, exceptions: (job.data.exceptions ?? 0) + 1 });
          const faulted = { ...ctx, faults: ctx.faults + 1 };
          await o.onJobFault(name, faulted, reason);
          if (faulted.faults >= POISON_FAULTS) return o.onPoison(name, faulted, `${faulted.faults} faults; the last: ${reason}`);
          throw new RetryLater(reason, o.faultRetryMs);
        }
      },
      {
        connection,
        prefix: o.prefix,
        concurrency: o.concurrency[name],
        lockDuration: o.lockDurationMs,
        stalledInterval: stalledIntervalOf(o.lockDurationMs),
        // A worker killed mid-job leaves the job "stalled"; the processor above holds it as
        // poison after POISON_FAULTS. BullMQ's own limit (default 1: one crash fails the job and
        // strands the message) is only a backstop above ours.
        maxStalledCount: POISON_FAULTS + 2,
        settings: {
          backoffStrategy: (_attempts: number, _type?: string, err?: Error) => (err instanceof RetryLater ? err.delayMs : 60_000),
        },
      },
    );
    worker.on('error', o.onError);
    // Only a failing onJobFault/onPoison (the store down) gets here: BullMQ retries it in 60 s.
    worker.on('failed', (_job, err) => {
      if (!(err instanceof RetryLater)) o.onError(err);
    });
    return worker;
  });
  return {
    async close(graceMs = 30_000) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      const graceful = Promise.all(workers.map((w) => w.close())).then(() => 'done' as const);
      if ((await Promise.race([graceful, deadline])) === 'late') await Promise.all(workers.map((w) => w.close(true)));
      clearTimeout(timer);
      for (const t of templates) t.disconnect();
    },
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
