// Issue 15 point 4: mail an authenticated user submitted is refused in session for the classes of
// `submission.refuse` (virus and banned by default), over whatever the recipients' policies say;
// other mail keeps the recipients' policies. Config → recipientPolicies → mayRefuse (the SMTP side
// waits for the verdict only when some recipient's policy may refuse).
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../gateway/config/load.ts';
import { recipientPolicies } from '../../../gateway/pipeline/policy.ts';
import { mayRefuse } from '../../../rules/actions.ts';

const BASE = `hostname: mx.example.test\ndataDir: /tmp/mailmoat-config-test\ndomains:\n  example.test:\n    downstream: [{ host: 10.0.0.5 }]\n    policy: { actions: { virus: { do: quarantine, notifyAdmin: true } } }\n`;
const envelope = { mailFrom: 'alice@example.test', clientIp: '192.0.2.9', rcptTo: ['bob@example.test', 'friend@elsewhere.test'] };

describe('submission.refuse', () => {
  it('by default refuses virus and banned for an authenticated sender, keeping the other actions and the notices; no SPF/DMARC check', async () => {
    const config = parseConfig(BASE, 'mailmoat.yaml');
    expect(config.submission.refuse).toEqual(['virus', 'banned']);
    const submitted = await recipientPolicies(config, { ...envelope, submitted: { listener: 'submission', user: 'alice@example.test' } }, undefined);
    for (const { policy } of submitted) {
      expect(policy.actions.virus.do).toBe('reject');
      expect(policy.actions.banned.do).toBe('reject');
      expect(policy.actions['high-spam'].do).toBe('quarantine');
    }
    expect(submitted[0]!.policy.actions.virus.notifyAdmin).toBe(true);
    // SPF/DMARC judge the path to us; an authenticated submission is its first hop.
    expect(submitted.map((p) => p.policy.checks.auth)).toEqual([false, false]);
    expect(mayRefuse(submitted.map((p) => p.policy))).toBe(true);
  });

  it('leaves mail without an authenticated sender to the recipients’ policies (nobody waits)', async () => {
    const inbound = await recipientPolicies(parseConfig(BASE, 'mailmoat.yaml'), envelope, undefined);
    expect(inbound.map((p) => p.policy.actions.virus.do)).toEqual(['quarantine', 'quarantine']);
    expect(mayRefuse(inbound.map((p) => p.policy))).toBe(false);
    expect(inbound.map((p) => p.policy.checks.auth)).toEqual([true, true]);
  });

  it('takes other classes, or none; clean cannot be refused', async () => {
    const none = parseConfig(`${BASE}submission: { refuse: [] }\n`, 'mailmoat.yaml');
    expect((await recipientPolicies(none, { ...envelope, submitted: { listener: 'submission', user: 'a' } }, undefined))[0]!.policy.actions.virus.do).toBe(
      'quarantine',
    );
    const spam = parseConfig(`${BASE}submission: { refuse: [high-spam] }\n`, 'mailmoat.yaml');
    const [p] = await recipientPolicies(spam, { ...envelope, submitted: { listener: 'submission', user: 'a' } }, undefined);
    expect([p!.policy.actions['high-spam'].do, p!.policy.actions.virus.do]).toEqual(['reject', 'quarantine']);
    expect(() => parseConfig(`${BASE}submission: { refuse: [clean] }\n`, 'mailmoat.yaml')).toThrow(ConfigError);
  });
});
