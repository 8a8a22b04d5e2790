// vitest globalSetup: ONE private Redis, clamd and spamd for the whole test run, in a fresh
// temp dir, started in parallel and stopped in teardown. Tests reach them with
// `inject('services')`. Run dirs of earlier runs whose vitest died are swept first, daemons
// included, so a crashed run does not leave daemons behind for ever.
import { existsSync, readFileSync, readdirSync, statSync, type Dirent } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { createLogger, silentLogger, type Logger } from '../../gateway/log.ts';
import { freePort, reapStaleServices, startManagedClamd, startManagedRedis, startManagedSpamd, type ManagedService } from '../../gateway/services/managed.ts';
import { startManagedPostgres } from '../../gateway/services/postgres.ts';
import { isAlive, readCmdline } from '../../gateway/services/supervisor.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    services: {
      redisSocket: string;
      clamdSocket: string;
      spamdHost: string;
      spamdPort: number;
      clamavDb: string;
      /** A private PostgreSQL (superuser, trust auth on 127.0.0.1); tests create databases of their own in it. */
      postgresUrl: string;
      dir: string;
    };
  }
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TEST_CLAMAV_DB = join(REPO_ROOT, 'deploy', 'clamav-test-db');
const RUN_DIR_PREFIX = 'mailmoat-test-';
const OWNER_FILE = 'owner.pid';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = createLogger({ name: 'test-services', level: process.env.MAILMOAT_TEST_LOG_LEVEL ?? 'warn' });
  await sweepAbandonedRunDirs(logger);
  const dir = await createRunDir('run');
  const port = await freePort();
  const started = await Promise.allSettled([
    startManagedRedis({ dir: join(dir, 'redis'), logger }),
    startManagedClamd({ dir: join(dir, 'clamd'), databaseDir: TEST_CLAMAV_DB, logger }),
    startManagedSpamd({ dir: join(dir, 'spamd'), port, logger, allowTell: true }),
    startManagedPostgres({ dir: join(dir, 'postgres'), port: await freePort(), logger, unsafeNoFsync: true }),
  ]);
  const services = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value as ManagedService] : []));
  const teardown = async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    if (!process.env.MAILMOAT_KEEP_TEST_DIR) await removeRunDir(dir, logger);
  };
  const [redis, clamd, spamd, postgres] = started;
  if (redis.status !== 'fulfilled' || clamd.status !== 'fulfilled' || spamd.status !== 'fulfilled' || postgres.status !== 'fulfilled') {
    const reasons = started.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.message ?? r.reason)] : []));
    await teardown();
    throw new Error(`could not start the test services:\n${reasons.join('\n\n')}`);
  }
  project.provide('services', {
    redisSocket: redis.value.socketPath,
    clamdSocket: clamd.value.socketPath,
    spamdHost: spamd.value.host,
    spamdPort: spamd.value.port,
    clamavDb: TEST_CLAMAV_DB,
    postgresUrl: (postgres.value as { url: string }).url,
    dir,
  });
  return teardown;
}

/**
 * A fresh dir under the system temp dir, marked with the pid of the process that owns it so a
 * later sweep can tell abandoned dirs from those of a run still going on. Mode 0711: spamd's
 * unprivileged children must be able to pass through to their Bayes store.
 */
export async function createRunDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${RUN_DIR_PREFIX}${label}-`));
  await chmod(dir, 0o711);
  await writeFile(join(dir, OWNER_FILE), `${process.pid}\n`);
  return dir;
}

/**
 * Deletes a run dir, first stopping any daemon whose pidfile is still in it: deleting the
 * pidfile of a daemon that a failed test did not stop would orphan it for good.
 */
export async function removeRunDir(dir: string, logger: Logger = silentLogger()): Promise<void> {
  for (const serviceDir of dirsWithPidfiles(dir, 4)) await reapStaleServices(serviceDir, logger);
  await rm(dir, { recursive: true, force: true });
}

function dirsWithPidfiles(dir: string, depth: number): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const found = entries.some((e) => e.isFile() && /^(redis|clamd|spamd)\.pid$/.test(e.name)) ? [dir] : [];
  if (depth === 0) return found;
  for (const e of entries) if (e.isDirectory()) found.push(...dirsWithPidfiles(join(dir, e.name), depth - 1));
  return found;
}

async function sweepAbandonedRunDirs(logger: Logger): Promise<void> {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(RUN_DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    if (!isAbandoned(dir)) continue;
    logger.warn({ dir }, 'sweeping a test run dir left by a crashed run');
    await removeRunDir(dir, logger);
  }
}

/** Abandoned: its owner process is gone (or is no longer a node process), and it is not brand new. */
function isAbandoned(dir: string): boolean {
  const ownerFile = join(dir, OWNER_FILE);
  if (!existsSync(ownerFile)) {
    // Between mkdtemp and writing the owner file; or not ours to judge. Only very old ones go.
    return Date.now() - statSync(dir).mtimeMs > 24 * 3600_000;
  }
  const pid = Number.parseInt(readFileSync(ownerFile, 'utf8'), 10);
  return !(Number.isInteger(pid) && isAlive(pid) && readCmdline(pid).includes('node'));
}
