// Local daemons that mailmoat starts and supervises itself: one Redis for the queues, clamd and
// spamd for scanning. Used by the single-machine start-up (`managed: true`) and by the test suite.
// Each one lives in its own directory (socket, pidfile, logs, data) and is restarted with backoff
// when it dies; see supervisor.ts.
import net from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { reapStaleDaemon } from './supervisor.ts';

export type { ManagedService, SupervisedService } from './supervisor.ts';
export { startManagedRedis, redisPing, type ManagedRedisOptions } from './redis.ts';
export { startManagedClamd, chooseClamavDatabase, type ManagedClamdOptions } from './clamd.ts';
export { startManagedSpamd, type ManagedSpamdOptions } from './spamd.ts';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process could take it before the
 * daemon binds; the daemon then fails to start with a clear log line rather than misbehaving.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

/**
 * Stops daemons that a crashed run left in `dir` (one service dir as given to the start
 * functions). Each start function does this for its own pidfile; this is for sweeping old run
 * directories before deleting them.
 */
export async function reapStaleServices(dir: string, logger: Logger): Promise<void> {
  for (const name of ['redis', 'clamd', 'spamd', 'postgres']) {
    await reapStaleDaemon({ name, pidFile: join(dir, `${name}.pid`), markers: [name, dir], logger });
  }
}
