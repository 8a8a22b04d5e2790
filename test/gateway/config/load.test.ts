import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MINIMAL_CONFIG, refusal } from '../../support/config.ts';
import { loadConfig, parseConfig } from '../../../gateway/config/load.ts';

const minimal = MINIMAL_CONFIG;

describe('config loading', () => {
  it('fills in safe defaults for a minimal file and resolves paths against the file', () => {
    const c = parseConfig(minimal, '/etc/mailmoat/mailmoat.yaml');
    expect(c.dataDir).toBe('/etc/mailmoat/data');
    expect(c.domains['example.test'].downstream).toEqual([
      { host: '10.0.0.5', port: 25, priority: 10, tls: 'opportunistic', maxConnections: 5, maxPerMinute: 0 },
    ]);
    expect(c.smtp.maxRecipients).toBeGreaterThanOrEqual(100); // RFC 5321 minimum
    expect(c.smtp.maxMessageBytes).toBe(30 * 1024 * 1024);
    expect(c.clamd.managed).toBe(true);
    expect(c.spam).toEqual({ threshold: 5, highThreshold: 10, subjectTag: '{Spam?}' });
  });
  it('lowercases hosted domains', () => {
    expect(Object.keys(parseConfig(minimal.replace('example.test:', 'Example.TEST:'), 'f').domains)).toEqual(['example.test']);
  });
  it('refuses an unknown key, naming it', () => {
    expect(refusal(`${minimal}smtp:\n  lisen: { port: 25 }\n`)).toContain('smtp.lisen: unknown key');
  });
  it('refuses a wrong value, naming the key and what is expected', () => {
    expect(refusal(minimal.replace('{ host: 10.0.0.5 }', '{ host: 10.0.0.5, port: "smtp" }'))).toMatch(
      /domains\["example\.test"\]\.downstream\[0\]\.port: .*expected number/,
    );
    expect(refusal(`${minimal}spam: { threshold: 8, highThreshold: 4 }\n`)).toContain('highThreshold must be >= threshold');
  });
  it('keeps quarantine and log for 30 and 90 days, and refuses a log kept shorter than the quarantine', () => {
    expect(parseConfig(minimal, 'f').retention).toEqual({ quarantineDays: 30, logDays: 90, checkEveryMinutes: 60 });
    expect(refusal(`${minimal}retention: { quarantineDays: 30, logDays: 7 }\n`)).toMatch(/retention\.logDays: must be at least quarantineDays \(30\)/);
    expect(refusal(`${minimal}retention: { quarantineDays: 0, logDays: 90 }\n`)).toContain('retention.logDays: must be at least quarantineDays (0: forever)');
    expect(parseConfig(`${minimal}retention: { quarantineDays: 0, logDays: 0 }\n`, 'f').retention.logDays).toBe(0);
    expect(refusal(`${minimal}retention: { checkEveryMinutes: 0 }\n`)).toContain('retention.checkEveryMinutes');
  });
  it('refuses a missing required key', () => {
    expect(refusal('hostname: mx.example.test\n')).toMatch(/dataDir: required[\s\S]*domains: required/);
  });
  it('refuses two ways to reach one engine', () => {
    expect(refusal(`${minimal}clamd: { socket: /run/clamd.sock, host: 127.0.0.1, port: 3310 }\n`)).toContain(
      'clamd: set exactly one of: managed: true, socket, or host (with port)',
    );
  });
  it('reports YAML syntax errors with their position', () => {
    expect(refusal('hostname: [unclosed\n')).toMatch(/invalid YAML[\s\S]*line \d+/);
  });
  it('names the file when it cannot be read', () => {
    expect(() => loadConfig('/nonexistent/mailmoat.yaml')).toThrow(/\/nonexistent\/mailmoat\.yaml: cannot read config file/);
  });
  it('accepts the shipped demo config', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    writeFileSync(path.join(dir, 'x.yaml'), minimal);
    expect(loadConfig(path.join(dir, 'x.yaml')).hostname).toBe('mx.example.test');
    expect(loadConfig(path.resolve(import.meta.dirname, '../../../deploy/demo.yaml')).demo?.mailbox.listen.port).toBe(2526);
  });
});
