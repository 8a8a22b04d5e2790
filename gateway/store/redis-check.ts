// Checked once at the start of every role that uses Redis (smtp, worker, console, start), before
// anything is queued: a Redis that may evict keys would silently lose queued messages, and a
// Redis Cluster reached as a plain server (or with a prefix that spreads mailmoat's keys over
// several slots) fails later, message by message. Both are refused here, with what to change.
//
// maxmemory-policy is read with CONFIG GET; managed Redis services often disable or rename
// CONFIG, so INFO memory (field maxmemory_policy) is the fallback.
import type { Cluster, Redis } from 'ioredis';
import { assertPrefixFits, describeRedisTarget, isClusterTarget, openRedis, type RedisTarget } from './queue.ts';

export class RedisCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisCheckError';
  }
}

export interface RedisCheckResult {
  /** The policy found (always "noeviction" when the check passed). */
  maxmemoryPolicy: string;
  /** Things worth a log line at start, not worth refusing to start over. */
  warnings: string[];
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Connects to the target (every master of a Cluster), and throws a RedisCheckError that says
 * what to change when mailmoat must not run on it: unreachable, maxmemory-policy other than
 * noeviction, a Cluster node not configured as one, or (with `prefix`) a Cluster prefix
 * without a hash tag.
 */
export async function checkRedisServer(target: RedisTarget, o: { prefix?: string; timeoutMs?: number } = {}): Promise<RedisCheckResult> {
  const where = describeRedisTarget(target);
  if (o.prefix !== undefined) {
    try {
      assertPrefixFits(target, o.prefix);
    } catch (err) {
      throw new RedisCheckError((err as Error).message);
    }
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // One try, no reconnection: this is a check, the roles' own connections do the waiting.
  const client = openRedis(target, 'client', {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    sentinelRetryStrategy: () => null,
    clusterRetryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  let lastError: unknown;
  client.on('error', (err: unknown) => (lastError ??= err)); // the cause, reported by inspect()
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisCheckError(`Redis at ${where} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([inspect(client, target, where, () => lastError), deadline]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

async function inspect(client: Redis | Cluster, target: RedisTarget, where: string, cause: () => unknown): Promise<RedisCheckResult> {
  try {
    await client.connect();
  } catch (err) {
    // connect() often rejects with a bare "Connection is closed"; the error event says why.
    throw new RedisCheckError(`cannot reach Redis at ${where}: ${errorText(cause() ?? err)}`);
  }
  const cluster = isClusterTarget(target);
  const servers: { node: Redis; where: string }[] = cluster
    ? (client as Cluster).nodes('master').map((node) => ({
        node,
        where: `${node.options.host}:${node.options.port} (a master of the Redis Cluster found through ${describeRedisTarget({ url: target.url })})`,
      }))
    : [{ node: client as Redis, where }];
  if (servers.length === 0) throw new RedisCheckError(`Redis at ${where} has no reachable master node`);

  if (!cluster) {
    const info = await infoSection(servers[0].node, 'cluster');
    if (info?.get('cluster_enabled') === '1') {
      throw new RedisCheckError(
        `Redis at ${where} is a Redis Cluster node: set redis.cluster: true (with redis.url naming any node) and a prefix with a hash tag, e.g. redis.prefix: "{mailmoat}"`,
      );
    }
  }

  const warnings: string[] = [];
  for (const s of servers) {
    const policy = await maxmemoryPolicy(s.node, s.where);
    if (policy !== 'noeviction') {
      throw new RedisCheckError(
        `Redis at ${s.where} has maxmemory-policy ${policy}; mailmoat needs noeviction: an evicted job is a lost message (set "maxmemory-policy noeviction" in redis.conf)`,
      );
    }
    const persistence = await infoSection(s.node, 'persistence');
    if (persistence?.get('aof_enabled') === '0') {
      warnings.push(
        `Redis at ${s.where} runs without appendonly: if it restarts, the queued jobs are gone until the workers queue the spooled messages again at their next start (set "appendonly yes" in redis.conf)`,
      );
    }
  }
  return { maxmemoryPolicy: 'noeviction', warnings };
}

/** CONFIG GET, else INFO memory (CONFIG is often disabled or renamed on managed Redis services). */
async function maxmemoryPolicy(node: Redis, where: string): Promise<string> {
  let configFailure: string;
  try {
    const reply = (await node.config('GET', 'maxmemory-policy')) as unknown;
    if (Array.isArray(reply) && typeof reply[1] === 'string') return reply[1];
    configFailure = 'CONFIG GET returned nothing';
  } catch (err) {
    configFailure = `CONFIG GET failed: ${errorText(err)}`;
  }
  let infoFailure: string;
  try {
    const policy = (await infoSection(node, 'memory', true))?.get('maxmemory_policy');
    if (policy) return policy;
    infoFailure = 'INFO memory has no maxmemory_policy';
  } catch (err) {
    infoFailure = `INFO memory failed: ${errorText(err)}`;
  }
  throw new RedisCheckError(
    `cannot read the maxmemory-policy of Redis at ${where} (${configFailure}; ${infoFailure}); mailmoat needs noeviction and must be able to check it: allow CONFIG GET or INFO to its Redis user`,
  );
}

/** The fields of one INFO section; undefined when INFO is refused (unless `rethrow`). */
async function infoSection(node: Redis, section: string, rethrow = false): Promise<Map<string, string> | undefined> {
  let text: string;
  try {
    text = await node.info(section);
  } catch (err) {
    if (rethrow) throw err;
    return undefined;
  }
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** An error's message without anything that looks like credentials in a URL. */
function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\/\/[^/@\s]*@/g, '//***@').slice(0, 300);
}
