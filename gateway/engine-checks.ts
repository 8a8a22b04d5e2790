// The checks every role's /healthz runs, and the engine-up gauges read at each scrape: one list,
// so that a smtp, worker and console node report the same things. Which of them take a node out
// of rotation depends on its role: a node leaves for faults that stop its own work, never for a
// shared engine it does not use (a console node stays while clamd is down: releases and lists
// still work; an SMTP node stays too: mail is accepted and waits in the queue for the scan).
import { statfs } from 'node:fs/promises';
import type { Config } from './config/schema.ts';
import type { Stores } from './deps.ts';
import type { Endpoints } from './endpoints.ts';
import type { JobQueue } from './store/queue.ts';
import { q } from './store/sql.ts';
import { ClamdClient } from '../scanners/clamd.ts';
import { SpamdClient } from '../scanners/spamd.ts';

export type Role = 'start' | 'smtp' | 'worker' | 'console';
export type EngineCheck = () => Promise<string>;

/** redis, database, spool (free space), clamd, spamd: each resolves with a short detail or throws why not. */
export function engineChecks(
  config: Config,
  stores: Pick<Stores, 'sql' | 'spool'>,
  queue: Pick<JobQueue, 'counts'>,
  endpoints: Pick<Endpoints, 'clamd' | 'spamd'>,
): Record<string, EngineCheck> {
  return {
    redis: async () => {
      const counts = await queue.counts();
      return `${Object.values(counts).reduce((n, states) => n + (states.waiting ?? 0) + (states.delayed ?? 0), 0)} jobs waiting`;
    },
    database: async () => {
      await stores.sql.one(q`SELECT 1`);
      return stores.sql.dialect;
    },
    spool: async () => {
      const s = await statfs(stores.spool.dir);
      const free = s.bavail * s.bsize;
      const needed = 2 * config.smtp.maxMessageBytes;
      if (free < needed) throw new Error(`only ${free} bytes free in the spool, less than ${needed}`);
      return `${Math.round(free / 1024 / 1024)} MB free`;
    },
    clamd: async () => {
      await new ClamdClient(endpoints.clamd, { timeoutMs: 3_000 }).ping();
      return 'PONG';
    },
    spamd: async () => {
      if (!config.spamd.enabled) return 'disabled';
      await new SpamdClient(endpoints.spamd, { timeoutMs: 3_000 }).ping();
      return 'PONG';
    },
  };
}

/** The checks whose failure makes a role's /healthz answer 503 (the others are reported only). */
export const CRITICAL: Record<Role, readonly string[]> = {
  start: ['redis', 'database', 'spool', 'clamd', 'spamd', 'smtp', 'console'],
  smtp: ['redis', 'database', 'spool', 'smtp'],
  worker: ['redis', 'database', 'spool', 'clamd', 'spamd'],
  console: ['database', 'spool', 'console'],
};

/** The engines behind mailmoat_engine_up. */
export const ENGINES = ['redis', 'database', 'clamd', 'spamd'] as const;
