// The running config, replaceable while the process runs (SIGHUP, `mailmoat reload`).
//
// Most of the gateway reads `deps.config.<key>` when it needs it (per message, per job, per
// request), so the least invasive way to reload is to hand every role one object whose keys always
// come from the newest config: a Proxy over a swappable snapshot. Code that must not change its mind
// half-way (an SMTP session finishes with the config it started with) takes a snapshot() and
// listens with onReload(). Values captured at start (engines, listeners, queues) cannot change
// this way: gateway/config/reload.ts keeps them and says "needs a restart".
import type { Config } from './schema.ts';

const SNAPSHOT = Symbol('mailmoat.config.snapshot');
const LISTENERS = Symbol('mailmoat.config.listeners');

interface Live {
  current: Config;
  listeners: Set<(next: Config) => void>;
}

export interface LiveConfig {
  /** Give this to the roles: every read sees the newest config. */
  readonly config: Config;
  readonly current: Config;
  /** Makes `next` the config of everything that reads from now on, then tells the listeners. */
  swap(next: Config): void;
}

export function liveConfig(initial: Config): LiveConfig {
  const live: Live = { current: initial, listeners: new Set() };
  const config = new Proxy({} as Config, {
    get: (_t, key) => (key === SNAPSHOT ? live.current : key === LISTENERS ? live.listeners : (live.current as unknown as Record<PropertyKey, unknown>)[key]),
    has: (_t, key) => key in live.current,
    ownKeys: () => Reflect.ownKeys(live.current),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(live.current, key);
      return d && { ...d, configurable: true };
    },
    set: () => false,
  });
  return {
    config,
    get current() {
      return live.current;
    },
    swap(next) {
      live.current = next;
      for (const listener of live.listeners) listener(next);
    },
  };
}

/** The config as it is now, never changing under the caller (a plain config is its own snapshot). */
export function snapshot(config: Config): Config {
  return (config as unknown as Record<symbol, Config | undefined>)[SNAPSHOT] ?? config;
}

/** Calls `listener` with each new config of a live config; returns the unsubscribe (a plain config never changes). */
export function onReload(config: Config, listener: (next: Config) => void): () => void {
  const listeners = (config as unknown as Record<symbol, Set<(next: Config) => void> | undefined>)[LISTENERS];
  listeners?.add(listener);
  return () => listeners?.delete(listener);
}
