// Where the engines are, as the config says: one place for the rule. Configured engines are where
// the config points; managed ones (started by `mailmoat start`) live at fixed places under the
// data dir, so every other role and command on the machine can attach to them.
import net from 'node:net';
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
export const managedEngineDir = (config: Config, name: 'redis' | 'clamd' | 'spamd'): string => path.join(config.dataDir, 'engines', name);

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

/**
 * Only `mailmoat start` starts managed engines; the roles attach to them at their fixed places.
 * A worker or console whose config says `managed: true` with nothing there (a copied one-machine
 * config on a cluster node) would fail every scan and quarantine everything as unscannable: this
 * names what to change instead, so the role can refuse to start. [] when every scanner is served.
 */
export async function unservedManagedScanners(config: Config, endpoints: Endpoints): Promise<string[]> {
  const scanners = [
    { name: 'clamd', managed: configuredEngine(config.clamd) === undefined, address: endpoints.clamd },
    { name: 'spamd', managed: config.spamd.enabled && configuredEngine(config.spamd) === undefined, address: endpoints.spamd },
  ];
  const problems: string[] = [];
  for (const s of scanners) {
    if (!s.managed || (await answers(s.address))) continue;
    const where = 'socketPath' in s.address ? s.address.socketPath : `${s.address.host}:${s.address.port}`;
    problems.push(
      `${s.name}: managed: true, but no ${s.name} listens at ${where}; only \`mailmoat start\` runs managed engines: set ${s.name}.socket or ${s.name}.host/port to the ${s.name} this node runs (Debian: ${s.name === 'clamd' ? 'clamav-daemon, /run/clamav/clamd.ctl' : 'spamd, 127.0.0.1:783'})`,
    );
  }
  return problems;
}

/** Accepts a connection within 2 s. */
function answers(address: SocketOrTcp): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = 'socketPath' in address ? net.connect(address.socketPath) : net.connect(address.port, address.host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
