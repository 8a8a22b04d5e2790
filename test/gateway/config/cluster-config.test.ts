// The config of a cluster node: redis (url / socket / sentinel / cluster), health, and the
// shipped example deploy/cluster/node.yaml.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MINIMAL_CONFIG, refusal } from '../../support/config.ts';
import { loadConfig, parseConfig } from '../../../gateway/config/load.ts';
import { hashTag } from '../../../gateway/config/schema.ts';
import { configuredRedis } from '../../../gateway/endpoints.ts';
import { healthListen } from '../../../gateway/health.ts';

const minimal = MINIMAL_CONFIG;

describe('redis config', () => {
  it('defaults to a managed Redis with the prefix "mailmoat"', () => {
    const c = parseConfig(minimal, 'f');
    expect(c.redis).toEqual({ cluster: false, prefix: 'mailmoat' });
    expect(configuredRedis(c)).toBeUndefined();
  });

  it('takes a Sentinel-managed master', () => {
    const c = parseConfig(
      `${minimal}redis:\n  sentinel:\n    name: mymaster\n    sentinels: [{ host: 10.0.0.1, port: 26379 }, { host: 10.0.0.2, port: 26379 }]\n    password: pw\n`,
      'f',
    );
    expect(configuredRedis(c)).toEqual({
      sentinel: {
        name: 'mymaster',
        sentinels: [
          { host: '10.0.0.1', port: 26379 },
          { host: '10.0.0.2', port: 26379 },
        ],
        password: 'pw',
      },
    });
  });

  it('refuses more than one way to reach Redis, naming the keys', () => {
    expect(refusal(`${minimal}redis: { url: "redis://10.0.0.1:6379", socket: /run/redis.sock }\n`)).toContain(
      'redis.socket: set only one of url, socket or sentinel (url and socket are set)',
    );
    expect(refusal(`${minimal}redis:\n  url: "redis://10.0.0.1:6379"\n  sentinel: { name: m, sentinels: [{ host: 10.0.0.1, port: 26379 }] }\n`)).toContain(
      'redis.sentinel: set only one of url, socket or sentinel (url and sentinel are set)',
    );
  });

  it('refuses an incomplete Sentinel entry', () => {
    expect(refusal(`${minimal}redis:\n  sentinel: { name: m, sentinels: [] }\n`)).toMatch(/redis\.sentinel\.sentinels: .*(>=1|at least 1)/);
    expect(refusal(`${minimal}redis:\n  sentinel: { sentinels: [{ host: 10.0.0.1, port: 26379 }] }\n`)).toContain('redis.sentinel.name');
  });

  it('a Cluster needs url and a hash-tagged prefix', () => {
    expect(refusal(`${minimal}redis: { url: "redis://10.0.0.1:6379", cluster: true }\n`)).toContain(
      'redis.prefix: a Redis Cluster needs a hash tag in the prefix so that all keys land in one slot, e.g. "{mailmoat}"',
    );
    expect(refusal(`${minimal}redis: { cluster: true, prefix: "{mailmoat}" }\n`)).toContain('redis.cluster: cluster: true needs url');
    expect(refusal(`${minimal}redis: { url: "redis://10.0.0.1:6379/2", cluster: true, prefix: "{mailmoat}" }\n`)).toContain(
      'redis.url: a Redis Cluster has only database 0',
    );
    const c = parseConfig(`${minimal}redis: { url: "redis://10.0.0.1:6379", cluster: true, prefix: "{mailmoat}" }\n`, 'f');
    expect(configuredRedis(c)).toEqual({ url: 'redis://10.0.0.1:6379', cluster: true });
  });

  it('finds hash tags as Redis Cluster does', () => {
    expect(hashTag('{mailmoat}')).toBe('mailmoat');
    expect(hashTag('gw{eu}:x')).toBe('eu');
    expect(hashTag('mailmoat')).toBeUndefined();
    expect(hashTag('{}mailmoat')).toBeUndefined();
    expect(hashTag('mail{moat')).toBeUndefined();
  });
});

describe('health config', () => {
  it('is off unless set', () => {
    const none = parseConfig(minimal, 'f');
    expect(none.health).toEqual({ drainDelayMs: 5_000 });
    expect(healthListen(none, 'smtp')).toBeUndefined();
    expect(healthListen(none, 'worker')).toBeUndefined();
  });

  it('takes one listener for any role, and per-role ones for roles that share a machine', () => {
    const one = parseConfig(`${minimal}health: { listen: { host: 0.0.0.0, port: 8025 } }\n`, 'f');
    for (const role of ['start', 'smtp', 'worker', 'console'] as const) expect(healthListen(one, role)).toEqual({ host: '0.0.0.0', port: 8025 });
    const c = parseConfig(`${minimal}health:\n  smtp: { host: 0.0.0.0, port: 8025 }\n  worker: { port: 8026 }\n  drainDelayMs: 4000\n`, 'f');
    expect(c.health).toEqual({ smtp: { host: '0.0.0.0', port: 8025 }, worker: { host: '127.0.0.1', port: 8026 }, drainDelayMs: 4_000 });
    expect(healthListen(c, 'smtp')).toEqual({ host: '0.0.0.0', port: 8025 });
    expect(healthListen(c, 'start')).toEqual({ host: '0.0.0.0', port: 8025 });
    expect(healthListen(c, 'worker')).toEqual({ host: '127.0.0.1', port: 8026 });
    expect(healthListen(c, 'console')).toBeUndefined();
    expect(refusal(`${minimal}health: { port: 8025 }\n`)).toContain('health.port: unknown key');
  });
});

describe('deploy/cluster/node.yaml', () => {
  it('is a valid config for a cluster node', () => {
    const c = loadConfig(path.resolve(import.meta.dirname, '../../../deploy/cluster/node.yaml'));
    expect(c.database.url).toMatch(/^postgres:\/\//);
    expect(c.redis.prefix).toBe('{mailmoat}');
    expect(c.health.smtp).toBeDefined();
    expect(c.proxy.from.length).toBeGreaterThan(0);
    expect(c.clamd.socket ?? c.clamd.host).toBeDefined(); // Debian's clamd socket, or a scanner host
    expect(c.spamd.host).toBeDefined();
  });
});
