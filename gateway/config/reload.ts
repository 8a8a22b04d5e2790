// Reloading the config file in a running process (SIGHUP, `mailmoat reload`): hosted domains,
// downstreams, recipients, checks, lists, policy and rules, delivery and spam settings, TLS
// certificates. A file that does not validate changes nothing (the log names the key); a key that
// cannot change without a restart keeps its running value, and the log says so.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../log.ts';
import { ConfigError, loadConfig } from './load.ts';
import type { LiveConfig } from './live.ts';
import type { Config } from './schema.ts';

/**
 * Keys read once at start: listeners and their addresses, engines and their clients, queues and
 * workers, the console and health servers, the resolver, the URL lists, the ARC key.
 */
export const RESTART_KEYS: readonly (readonly string[])[] = [
  ['dataDir'],
  ['smtp', 'listen'],
  ['submission', 'enabled'],
  ['submission', 'listen'],
  ['submission', 'listeners'],
  ['submission', 'backend'],
  ['submission', 'limits'],
  ['submission', 'authLockout'],
  ['submission', 'hijack'],
  ['redis'],
  ['database'],
  ['clamd'],
  ['spamd'],
  ['dns'],
  ['queue'],
  ['console'],
  ['health'],
  ['log'],
  ['demo'],
  ['urls'],
  ['authentication', 'arcSeal'],
  ['retention', 'checkEveryMinutes'],
];

const get = (o: unknown, path: readonly string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

function put<T>(o: T, path: readonly string[], value: unknown): T {
  const [head, ...rest] = path as [string, ...string[]];
  const copy = { ...(o as Record<string, unknown>) };
  copy[head] = rest.length === 0 ? value : put(copy[head] ?? {}, rest, value);
  return copy as T;
}

/** The config to run with: `next`, but with the running value of every restart-only key that changed. */
export function planReload(running: Config, next: Config): { config: Config; needsRestart: string[] } {
  let config = next;
  const needsRestart: string[] = [];
  const keep = (path: readonly string[]) => {
    needsRestart.push(path.join('.'));
    config = put(config, path, get(running, path));
  };
  for (const path of RESTART_KEYS) if (!isDeepStrictEqual(get(running, path), get(next, path))) keep(path);
  // STARTTLS is offered, or not, from the listener's start.
  if ((running.tls.certificates.length === 0) !== (next.tls.certificates.length === 0)) keep(['tls']);
  return { config, needsRestart };
}

/** Re-reads `file` into `live`; never throws: every outcome is logged. */
export function reloadConfig(file: string, live: LiveConfig, logger: Logger): 'reloaded' | 'refused' {
  let next: Config;
  try {
    next = loadConfig(file);
  } catch (err) {
    const why = err instanceof ConfigError ? err.message : String(err);
    logger.error({ file, error: why }, `config not reloaded, the running config stays in use: ${why}`);
    return 'refused';
  }
  const { config, needsRestart } = planReload(live.current, next);
  for (const key of needsRestart) logger.warn({ key }, `config key ${key} changed but needs a restart; the running value stays`);
  try {
    live.swap(config);
  } catch (err) {
    logger.error({ err }, 'config reload failed while applying it');
    return 'refused';
  }
  logger.info({ file, domains: Object.keys(config.domains), needsRestart }, 'config reloaded');
  return 'reloaded';
}
