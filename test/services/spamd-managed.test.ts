// The spamd that `mailmoat start` manages, as an administrator sees it in `ps` and `ss`: on a unix
// socket under the data dir (never a fixed TCP port), network tests as spamd.networkTests says,
// and no spamd at all when spamd.enabled is false.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, parseConfig } from '../../gateway/config/load.ts';
import type { Config } from '../../gateway/config/schema.ts';
import { attachedEndpoints } from '../../gateway/endpoints.ts';
import { silentLogger } from '../../gateway/log.ts';
import { startEngines } from '../../gateway/roles.ts';
import { SpamdClient } from '../../scanners/spamd.ts';
import { MINIMAL_CONFIG } from '../support/config.ts';
import { createRunDir, removeRunDir } from '../support/global-setup.ts';

const services = inject('services');
const logger = silentLogger();
let dir: string;

beforeAll(async () => {
  dir = await createRunDir('spamd-managed');
});
afterAll(async () => {
  await removeRunDir(dir);
});

/** A one-machine config whose Redis and clamd are the test run's; spamd as given. */
function config(name: string, spamd: Record<string, unknown>): Config {
  const c = parseConfig(MINIMAL_CONFIG, join(dir, 'mailmoat.yaml'));
  return {
    ...c,
    dataDir: join(dir, name),
    redis: { ...c.redis, socket: services.redisSocket },
    clamd: { ...c.clamd, managed: undefined, socket: services.clamdSocket },
    spamd: { ...c.spamd, ...spamd },
  };
}

const spamdCommandLine = (dataDir: string): string[] => {
  const pid = readFileSync(join(dataDir, 'engines/spamd/spamd-daemon.pid'), 'utf8').trim();
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
};
const tcpListenersOf = (pid: string): string =>
  execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .join('\n');

describe('managed spamd', () => {
  it('listens on a unix socket under the data dir, with network tests unless networkTests: false', async () => {
    const online = config('online', { managed: true });
    const offline = config('offline', { managed: true, networkTests: false });
    const engines = await Promise.all([startEngines(online, logger), startEngines(offline, logger)]);
    try {
      for (const [c, e] of [
        [online, engines[0]],
        [offline, engines[1]],
      ] as const) {
        const socketPath = join(c.dataDir, 'engines/spamd/spamd.sock');
        expect(e.endpoints.spamd).toEqual({ socketPath });
        // Every other role on the machine finds it at the same place.
        expect(attachedEndpoints(c).spamd).toEqual({ socketPath });
        expect(await new SpamdClient({ socketPath }, { timeoutMs: 5_000 }).ping()).toBeUndefined();
        const pid = readFileSync(join(c.dataDir, 'engines/spamd/spamd-daemon.pid'), 'utf8').trim();
        expect(tcpListenersOf(pid)).toBe('');
      }
      expect(spamdCommandLine(online.dataDir)).not.toContain('-L');
      expect(spamdCommandLine(offline.dataDir)).toContain('-L');
    } finally {
      await Promise.all(engines.map((e) => e.stop()));
    }
  }, 90_000);

  it('is not started at all when spamd.enabled is false', async () => {
    const c = config('disabled', { managed: true, enabled: false });
    const e = await startEngines(c, logger);
    try {
      expect(existsSync(join(c.dataDir, 'engines/spamd'))).toBe(false);
      const spamds = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.includes('spamd') && l.includes(c.dataDir));
      expect(spamds).toEqual([]);
    } finally {
      await e.stop();
    }
  });

  it('network tests are on by default, off in the demo config', () => {
    expect(parseConfig(MINIMAL_CONFIG, 'mailmoat.yaml').spamd.networkTests).toBe(true);
    expect(loadConfig(fileURLToPath(new URL('../../deploy/demo.yaml', import.meta.url))).spamd.networkTests).toBe(false);
  });
});
