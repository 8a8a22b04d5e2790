// Where the engines are, as the config says: one place for the rule. Configured engines are where
// the config points; managed ones (started by `mailmoat start`) live at fixed places under the
// data dir, so every other role and command on the machine can attach to them.
import path from 'node:path';
import type { Config } from './config/schema.ts';
import type { RedisTarget } from './store/queue.ts';

export type SocketOrTcp = { socketPath: string } | { host: string; port: number };

export interface Endpoints {
  redis: RedisTarget;
  clamd: SocketOrTcp;
  spamd: SocketOrTcp;
}

/** The folder of a managed engine: its config, socket, pid file and log. */
export const managedEngineDir = (config: Config, name: 'redis' | 'clamd' | 'spamd'): string =>
  path.join(config.dataDir, 'engines', name);

/** The Redis the config names (url, url + cluster, sentinel or socket); undefined: a managed one. */
export function configuredRedis(config: Config): RedisTarget | undefined {
  const r = config.redis;
  if (r.url) return r.cluster ? { url: r.url, cluster: true } : { url: r.url };
  if (r.sentinel) {
    const { name, sentinels, password, sentinelPassword } = r.sentinel;
    return {
      sentinel: {
        name,
        sentinels: sentinels.map(({ host, port }) => ({ host, port })),
        ...(password !== undefined ? { password } : {}),
        ...(sentinelPassword !== undefined ? { sentinelPassword } : {}),
      },
    };
  }
  if (r.socket) return { socketPath: r.socket };
  return undefined;
}

export function configuredEngine(e: { socket?: string; host?: string; port?: number }): SocketOrTcp | undefined {
  if (e.socket) return { socketPath: e.socket };
  if (e.host && e.port) return { host: e.host, port: e.port };
  return undefined;
}

/**
 * Where the spamd that mailmoat manages listens: a unix socket in its folder (a fixed TCP port
 * collides with a second gateway or Debian's spamd on the machine), or 127.0.0.1:spamd.port.
 */
export const managedSpamdAddress = (config: Config): SocketOrTcp =>
  config.spamd.port !== undefined ? { host: '127.0.0.1', port: config.spamd.port } : { socketPath: path.join(managedEngineDir(config, 'spamd'), 'spamd.sock') };

/** Endpoints for a role that attaches to running engines (started by the admin or by `mailmoat start`). */
export function attachedEndpoints(config: Config): Endpoints {
  return {
    redis: configuredRedis(config) ?? { socketPath: path.join(managedEngineDir(config, 'redis'), 'redis.sock') },
    clamd: configuredEngine(config.clamd) ?? { socketPath: path.join(managedEngineDir(config, 'clamd'), 'clamd.sock') },
    spamd: configuredEngine(config.spamd) ?? managedSpamdAddress(config),
  };
}
