// Who may send to reportspam@ / notspam@ (issue 8): the decision at RCPT, and the config defaults.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../gateway/config/schema.ts';
import { decideReporter, reportTarget } from '../../../gateway/reports/rcpt.ts';

const config = configSchema.parse({
  hostname: 'mx.gw.test',
  dataDir: '/tmp/x',
  smtp: { listen: { port: 0 } },
  domains: {
    'example.test': { downstream: [{ host: '127.0.0.1' }] },
    'custom.test': { downstream: [{ host: '127.0.0.1' }], reports: { addresses: { spam: ['Spam-Report'], ham: [] }, trust: { alignedSenders: false } } },
    'off.test': { downstream: [{ host: '127.0.0.1' }], reports: { enabled: false } },
  },
});

describe('report addresses', () => {
  it('defaults to reportspam@ and notspam@, case-insensitive; configurable; can be off', () => {
    expect(config.domains['example.test']!.reports).toEqual({
      enabled: true,
      addresses: { spam: ['reportspam'], ham: ['notspam'] },
      trust: { authenticated: true, trustedNetworks: true, alignedSenders: true },
      addSenderToBlockList: false,
      acknowledge: true,
      maxMessages: 50,
    });
    expect(reportTarget(config, 'ReportSpam@Example.Test')).toEqual({ kind: 'spam', domain: 'example.test', address: 'reportspam@example.test' });
    expect(reportTarget(config, 'notspam@example.test')?.kind).toBe('ham');
    expect(reportTarget(config, 'spam-report@custom.test')?.kind).toBe('spam');
    expect(reportTarget(config, 'reportspam@custom.test')).toBeUndefined();
    expect(reportTarget(config, 'reportspam@off.test')).toBeUndefined();
    expect(reportTarget(config, 'reportspam@elsewhere.test')).toBeUndefined();
  });
  it('refuses an unknown key', () => {
    expect(() =>
      configSchema.parse({
        hostname: 'h',
        dataDir: '/x',
        smtp: { listen: { port: 0 } },
        domains: { 'a.test': { downstream: [{ host: 'x' }], reports: { acknowlege: true } } },
      }),
    ).toThrow(/acknowlege/);
  });
});

describe('decideReporter', () => {
  const target = reportTarget(config, 'reportspam@example.test')!;
  it.each([
    [{ sender: 'x@anywhere.example', user: 'alice' }, 'authenticated'],
    [{ sender: 'x@anywhere.example', trustedNetwork: 'network 10.0.0.0/8' }, 'network'],
    [{ sender: 'alice@example.test', spf: 'pass' as const }, 'spf'],
    [{ sender: 'alice@sub.example.test', spf: 'pass' as const }, 'spf'],
    [{ sender: 'alice@example.test', spf: 'softfail' as const }, 'dkim-pending'],
    [{ sender: 'alice@example.test' }, 'dkim-pending'],
  ])('%j → %s', (facts, trust) => {
    const d = decideReporter(config, target, facts);
    expect(d.ok && d.trust).toBe(trust);
  });
  it.each([
    [{ sender: 'mallory@evil.example', spf: 'pass' as const }, 'is not a user of example.test'],
    [{ sender: 'mallory@notexample.test', spf: 'pass' as const }, 'is not a user of example.test'],
    [{ sender: '' }, 'null sender'],
  ])('%j → refused (%s)', (facts, why) => {
    const d = decideReporter(config, target, facts);
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.reason).toContain(why);
      expect(d.reply).toMatchObject({ code: 550, enhanced: '5.7.1' });
    }
  });
  it('alignedSenders: false leaves only authenticated and trusted-network reporters', () => {
    const t = reportTarget(config, 'spam-report@custom.test')!;
    expect(decideReporter(config, t, { sender: 'a@custom.test', spf: 'pass' }).ok).toBe(false);
    expect(decideReporter(config, t, { sender: 'a@custom.test', user: 'a' }).ok).toBe(true);
  });
});
