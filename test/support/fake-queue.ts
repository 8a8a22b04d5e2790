// An in-memory job queue for lifecycle tests, implementing the JobQueue port
// (gateway/store/queue.ts) the way BullMQ behaves for it: one job per job id (a second enqueue
// of the same id is a no-op), removeJob refuses a job a worker holds (`active`).
import type { Continuation, JobInfo, JobQueue, QueueName } from '../../gateway/store/queue.ts';

export class MemoryQueue implements JobQueue {
  /** "<queue>:<jobId>" → the message id it carries. */
  readonly jobs = new Map<string, string>();
  readonly active = new Set<string>();
  private failEnqueue = false;

  /** The next enqueue throws (Redis gone between two steps). */
  failNextEnqueue(): void {
    this.failEnqueue = true;
  }

  async enqueue(queue: QueueName, messageId: string, o: { jobId?: string } = {}): Promise<void> {
    if (this.failEnqueue) {
      this.failEnqueue = false;
      throw new Error('injected failure: queue.enqueue');
    }
    const key = `${queue}:${o.jobId ?? messageId}`;
    if (!this.jobs.has(key)) this.jobs.set(key, messageId);
  }

  async hasJob(queue: QueueName, jobId: string): Promise<boolean> {
    return this.jobs.has(`${queue}:${jobId}`);
  }

  async counts(): Promise<Record<QueueName, Record<string, number>>> {
    const count = (q: QueueName) => [...this.jobs.keys()].filter((k) => k.startsWith(`${q}:`)).length;
    return { scan: { waiting: count('scan') }, deliver: { waiting: count('deliver') } };
  }

  async jobInfo(queue: QueueName, jobId: string): Promise<JobInfo | undefined> {
    const key = `${queue}:${jobId}`;
    return this.jobs.has(key) ? { state: this.active.has(key) ? 'active' : 'waiting', attemptsMade: 0, lastError: null } : undefined;
  }

  async retryNow(queue: QueueName, jobId: string): Promise<boolean> {
    return this.jobs.has(`${queue}:${jobId}`);
  }

  async removeJob(queue: QueueName, jobId: string): Promise<boolean> {
    const key = `${queue}:${jobId}`;
    if (this.active.has(key)) return false;
    this.jobs.delete(key);
    return true;
  }

  /** A worker took the job and finished it. */
  take(queue: QueueName, jobId: string): void {
    this.jobs.delete(`${queue}:${jobId}`);
  }

  async close(): Promise<void> {}
}

/** A MemoryQueue that also keeps every enqueue it was asked for, with its continuation. */
export class RecordingQueue extends MemoryQueue {
  readonly asked: { queue: QueueName; id: string; o: Continuation }[] = [];
  override async enqueue(queue: QueueName, messageId: string, o: { jobId?: string } & Continuation = {}): Promise<void> {
    this.asked.push({ queue, id: messageId, o });
    return super.enqueue(queue, messageId, o);
  }
}
