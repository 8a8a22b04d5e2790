import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, applyPatch, layerPolicy } from '../../rules/policy.ts';
import { resolvePolicy, ruleMatches, type PolicyRule } from '../../rules/rulesets.ts';

const facts = { sender: 'bob@partner.test', recipient: 'alice@example.test', clientIp: '192.0.2.7' };

describe('ruleMatches', () => {
  it.each<[string, PolicyRule['match'], boolean]>([
    ['exact sender', { from: ['bob@partner.test'] }, true],
    ['*@domain sender', { from: ['*@partner.test'] }, true],
    ['*@domain does not take subdomains', { from: ['*@test'] }, false],
    ['domain takes subdomains', { from: ['test'] }, false],
    ['domain', { from: ['partner.test'] }, true],
    ['recipient', { to: ['alice@example.test'] }, true],
    ['recipient domain', { to: ['*@example.test'] }, true],
    ['sender or recipient (recipient side)', { fromOrTo: ['example.test'] }, true],
    ['sender or recipient (neither)', { fromOrTo: ['other.test'] }, false],
    ['client address', { client: ['192.0.2.7'] }, true],
    ['client network', { client: ['192.0.2.0/24'] }, true],
    ['client outside the network', { client: ['198.51.100.0/24'] }, false],
    ['all fields must match', { from: ['partner.test'], client: ['198.51.100.0/24'] }, false],
    ['any pattern of a field may match', { from: ['x.test', 'partner.test'] }, true],
    ['an empty match matches nothing', {}, false],
  ])('%s', (_n, match, expected) => {
    expect(ruleMatches(match, facts)).toBe(expected);
  });

  it('never matches the null sender with a from pattern', () => {
    expect(ruleMatches({ from: ['partner.test'] }, { ...facts, sender: '' })).toBe(false);
  });
});

describe('resolvePolicy', () => {
  const rules: PolicyRule[] = [
    { name: 'partner', match: { from: ['partner.test'] }, set: { checks: { spam: false }, actions: { banned: { do: 'strip' } } } },
    { name: 'lab network', match: { client: ['192.0.2.0/24'] }, set: { checks: { spam: true, html: false }, spam: { threshold: 8 } } },
    { name: 'ceo', match: { to: ['ceo@example.test'] }, set: { actions: { spam: { do: 'quarantine' } } } },
  ];

  it('takes each setting from the first matching rule that sets it', () => {
    const r = resolvePolicy({ base: DEFAULT_POLICY, rules }, facts);
    expect(r.rules).toEqual(['partner', 'lab network']);
    expect(r.policy.checks).toMatchObject({ spam: false, html: false, virus: true });
    expect(r.policy.spam).toEqual({ threshold: 8, highThreshold: 10 });
    expect(r.policy.actions.banned).toEqual({ do: 'strip', notifyRecipient: false, notifyAdmin: false, forwardTo: [] });
    expect(r.policy.actions.spam.do).toBe('tagged');
  });

  it('puts rules above the domain policy, the domain policy above the base', () => {
    const r = resolvePolicy({ base: DEFAULT_POLICY, domainPolicy: { spam: { threshold: 3, highThreshold: 6 }, tags: { spam: '[SPAM]' } }, rules }, facts);
    expect(r.policy.spam).toEqual({ threshold: 8, highThreshold: 6 });
    expect(r.policy.tags.spam).toBe('[SPAM]');
  });

  it('uses the base alone when nothing matches', () => {
    const r = resolvePolicy({ base: DEFAULT_POLICY, rules }, { sender: 'x@y.test', recipient: 'z@example.test', clientIp: '203.0.113.1' });
    expect(r).toEqual({ policy: DEFAULT_POLICY, rules: [] });
  });
});

describe('policy layers', () => {
  it('merges action objects key by key', () => {
    const p = layerPolicy(DEFAULT_POLICY, [{ actions: { virus: { notifyAdmin: true } } }, { actions: { virus: { do: 'reject' } } }]);
    expect(p.actions.virus).toEqual({ do: 'reject', notifyRecipient: false, notifyAdmin: true, forwardTo: [] });
  });

  it('accumulates attachment rule overrides in order', () => {
    const p = applyPatch(applyPatch(DEFAULT_POLICY, { attachments: { rules: { bannedExtensions: { add: ['pdf'] } } } }), {
      attachments: { rules: { bannedExtensions: { remove: ['pdf'] } } },
    });
    expect(p.attachments.rules).toEqual([{ bannedExtensions: { add: ['pdf'] } }, { bannedExtensions: { remove: ['pdf'] } }]);
  });

  it('replaces lists instead of merging them', () => {
    const p = layerPolicy(DEFAULT_POLICY, [{ html: { phishingSafeSites: ['a.test'] } }, { html: { phishingSafeSites: ['b.test'] } }]);
    expect(p.html.phishingSafeSites).toEqual(['b.test']);
  });
});
