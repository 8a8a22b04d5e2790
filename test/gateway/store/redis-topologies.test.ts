// The queues and inline verdicts on the Redis topologies of several machines: a Redis Cluster
// (one node owning every slot: cross-slot commands fail as on a real cluster) and a
// Sentinel-managed master.
import { Queue, type ConnectionOptions } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../gateway/log.ts';
import { redisInlineVerdicts } from '../../../gateway/pipeline/inline.ts';
import { openJobQueue, startWorkers, type RedisTarget } from '../../../gateway/store/queue.ts';
import { checkRedisServer } from '../../../gateway/store/redis-check.ts';
import { startOneNodeCluster, startSentinelPair } from '../../support/redis-servers.ts';

const REPLY = { code: 554, enhanced: '5.7.1', text: 'Message refused: virus: Eicar' };
const attempts = { scan: 3, deliver: 3 };

/** Enqueues one scan job, runs a worker until it has seen it, and returns the id it saw. */
async function roundTrip(target: RedisTarget, prefix: string): Promise<string> {
  const queue = openJobQueue(target, { prefix, attempts });
  let seen: (id: string) => void = () => {};
  const handled = new Promise<string>((resolve) => (seen = resolve));
  const workers = startWorkers(
    target,
    { scan: async (job) => seen(job.messageId), deliver: async () => {} },
    {
      prefix,
      concurrency: { scan: 1, deliver: 1 },
      lockDurationMs: 5_000,
      onError: () => {},
      onJobFault: async () => {},
      onPoison: async () => {},
      faultRetryMs: 1_000,
    },
  );
  try {
    await queue.enqueue('scan', 'msg-1');
    return await handled;
  } finally {
    await workers.close(2_000);
    await queue.close();
  }
}

async function inlineHandshake(target: RedisTarget, prefix: string): Promise<void> {
  const smtp = redisInlineVerdicts(target, { prefix, logger: silentLogger() });
  const worker = redisInlineVerdicts(target, { prefix, logger: silentLogger() });
  try {
    const refused = smtp.wait('m-refused', 10_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await worker.refuse('m-refused', REPLY)).toBe(true);
    await worker.announce('m-refused');
    expect(await refused).toEqual(REPLY);
    const accepted = smtp.wait('m-accepted', 10_000);
    await new Promise((r) => setTimeout(r, 100));
    await worker.accept('m-accepted');
    expect(await accepted).toBeNull();
  } finally {
    await smtp.close();
    await worker.close();
  }
}

describe('Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startOneNodeCluster>>;
  let target: RedisTarget;
  beforeAll(async () => {
    cluster = await startOneNodeCluster(['--maxmemory-policy', 'noeviction']);
    target = { url: `redis://127.0.0.1:${cluster.port}`, cluster: true };
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('without a hash tag in the prefix BullMQ fails (CROSSSLOT): that is why mailmoat refuses such a prefix', async () => {
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.port }]);
    client.on('error', () => {});
    const queue = new Queue('scan', { connection: client as unknown as ConnectionOptions, prefix: 'plain' });
    queue.on('error', () => {});
    try {
      await expect(queue.add('scan', { messageId: 'x' })).rejects.toThrow(/CROSSSLOT|same slot/);
    } finally {
      await queue.close();
      client.disconnect();
    }
    expect(() => openJobQueue(target, { prefix: 'mailmoat', attempts })).toThrow('redis.prefix "mailmoat" has no hash tag');
    expect(() => redisInlineVerdicts(target, { prefix: 'mailmoat', logger: silentLogger() })).toThrow('has no hash tag');
  });

  it('queues and works jobs, and keeps every key under the hash-tagged prefix', async () => {
    expect(await roundTrip(target, '{mmtest}')).toBe('msg-1');
    await inlineHandshake(target, '{mmtest}');
    const plain = new Redis({ port: cluster.port });
    try {
      const keys = await plain.keys('*');
      expect(keys.length).toBeGreaterThan(0);
      // (plain:… is the refused BullMQ queue of the test above)
      expect(keys.filter((k) => !k.startsWith('{mmtest}:') && !k.startsWith('plain:'))).toEqual([]);
    } finally {
      plain.disconnect();
    }
  });
});

describe('Redis behind Sentinel', () => {
  let pair: Awaited<ReturnType<typeof startSentinelPair>>;
  let target: RedisTarget;
  beforeAll(async () => {
    pair = await startSentinelPair('mm-master', ['--maxmemory-policy', 'noeviction']);
    target = { sentinel: { name: 'mm-master', sentinels: [{ host: '127.0.0.1', port: pair.sentinelPort }] } };
  });
  afterAll(async () => {
    await pair?.stop();
  });

  it('finds the master through the Sentinel: checks, queues, workers and inline verdicts', async () => {
    const checked = await checkRedisServer(target, { prefix: 'mailmoat' });
    expect(checked.maxmemoryPolicy).toBe('noeviction');
    expect(checked.warnings).toEqual([
      expect.stringContaining(`Redis at master "mm-master" via Sentinel 127.0.0.1:${pair.sentinelPort} runs without appendonly`),
    ]);
    expect(await roundTrip(target, 'mailmoat')).toBe('msg-1');
    await inlineHandshake(target, 'mailmoat');
  });

  it('names the Sentinel and the master when the master is unknown', async () => {
    const wrong: RedisTarget = { sentinel: { name: 'no-such-master', sentinels: [{ host: '127.0.0.1', port: pair.sentinelPort }] } };
    await expect(checkRedisServer(wrong, { timeoutMs: 3_000 })).rejects.toThrow(
      new RegExp(`^(cannot reach Redis at|Redis at) master "no-such-master" via Sentinel 127\\.0\\.0\\.1:${pair.sentinelPort}`),
    );
  });
});
