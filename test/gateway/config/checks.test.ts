import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../gateway/config/load.ts';

const base = `hostname: mx.a.test\ndataDir: /tmp/mm\ndomains:\n  a.test:\n    downstream: [{ host: 127.0.0.1 }]\n`;
const parse = (extra: string) => parseConfig(base + extra, '/etc/mailmoat/test.yaml');
const errorOf = (extra: string) => {
  try {
    parse(extra);
  } catch (err) {
    return (err as ConfigError).message;
  }
  return '';
};

describe('front-line config', () => {
  it('has safe defaults: RFC minimums, loopback trusted, no DNSBL, reject bare line endings and NUL, session deadlines', () => {
    const c = parse('');
    expect(c.smtp).toMatchObject({ maxRecipients: 100, socketTimeoutMs: 300_000, maxCommandLength: 2048, requireTls: false });
    expect(c.checks.trusted.networks).toEqual(['127.0.0.0/8', '::1']);
    expect(c.checks.dnsbl.lists).toEqual([]);
    expect(c.checks.protocol).toEqual({ bareLineEndings: 'reject', nulBytes: 'reject', pipelining: 'reject', greetPauseMs: 0 });
    expect(c.smtp.deadlines).toEqual({
      commandMs: 300_000,
      commandUnderLoadMs: 10_000,
      underLoadAt: 0.8,
      dataMinBytesPerSec: 500,
      dataMs: 600_000,
      sessionMs: 1_800_000,
    });
    expect(c.checks.limits.connectionsPerClient).toBe(50);
    expect(c.domains['a.test']!.recipients.mode).toBe('any');
    expect(c.submission.enabled).toBe(false);
  });

  it('takes each provider rule as one line', () => {
    const c = parse(
      'smtp: { listen: { port: 25 }, maxRecipients: 30, maxMessageBytes: 31457280 }\n' +
        'checks:\n  helo: { unresolvable: reject }\n  rdns: { missingPtr: reject }\n' +
        '  dnsbl: { lists: [{ zone: zen.spamhaus.org, codes: { 127.0.0.2: SBL, 127.0.0.4: XBL } }] }\n',
    );
    expect(c.smtp.maxRecipients).toBe(30);
    expect(c.checks.helo.unresolvable).toEqual({ action: 'reject' });
    expect(c.checks.dnsbl.lists[0]).toMatchObject({ zone: 'zen.spamhaus.org', kind: 'ip', type: 'block', txt: true });
  });

  it('refuses typos and impossible values, naming the key', () => {
    expect(errorOf('checks: { helo: { unresolveable: reject } }\n')).toContain('checks.helo.unresolveable: unknown key');
    expect(errorOf('checks: { helo: { notFqdn: bounce } }\n')).toMatch(/checks\.helo\.notFqdn/);
    expect(errorOf('checks: { spf: { temperror: reject } }\n')).toMatch(/checks\.spf\.temperror/);
    expect(errorOf('checks: { trusted: { networks: [10.0.0.0/33] } }\n')).toMatch(/checks\.trusted\.networks\[0\]: expected an IP address or network/);
    expect(errorOf('checks: { dnsbl: { lists: [{ zone: zen.test, codes: { 10.0.0.2: x } }] } }\n')).toContain(
      `checks.dnsbl.lists[0].codes["10.0.0.2"]: Invalid key in record`,
    );
    expect(errorOf('domains:\n  b.test: { downstream: [{ host: h }], checks: { rdns: { missing: reject } } }\n')).toBeTruthy();
  });

  it('submission and requireTls need certificates', () => {
    expect(errorOf('submission: { enabled: true }\n')).toContain('submission.enabled: the submission listener needs tls.certificates');
    expect(errorOf('smtp: { listen: { port: 25 }, requireTls: true }\n')).toContain('smtp.requireTls: requireTls needs tls.certificates');
  });

  it('resolves certificate paths against the config file', () => {
    const c = parse('tls: { certificates: [{ cert: certs/mx.crt, key: /abs/mx.key }] }\n');
    expect(c.tls.certificates[0]).toEqual({ cert: '/etc/mailmoat/certs/mx.crt', key: '/abs/mx.key' });
  });
});
