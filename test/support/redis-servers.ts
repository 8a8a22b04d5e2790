// Private, throw-away redis-server processes for tests that need a Redis configured differently
// from the shared test Redis (another maxmemory-policy, CONFIG renamed, a password, a one-node
// Redis Cluster, a Sentinel). Each lives in a temp dir and is killed by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../gateway/services/managed.ts';

export interface TestRedis {
  dir: string;
  /** Set when started on a unix socket. */
  socketPath?: string;
  /** Set when started on TCP (127.0.0.1). */
  port?: number;
  stop(): Promise<void>;
}

async function waitFor(what: string, probe: () => Promise<boolean>, child: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}):\n${log()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`${what} not ready within ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ping(o: { path: string } | { port: number }): Promise<boolean> {
  const client = new Redis({ ...o, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

function launch(args: string[], dir: string): { child: ChildProcess; log: () => string } {
  let output = '';
  const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  return { child, log: () => output.slice(-4000) };
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
}

/** A redis-server with extra arguments, on a unix socket in a temp dir (or on TCP with `tcp`). */
export async function startTestRedis(extraArgs: string[], o: { tcp?: boolean; password?: string } = {}): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-redis-'));
  const socketPath = join(dir, 'r.sock');
  const port = o.tcp ? await freePort() : 0;
  const { child, log } = launch(
    [
      '--port',
      String(port),
      ...(o.tcp ? ['--bind', '127.0.0.1'] : ['--unixsocket', socketPath, '--unixsocketperm', '700']),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      ...extraArgs,
    ],
    dir,
  );
  const stop = stopper(child, dir);
  try {
    const where = o.tcp ? { port, ...(o.password ? { password: o.password } : {}) } : { path: socketPath };
    await waitFor('redis-server', () => ping(where as { port: number }), child, log);
  } catch (err) {
    await stop();
    throw err;
  }
  return o.tcp ? { dir, port, stop } : { dir, socketPath, stop };
}

/** A Redis Cluster of one node that owns every slot: cross-slot commands fail as on a real cluster. */
export async function startOneNodeCluster(extraArgs: string[] = []): Promise<TestRedis & { port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-cluster-'));
  const port = await freePort();
  const busPort = await freePort();
  const { child, log } = launch(
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      // A lone node does not know its own address (it learns it from peers): announce it.
      '--cluster-announce-ip',
      '127.0.0.1',
      '--cluster-port',
      String(busPort),
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      ...extraArgs,
    ],
    dir,
  );
  const stop = stopper(child, dir);
  try {
    await waitFor('redis-server (cluster)', () => ping({ port }), child, log);
    const admin = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
    try {
      await admin.connect();
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      await waitFor('cluster_state:ok', async () => /cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO'))), child, log);
    } finally {
      admin.disconnect();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, port, stop };
}

/** A Redis master on TCP and one Sentinel watching it under `name`. */
export async function startSentinelPair(
  name: string,
  masterArgs: string[] = [],
): Promise<{ master: TestRedis & { port: number }; sentinelPort: number; stop(): Promise<void> }> {
  const master = await startTestRedis(masterArgs, { tcp: true });
  const dir = await mkdtemp(join(tmpdir(), 'mm-sentinel-'));
  const sentinelPort = await freePort();
  // Sentinel rewrites its config file: it must be a file of its own, writable.
  const conf = join(dir, 'sentinel.conf');
  await writeFile(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${name} 127.0.0.1 ${master.port} 1\n`);
  const { child, log } = launch([conf, '--sentinel'], dir);
  const stopSentinel = stopper(child, dir);
  const stop = async () => {
    await stopSentinel();
    await master.stop();
  };
  try {
    await waitFor(
      'redis sentinel',
      async () => {
        const s = new Redis({ port: sentinelPort, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        s.on('error', () => {});
        try {
          await s.connect();
          const addr = (await s.call('SENTINEL', 'get-master-addr-by-name', name)) as string[] | null;
          return Array.isArray(addr) && Number(addr[1]) === master.port;
        } finally {
          s.disconnect();
        }
      },
      child,
      log,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { master: master as TestRedis & { port: number }, sentinelPort, stop };
}
