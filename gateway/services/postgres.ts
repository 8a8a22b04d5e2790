// A private PostgreSQL for the test suite and the cluster demo: a fresh cluster (initdb) in its own
// directory, listening on 127.0.0.1:<port> and a unix socket in that directory only. Debian's
// `postgresql` package supplies the binaries; its system service is never used. PostgreSQL refuses
// to run as root, so as root the cluster runs as the `postgres` user.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { makeServiceDir, startSupervised, type SupervisedService } from './supervisor.ts';

export interface ManagedPostgresOptions {
  dir: string;
  port: number;
  logger: Logger;
  /**
   * Turns fsync off: for throw-away test clusters only, where PostgreSQL's own crash safety is
   * not what is being tested and fsync would dominate the run time.
   */
  unsafeNoFsync?: boolean;
  readyTimeoutMs?: number;
}

/** The newest PostgreSQL server binaries Debian installed (/usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => /^\d+$/.test(d))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const found = majors.map((m) => join(root, m, 'bin')).find((d) => existsSync(join(d, 'postgres')));
  if (!found) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (Debian package "postgresql")');
  return found;
}

export async function startManagedPostgres(o: ManagedPostgresOptions): Promise<SupervisedService & { url: string }> {
  await makeServiceDir(o.dir);
  const bin = postgresBinDir();
  const data = join(o.dir, 'data');
  const runAs = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (runAs) chownSync(o.dir, runAs.uid, runAs.gid);
  if (!existsSync(join(data, 'PG_VERSION'))) {
    execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...runAs,
    });
  }
  const url = `postgres://postgres@127.0.0.1:${o.port}/postgres`;
  const settings = ['-c', `listen_addresses=127.0.0.1`, '-c', `unix_socket_directories=${o.dir}`, '-c', 'max_connections=200'];
  if (o.unsafeNoFsync) settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const service = await startSupervised({
    name: 'postgres',
    command: join(bin, 'postgres'),
    args: ['-D', data, '-p', String(o.port), ...settings],
    dir: o.dir,
    logFile: join(o.dir, 'postgres.log'),
    pidFile: join(o.dir, 'postgres.pid'),
    cmdlineMarkers: ['postgres', data],
    probe: () => postgresPing(url),
    readyTimeoutMs: o.readyTimeoutMs ?? 30_000,
    ...(runAs ? { runAs } : {}),
    logger: o.logger,
  });
  return Object.assign(service, { url });
}

async function postgresPing(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
}

function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}
