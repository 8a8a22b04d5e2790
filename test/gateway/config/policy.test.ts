import { describe, expect, it } from 'vitest';
import { parseConfig, ConfigError } from '../../../gateway/config/load.ts';
import { basePolicy, recipientPolicies } from '../../../gateway/pipeline/policy.ts';

const BASE = `
hostname: mx.example.test
dataDir: /tmp/mailmoat-config-test
domains:
  example.test:
    downstream: [{ host: 10.0.0.5 }]
`;

describe('content policy in the config file', () => {
  it('reads policy, rules, per-domain policy and the other content sections', async () => {
    const config = parseConfig(
      `${BASE}    policy:
      actions:
        banned: { do: strip, notifyAdmin: true }
        virus: reject
      tags: { cleaned: "[disarmed]" }
    rules:
      - name: ceo
        match: { to: [ceo@example.test] }
        set: { spam: { threshold: 3 } }
policy:
  html: { remoteImages: placeholder }
rules:
  - match: { from: ["*@partner.test"], client: [192.0.2.0/24] }
    set: { checks: { spam: false } }
urls:
  lists: [{ zone: dbl.spamhaus.org, codes: { 127.0.1.2: spam domain } }]
inline: { deadlineMs: 15000 }
`,
      'mailmoat.yaml',
    );
    expect(config.inline).toEqual({ enabled: true, deadlineMs: 15_000 });
    expect(config.urls.lists[0]).toMatchObject({ zone: 'dbl.spamhaus.org', weight: 5, onError: 'ignore' });
    expect(basePolicy(config).html.remoteImages).toBe('placeholder');
    const [ceo, other] = await recipientPolicies(
      config,
      { mailFrom: 'x@partner.test', clientIp: '192.0.2.9', rcptTo: ['ceo@example.test', 'bob@example.test'] },
      undefined,
    );
    expect(ceo.rules).toEqual(['ceo', 'rules[0]']);
    expect(ceo.policy.spam.threshold).toBe(3);
    expect(ceo.policy.checks.spam).toBe(false);
    expect(ceo.policy.actions.virus.do).toBe('reject');
    expect(ceo.policy.actions.banned).toEqual({ do: 'strip', notifyRecipient: false, notifyAdmin: true, forwardTo: [] });
    expect(ceo.policy.tags.cleaned).toBe('[disarmed]');
    expect(other.rules).toEqual(['rules[0]']);
    expect(other.policy.spam.threshold).toBe(5);
  });

  it.each([
    ['strip for anything but banned', 'policy:\n  actions: { virus: strip }\n', /policy\.actions: strip is only for banned attachments/],
    ['an unknown disposition', 'policy:\n  actions: { spam: bounce }\n', /policy\.actions\.spam/],
    ['a bad rule pattern', 'rules:\n  - match: { client: [not-an-ip] }\n    set: {}\n', /rules\[0\]\.match\.client\[0\]: expected an IP address or network/],
    ['a rule matching nothing', 'rules:\n  - match: {}\n    set: {}\n', /rules\[0\]\.match: a rule needs at least one of/],
    ['an unknown policy key', 'policy:\n  html: { disarmm: true }\n', /policy\.html\.disarmm: unknown key/],
  ])('refuses %s, naming the key', (_name, extra, message) => {
    expect(() => parseConfig(BASE + extra, 'mailmoat.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(BASE + extra, 'mailmoat.yaml')).toThrow(message);
  });
});
