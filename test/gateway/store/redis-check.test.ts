import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkRedisServer } from '../../../gateway/store/redis-check.ts';
import { startOneNodeCluster, startTestRedis, type TestRedis } from '../../support/redis-servers.ts';

const evictionMessage = (where: string, policy: string) =>
  `Redis at ${where} has maxmemory-policy ${policy}; mailmoat needs noeviction: an evicted job is a lost message (set "maxmemory-policy noeviction" in redis.conf)`;

describe('checkRedisServer', () => {
  const servers: TestRedis[] = [];
  let lru: TestRedis;
  let lruNoConfig: TestRedis;
  let noevictionNoConfig: TestRedis;
  let withPassword: TestRedis;
  let cluster: TestRedis & { port: number };
  let lruCluster: TestRedis & { port: number };

  beforeAll(async () => {
    const started = await Promise.allSettled([
      startTestRedis(['--maxmemory-policy', 'allkeys-lru']),
      // CONFIG disabled, as on many managed Redis services: INFO memory is the fallback.
      startTestRedis(['--maxmemory-policy', 'allkeys-lru', '--rename-command', 'CONFIG', '""']),
      startTestRedis(['--maxmemory-policy', 'noeviction', '--rename-command', 'CONFIG', '""']),
      startTestRedis(['--maxmemory-policy', 'volatile-lru', '--requirepass', 's3cret-pw'], { tcp: true, password: 's3cret-pw' }),
      startOneNodeCluster(['--maxmemory-policy', 'noeviction']),
      startOneNodeCluster(['--maxmemory-policy', 'allkeys-lfu']),
    ]);
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    [lru, lruNoConfig, noevictionNoConfig, withPassword, cluster, lruCluster] = started.map((s) => (s as PromiseFulfilledResult<TestRedis>).value) as [
      TestRedis,
      TestRedis,
      TestRedis,
      TestRedis,
      TestRedis & { port: number },
      TestRedis & { port: number },
    ];
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('passes on a Redis with noeviction and appendonly (the test Redis, as mailmoat manages it)', async () => {
    await expect(checkRedisServer({ socketPath: inject('services').redisSocket }, { prefix: 'mailmoat' })).resolves.toEqual({
      maxmemoryPolicy: 'noeviction',
      warnings: [],
    });
  });

  it('refuses a Redis that may evict keys, saying what to change', async () => {
    await expect(checkRedisServer({ socketPath: lru.socketPath! })).rejects.toThrow(evictionMessage(`unix:${lru.socketPath}`, 'allkeys-lru'));
  });

  it('reads the policy from INFO when CONFIG is disabled', async () => {
    await expect(checkRedisServer({ socketPath: lruNoConfig.socketPath! })).rejects.toThrow(evictionMessage(`unix:${lruNoConfig.socketPath}`, 'allkeys-lru'));
    const ok = await checkRedisServer({ socketPath: noevictionNoConfig.socketPath! });
    expect(ok.maxmemoryPolicy).toBe('noeviction');
    expect(ok.warnings).toEqual([expect.stringContaining('runs without appendonly')]);
  });

  it('names a URL target without its password', async () => {
    const url = `redis://:s3cret-pw@127.0.0.1:${withPassword.port}/0`;
    const err = await checkRedisServer({ url }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(evictionMessage(`redis://127.0.0.1:${withPassword.port}/0`, 'volatile-lru'));
    expect((err as Error).message).not.toContain('s3cret');
    // a wrong password: refused, without echoing it
    const wrong = await checkRedisServer({ url: `redis://:nope-pw@127.0.0.1:${withPassword.port}` }).catch((e: Error) => e);
    expect((wrong as Error).message).toMatch(/^cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: /);
    expect((wrong as Error).message).not.toContain('nope-pw');
  });

  it('says so when Redis cannot be reached', async () => {
    await expect(checkRedisServer({ socketPath: '/nonexistent/redis.sock' }, { timeoutMs: 2_000 })).rejects.toThrow(
      /^cannot reach Redis at unix:\/nonexistent\/redis\.sock: .*ENOENT/,
    );
  });

  it('refuses a Cluster node used as a plain server, and a Cluster prefix without a hash tag', async () => {
    await expect(checkRedisServer({ url: `redis://127.0.0.1:${cluster.port}` })).rejects.toThrow(
      `Redis at redis://127.0.0.1:${cluster.port} is a Redis Cluster node: set redis.cluster: true (with redis.url naming any node) and a prefix with a hash tag, e.g. redis.prefix: "{mailmoat}"`,
    );
    await expect(checkRedisServer({ url: `redis://127.0.0.1:${cluster.port}`, cluster: true }, { prefix: 'mailmoat' })).rejects.toThrow(
      'redis.prefix "mailmoat" has no hash tag: on a Redis Cluster every key of mailmoat must hash to one slot; use a prefix such as "{mailmoat}"',
    );
    await expect(checkRedisServer({ url: `redis://127.0.0.1:${cluster.port}`, cluster: true }, { prefix: '{mailmoat}' })).resolves.toMatchObject({
      maxmemoryPolicy: 'noeviction',
    });
  });

  it('checks every master of a Cluster', async () => {
    const seed = `redis://127.0.0.1:${lruCluster.port}`;
    await expect(checkRedisServer({ url: seed, cluster: true }, { prefix: '{mailmoat}' })).rejects.toThrow(
      evictionMessage(`127.0.0.1:${lruCluster.port} (a master of the Redis Cluster found through ${seed})`, 'allkeys-lfu'),
    );
  });
});
