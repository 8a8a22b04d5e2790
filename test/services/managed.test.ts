// The supervisor with real daemons: stop() leaves nothing behind, a killed daemon comes back,
// and a daemon orphaned by a crashed mailmoat is killed by the next start.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { silentLogger } from '../../gateway/log.ts';
import { chooseClamavDatabase, freePort, redisPing, startManagedClamd, startManagedRedis, startManagedSpamd } from '../../gateway/services/managed.ts';
import { isAlive, processGroupMembers, startSupervised } from '../../gateway/services/supervisor.ts';
import { ClamdClient } from '../../scanners/clamd.ts';
import { SpamdClient } from '../../scanners/spamd.ts';
import { createRunDir, removeRunDir } from '../support/global-setup.ts';

const services = inject('services');
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const logger = silentLogger();
let dir: string;

beforeAll(async () => {
  dir = await createRunDir('managed');
});
afterAll(async () => {
  await removeRunDir(dir);
});

const groupMembers = processGroupMembers;

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('freePort and chooseClamavDatabase', () => {
  it('gives a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort();
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise((r) => server.close(r));
  });

  it('uses the system database only when it holds real databases, and warns loudly otherwise', async () => {
    const systemDir = join(dir, 'fake-var-lib-clamav');
    await mkdir(systemDir, { recursive: true });
    const lines: string[] = [];
    const capture = pino(
      { level: 'warn' },
      {
        write: (l: string) => {
          lines.push(l);
        },
      },
    );
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(chooseClamavDatabase({ logger: capture, fallbackDir: services.clamavDb, systemDir })).toBe(services.clamavDb);
      expect(String(stderr.mock.calls[0]?.[0])).toMatch(/TEST signatures[\s\S]*NOT real malware/);
    } finally {
      stderr.mockRestore();
    }
    expect(lines.join('')).toMatch(/TEST SIGNATURES ONLY/);
    await writeFile(join(systemDir, 'main.cvd'), '');
    expect(chooseClamavDatabase({ logger: capture, fallbackDir: services.clamavDb, systemDir })).toBe(systemDir);
  });
});

describe('stop()', () => {
  it('leaves no redis, clamd or spamd process (workers included) and no pidfile behind', async () => {
    const port = await freePort();
    const base = join(dir, 'stop');
    const settled = await Promise.allSettled([
      startManagedRedis({ dir: join(base, 'redis'), logger }),
      startManagedClamd({ dir: join(base, 'clamd'), databaseDir: services.clamavDb, logger }),
      startManagedSpamd({ dir: join(base, 'spamd'), port, logger }),
    ]);
    const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (started.length < 3) {
      await Promise.all(started.map((s) => s.stop()));
      throw new Error(`start failed: ${settled.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('; ')}`);
    }
    const groups = started.map((s) => s.pid!);
    // spamd runs as a parent plus pre-forked children in the same group.
    await waitFor('spamd children', () => groupMembers(groups[2]!).length >= 2);
    await Promise.all(started.map((s) => s.stop()));
    for (const pgid of groups) expect(groupMembers(pgid)).toEqual([]);
    for (const name of ['redis', 'clamd', 'spamd']) expect(existsSync(join(base, name, `${name}.pid`))).toBe(false);
    expect(started.map((s) => s.pid)).toEqual([undefined, undefined, undefined]);
    await expect(started[0]!.stop()).resolves.toBeUndefined(); // idempotent
  });

  it('cleans up when a daemon fails to start, and says why', async () => {
    const emptyDb = join(dir, 'empty-db');
    await mkdir(emptyDb, { recursive: true });
    const err = await startManagedClamd({ dir: join(dir, 'bad-clamd'), databaseDir: emptyDb, logger }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/exited during start-up[\s\S]*last lines of its logs[\s\S]*database/i);
    expect(existsSync(join(dir, 'bad-clamd', 'clamd.pid'))).toBe(false);
  });
});

