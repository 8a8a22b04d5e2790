// A private Redis for the single-machine deployment: BullMQ's queues live here. Unix socket only
// (no TCP port to firewall or to collide with a system Redis), AOF on so a crash loses at most
// about a second of queue writes (the spool on disk stays the source of truth), and noeviction
// because an evicted job key is a silently lost message.
import net from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { assertSocketPathFits, makeServiceDir, startSupervised, type SupervisedService } from './supervisor.ts';

export interface ManagedRedisOptions {
  dir: string;
  logger: Logger;
  /** Defaults to `redis-server` on PATH. */
  binary?: string;
  readyTimeoutMs?: number;
}

export async function startManagedRedis(o: ManagedRedisOptions): Promise<SupervisedService & { socketPath: string }> {
  await makeServiceDir(o.dir);
  const socketPath = join(o.dir, 'redis.sock');
  assertSocketPathFits(socketPath);
  const binary = o.binary ?? 'redis-server';
  const args = [
    '--port',
    '0',
    '--unixsocket',
    socketPath,
    '--unixsocketperm',
    '700',
    '--dir',
    o.dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    // AOF is the durability mechanism; RDB snapshots would only add fork pauses.
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
  ];
  const service = await startSupervised({
    name: 'redis',
    command: binary,
    args,
    dir: o.dir,
    logFile: join(o.dir, 'redis.log'),
    pidFile: join(o.dir, 'redis.pid'),
    // Redis rewrites its process title to "redis-server unixsocket:<path>".
    cmdlineMarkers: ['redis-server', socketPath],
    probe: () => redisPing(socketPath, 1000),
    readyTimeoutMs: o.readyTimeoutMs ?? 15_000,
    logger: o.logger,
  });
  return Object.assign(service, { socketPath });
}

/**
 * PING over the socket with the inline protocol. While Redis replays its AOF it answers
 * `-LOADING`, which is "not ready yet", not success.
 */
export function redisPing(socketPath: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let reply = '';
    const socket = net.connect({ path: socketPath });
    const timer = setTimeout(() => socket.destroy(new Error(`redis did not answer PING within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const line = reply.split('\r\n')[0] ?? '';
      if (line === '+PONG') resolve();
      else reject(new Error(`redis answered PING with ${JSON.stringify(line.slice(0, 200))}`));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}
