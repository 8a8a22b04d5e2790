// JobQueue: the "scan" and "deliver" queues between the SMTP front, the scan worker and the
// delivery worker. Jobs carry message ids, never bodies (the body is in the spool). The job id is
// the message id, so enqueueing the same message twice is a no-op while its job is alive.
//
// Contract: enqueue resolves only once Redis has the job, and fails fast (it never hangs an SMTP
// session) when Redis is unreachable. A handler that throws RetryLater is retried after the
// delay it asks for; a crashed worker's job is taken over by another after lockDurationMs.
//
// Adapter: BullMQ 6 on Redis.
import { Queue, Worker, type Job, type ConnectionOptions } from 'bullmq';

export type QueueName = 'scan' | 'deliver';

export type RedisTarget = { socketPath: string } | { url: string };

export interface JobContext {
  messageId: string;
  /** 1 for the first try. */
  attempt: number;
  isLastAttempt: boolean;
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

export interface JobQueue {
  enqueue(queue: QueueName, messageId: string, o?: { jobId?: string; attempts?: number }): Promise<void>;
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

function connectionOptions(target: RedisTarget, forWorker: boolean): ConnectionOptions {
  const base = 'socketPath' in target ? { path: target.socketPath } : parseRedisUrl(target.url);
  // Producers must fail fast when Redis is down (the SMTP client gets a 451, not a hang);
  // workers wait for Redis to come back (BullMQ requires maxRetriesPerRequest: null).
  return forWorker
    ? { ...base, maxRetriesPerRequest: null }
    : { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: ENQUEUE_TIMEOUT_MS };
}

function parseRedisUrl(url: string): Record<string, unknown> {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

export function openJobQueue(target: RedisTarget, o: { prefix: string; attempts: Record<QueueName, number> }): JobQueue {
  const connection = connectionOptions(target, false);
  const queues: Record<QueueName, Queue> = {
    scan: new Queue('scan', { connection, prefix: o.prefix }),
    deliver: new Queue('deliver', { connection, prefix: o.prefix }),
  };
  for (const q of Object.values(queues)) q.on('error', () => {}); // surfaced through enqueue's rejection

  return {
    async enqueue(queue, messageId, opts = {}) {
      const add = queues[queue].add(
        queue,
        { messageId },
        {
          jobId: opts.jobId ?? messageId,
          attempts: opts.attempts ?? o.attempts[queue],
          backoff: { type: 'mailmoat' },
          removeOnComplete: true,
          removeOnFail: 1000,
        },
      );
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
        attemptsMade: job.attemptsMade,
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
    /** A handler threw something other than RetryLater: the job is retried later, and this is logged. */
    onJobFault: (queue: QueueName, messageId: string, err: Error) => void;
  },
): WorkerSet {
  const connection = connectionOptions(target, true);
  const workers = (Object.keys(handlers) as QueueName[]).map((name) => {
    const worker = new Worker(
      name,
      async (job: Job<{ messageId: string }>) => {
        const attempt = job.attemptsMade + 1;
        await handlers[name]({
          messageId: job.data.messageId,
          attempt,
          isLastAttempt: attempt >= (job.opts.attempts ?? 1),
        });
      },
      {
        connection,
        prefix: o.prefix,
        concurrency: o.concurrency[name],
        lockDuration: o.lockDurationMs,
        stalledInterval: o.lockDurationMs,
        // A worker killed mid-job leaves the job "stalled"; it must be picked up again, not
        // failed after one stall (BullMQ's default of 1 would turn a crash into a lost message).
        maxStalledCount: 1000,
        settings: {
          backoffStrategy: (_attempts: number, _type?: string, err?: Error) =>
            err instanceof RetryLater ? err.delayMs : 60_000,
        },
      },
    );
    worker.on('error', o.onError);
    // A RetryLater is the expected way to defer; anything else is a fault that must be seen.
    worker.on('failed', (job, err) => {
      if (!(err instanceof RetryLater)) o.onJobFault(name, job?.data.messageId ?? '?', err);
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