describe('supervision', () => {
  it('SIGKILLs a daemon (and its workers) that ignores SIGTERM past the deadline', async () => {
    const svcDir = join(dir, 'stubborn');
    await mkdir(svcDir, { recursive: true });
    // A shell that ignores SIGTERM and keeps a worker (sleep) in its process group.
    const svc = await startSupervised({
      name: 'stubborn',
      command: '/bin/sh',
      args: ['-c', `trap "" TERM; sleep 300 & while :; do sleep 0.1; done # ${svcDir}`],
      dir: svcDir,
      logFile: join(svcDir, 'stubborn.log'),
      pidFile: join(svcDir, 'stubborn.pid'),
      cmdlineMarkers: [svcDir],
      probe: async () => {},
      readyTimeoutMs: 5000,
      stopTimeoutMs: 500,
      logger,
    });
    const pgid = svc.pid!;
    await waitFor('worker', () => groupMembers(pgid).length >= 2);
    const t0 = Date.now();
    await svc.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(groupMembers(pgid)).toEqual([]);
  });

  it('restarts a killed redis, which answers again on the same socket', async () => {
    const redis = await startManagedRedis({ dir: join(dir, 'restart-redis'), logger });
    try {
      const first = redis.pid!;
      process.kill(first, 'SIGKILL');
      await waitFor('redis to come back', async () => redis.pid !== undefined && redis.pid !== first);
      await redisPing(redis.socketPath, 1000);
      expect(redis.restarts).toBe(1);
      expect(isAlive(first)).toBe(false);
      expect(readFileSync(join(dir, 'restart-redis', 'redis.pid'), 'utf8').trim()).toBe(String(redis.pid));
    } finally {
      await redis.stop();
    }
  });

  it('restarts a killed clamd despite the stale socket file it leaves', async () => {
    const clamd = await startManagedClamd({ dir: join(dir, 'restart-clamd'), databaseDir: services.clamavDb, logger });
    try {
      const first = clamd.pid!;
      process.kill(first, 'SIGKILL');
      await waitFor('clamd to come back', async () => clamd.pid !== undefined && clamd.pid !== first);
      await new ClamdClient({ socketPath: clamd.socketPath }, { timeoutMs: 2000 }).ping();
      expect(clamd.restarts).toBe(1);
    } finally {
      await clamd.stop();
    }
  });

  it('restarts a killed spamd and takes its orphaned children down with it', async () => {
    const spamd = await startManagedSpamd({ dir: join(dir, 'restart-spamd'), port: await freePort(), logger });
    try {
      const first = spamd.pid!;
      await waitFor('spamd children', () => groupMembers(first).length >= 2);
      process.kill(first, 'SIGKILL');
      await waitFor('old spamd group to vanish', () => groupMembers(first).length === 0, 10_000);
      await waitFor('spamd to come back', async () => spamd.pid !== undefined && spamd.pid !== first);
      await new SpamdClient({ host: spamd.host, port: spamd.port }, { timeoutMs: 5000 }).ping();
      expect(spamd.restarts).toBe(1);
    } finally {
      await spamd.stop();
    }
  });
});

describe('stale pidfiles', () => {
  it('kills a daemon left running by a crashed mailmoat before starting a new one', async () => {
    const redisDir = join(dir, 'crashed');
    // A separate mailmoat process starts redis, then dies by SIGKILL: no stop(), no exit handler.
    const script = join(dir, 'crash-helper.ts');
    const managedUrl = new URL('../../gateway/services/managed.ts', import.meta.url).href;
    const logUrl = new URL('../../gateway/log.ts', import.meta.url).href;
    await writeFile(
      script,
      [
        `import { startManagedRedis } from ${JSON.stringify(managedUrl)};`,
        `import { silentLogger } from ${JSON.stringify(logUrl)};`,
        `const r = await startManagedRedis({ dir: ${JSON.stringify(redisDir)}, logger: silentLogger() });`,
        'console.log(`READY ${r.pid}`);',
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const helper = spawn(join(REPO_ROOT, 'node_modules/.bin/node'), [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const orphan = await new Promise<number>((resolve, reject) => {
      helper.stdout.on('data', (d: Buffer) => {
        const m = /READY (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      helper.once('exit', (code) => reject(new Error(`helper exited early (${code})`)));
    });
    helper.kill('SIGKILL');
    await new Promise((r) => helper.once('exit', r));
    expect(isAlive(orphan)).toBe(true);

    const redis = await startManagedRedis({ dir: redisDir, logger });
    try {
      expect(isAlive(orphan)).toBe(false);
      expect(redis.pid).not.toBe(orphan);
      await redisPing(redis.socketPath, 1000);
    } finally {
      await redis.stop();
    }
  });

  it('leaves an unrelated process alone when a stale pidfile names it', async () => {
    const redisDir = join(dir, 'unrelated');
    await mkdir(redisDir, { recursive: true });
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await writeFile(join(redisDir, 'redis.pid'), `${bystander.pid}\n`);
      const redis = await startManagedRedis({ dir: redisDir, logger });
      await redis.stop();
      expect(isAlive(bystander.pid!)).toBe(true);
    } finally {
      bystander.kill('SIGKILL');
    }
  });
});
