// The engines the gateway talks to, private to one bench run: Redis, clamd (test signatures unless
// told otherwise) and spamd, started with the same code `mailmoat start` uses (managed.ts), so the
// bench measures the engines as mailmoat runs them. Plus a scripted DNS server, so any stage that
// looks something up (SPF, DKIM, DMARC, DNSBL) gets a fast local answer instead of a timeout, and a
// private PostgreSQL (services/postgres.ts, fsync on: its durability costs are part of what the
// cluster rows measure) in which each cluster gateway gets a database of its own.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Logger } from '../../gateway/log.ts';
import { freePort, startManagedClamd, startManagedRedis, startManagedSpamd, type SupervisedService } from '../../gateway/services/managed.ts';
import { postgresBinDir, startManagedPostgres } from '../../gateway/services/postgres.ts';
import { startFakeDns, type FakeDns } from '../../test/support/fake-dns.ts';

export interface Engines {
  redisSocket: string;
  clamdSocket: string;
  spamd: { host: string; port: number };
  dnsAddress: string;
  /** The private PostgreSQL: superuser URL (database "postgres") and server version. */
  postgres: { url: string; version: string };
  /** pids for the usage sampler (a supervised daemon may be restarted, so read them late). */
  pids(): { redis: number[]; clamd: number[]; spamd: number[]; postgres: number[] };
  dnsQueries(): number;
  stop(): Promise<void>;
}

/** The sender's domain publishes SPF for 127.0.0.1 and a DMARC record; everything else is NXDOMAIN. */
const ZONE = {
  'sender.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'], MX: [{ exchange: 'mx.sender.test', priority: 10 }], A: ['127.0.0.1'] },
  'client.sender.test': { A: ['127.0.0.1'] },
  '_dmarc.sender.test': { TXT: ['v=DMARC1; p=none'] },
  '1.0.0.127.in-addr.arpa': { PTR: ['client.sender.test'] },
};

export async function startEngines(o: { dir: string; clamavDb: string; logger: Logger }): Promise<Engines> {
  const spamdPort = await freePort();
  const postgresPort = await freePort();
  const started = await Promise.allSettled([
    startManagedRedis({ dir: join(o.dir, 'redis'), logger: o.logger }),
    startManagedClamd({ dir: join(o.dir, 'clamd'), databaseDir: o.clamavDb, logger: o.logger }),
    startManagedSpamd({ dir: join(o.dir, 'spamd'), port: spamdPort, logger: o.logger }),
    startFakeDns(ZONE),
    startManagedPostgres({ dir: join(o.dir, 'postgres'), port: postgresPort, logger: o.logger }),
  ]);
  const stopAll = async () => {
    await Promise.allSettled(started.map((s) => (s.status === 'fulfilled' ? ('stop' in s.value ? s.value.stop() : s.value.close()) : undefined)));
  };
  const failures = started.flatMap((s) => (s.status === 'rejected' ? [String((s.reason as Error)?.message ?? s.reason)] : []));
  if (failures.length > 0) {
    await stopAll();
    throw new Error(`could not start the engines:\n${failures.join('\n')}`);
  }
  const [redis, clamd, spamd, dns, postgres] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [
    SupervisedService & { socketPath: string },
    SupervisedService & { socketPath: string },
    SupervisedService & { host: string; port: number },
    FakeDns,
    SupervisedService & { url: string },
  ];
  const pidsOf = (s: SupervisedService) => (s.pid ? [s.pid] : []);
  return {
    redisSocket: redis.socketPath,
    clamdSocket: clamd.socketPath,
    spamd: { host: spamd.host, port: spamd.port },
    dnsAddress: dns.address,
    postgres: { url: postgres.url, version: postgresVersion() },
    pids: () => ({ redis: pidsOf(redis), clamd: pidsOf(clamd), spamd: pidsOf(spamd), postgres: pidsOf(postgres) }),
    dnsQueries: () => dns.queries.length,
    async stop() {
      await stopAll();
    },
  };
}

function postgresVersion(): string {
  try {
    return execFileSync(join(postgresBinDir(), 'postgres'), ['--version'], { encoding: 'utf8' })
      .trim()
      .replace(/^postgres \(PostgreSQL\) /, '')
      .split(' ')[0];
  } catch {
    return '?';
  }
}
