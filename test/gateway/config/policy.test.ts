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

  // gateway/pipeline/policy.ts makes a config generation's layering once and shares it among
  // messages: each message must still get what a fresh layering gives (the rules its own sender,
  // client and recipients match), and a reloaded config (a new object) its own policies.
  it('gives every message of a config generation the policies a fresh layering gives, and a reload its own', async () => {
    const yaml = (threshold: number) =>
      `${BASE}    policy: { tags: { spam: "[dom]" } }
    rules:
      - name: ceo
        match: { to: [ceo@example.test] }
        set: { spam: { threshold: ${threshold} } }
rules:
  - match: { from: ["*@partner.test"] }
    set: { checks: { spam: false } }
  - match: { client: [192.0.2.0/24] }
    set: { html: { remoteImages: remove } }
`;
    const config = parseConfig(yaml(3), 'mailmoat.yaml');
    const envelopes = [
      { mailFrom: 'x@partner.test', clientIp: '192.0.2.9', rcptTo: ['ceo@example.test', 'bob@example.test', 'eve@elsewhere.test'] },
      { mailFrom: 'y@other.test', clientIp: '198.51.100.1', rcptTo: ['ceo@example.test', 'bob@example.test'] },
      { mailFrom: '', clientIp: '192.0.2.1', rcptTo: ['eve@elsewhere.test', 'ceo@example.test'] },
      { mailFrom: 'x@partner.test', clientIp: '192.0.2.9', rcptTo: ['bob@example.test', 'ceo@example.test'] },
    ];
    for (const round of [1, 2]) {
      for (const env of envelopes) {
        const fresh = await recipientPolicies(parseConfig(yaml(3), 'mailmoat.yaml'), env, undefined);
        expect(await recipientPolicies(config, env, undefined), `round ${round}: ${JSON.stringify(env)}`).toEqual(fresh);
      }
    }
    const [ceo] = await recipientPolicies(config, envelopes[1], undefined);
    expect([ceo.rules, ceo.policy.spam.threshold, ceo.policy.tags.spam]).toEqual([['ceo'], 3, '[dom]']);
    const [partner, , elsewhere] = await recipientPolicies(config, envelopes[0], undefined);
    expect([partner.rules, partner.policy.checks.spam, partner.policy.html.remoteImages]).toEqual([['ceo', 'rules[0]', 'rules[1]'], false, 'remove']);
    expect([elsewhere.rules, elsewhere.policy.tags.spam, elsewhere.policy.checks.spam]).toEqual([['rules[0]', 'rules[1]'], '{Spam?}', false]);
    const [reloaded] = await recipientPolicies(parseConfig(yaml(7), 'mailmoat.yaml'), envelopes[1], undefined);
    expect(reloaded.policy.spam.threshold).toBe(7);
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
