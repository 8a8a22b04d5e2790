import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/load.ts';
import { liveConfig, onReload, snapshot } from '../../../gateway/config/live.ts';
import { planReload } from '../../../gateway/config/reload.ts';
import { MINIMAL_CONFIG } from '../../support/config.ts';

const parse = (extra = '', dataDir = 'data') =>
  parseConfig(`${MINIMAL_CONFIG.replace('dataDir: data', `dataDir: ${dataDir}`)}${extra}`, '/etc/mailmoat/mailmoat.yaml');

describe('planning a reload', () => {
  it('takes hosted domains, checks and policy from the new file', () => {
    const next = parse('  b.test:\n    downstream: [{ host: 10.0.0.6 }]\nchecks: { limits: { connectionsPerClient: 5 } }\nspam: { threshold: 4 }\n');
    const { config, needsRestart } = planReload(parse(), next);
    expect(needsRestart).toEqual([]);
    expect(Object.keys(config.domains)).toEqual(['example.test', 'b.test']);
    expect(config.checks.limits.connectionsPerClient).toBe(5);
    expect(config.spam.threshold).toBe(4);
  });

  it('keeps the running value of each restart-only key that changed, and names it', () => {
    const running = parse();
    const next = parse('smtp: { listen: { port: 2525 }, maxRecipients: 50 }\nredis: { url: "redis://10.0.0.9:6379" }\n', '/elsewhere');
    const { config, needsRestart } = planReload(running, next);
    expect(needsRestart).toEqual(['dataDir', 'smtp.listen', 'redis']);
    expect(config.smtp.listen).toEqual(running.smtp.listen);
    expect(config.smtp.maxRecipients).toBe(50); // the rest of smtp does change
    expect(config.redis).toEqual(running.redis);
    expect(config.dataDir).toBe(running.dataDir);
  });

  it('TLS: STARTTLS on or off needs a restart', () => {
    const next = parse('tls: { certificates: [{ cert: c.pem, key: k.pem }] }\n');
    expect(planReload(parse(), next).needsRestart).toEqual(['tls']);
    expect(planReload(parse(), next).config.tls.certificates).toEqual([]);
  });
});

describe('the live config', () => {
  it('shows the newest config to every reader, a snapshot to those that must not change their mind, and tells listeners', () => {
    const first = parse();
    const live = liveConfig(first);
    const seen: string[][] = [];
    const stop = onReload(live.config, (c) => seen.push(Object.keys(c.domains)));
    const before = snapshot(live.config);
    const next = parse('  b.test:\n    downstream: [{ host: 10.0.0.6 }]\n');
    live.swap(next);
    expect(Object.keys(live.config.domains)).toEqual(['example.test', 'b.test']);
    expect(before).toBe(first);
    expect(snapshot(live.config)).toBe(next);
    expect(JSON.parse(JSON.stringify(live.config))).toEqual(JSON.parse(JSON.stringify(next)));
    expect({ ...live.config }.hostname).toBe('mx.example.test');
    expect(seen).toEqual([['example.test', 'b.test']]);
    stop();
    live.swap(first);
    expect(seen.length).toBe(1);
    expect(snapshot(first)).toBe(first); // a plain config is its own snapshot
  });
});
