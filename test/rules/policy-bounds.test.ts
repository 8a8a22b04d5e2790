import { describe, expect, it } from 'vitest';
import { changedPaths, decidePolicyChange, parseAdminMay } from '../../rules/policy-bounds.ts';

describe('what a domain admin may change in their policy', () => {
  it('lists the values that differ, key by key', () => {
    expect(changedPaths({ spam: { threshold: 5 } }, { spam: { threshold: 3, highThreshold: 9 } })).toEqual(['spam.highThreshold', 'spam.threshold']);
    expect(changedPaths({ actions: { spam: { do: 'quarantine' } } }, { actions: { spam: { do: 'quarantine' } } })).toEqual([]);
    expect(changedPaths({ checks: {} }, {})).toEqual([]);
    expect(changedPaths({ forwardTo: ['a@x.test'] }, { forwardTo: ['b@x.test'] })).toEqual(['forwardTo']);
  });

  it.each([
    { adminMay: ['spam'], after: { spam: { threshold: 3, highThreshold: 8 } }, allowed: true },
    { adminMay: ['spam.threshold'], after: { spam: { threshold: 3 } }, allowed: true },
    { adminMay: ['spam.threshold'], after: { spam: { threshold: 3, highThreshold: 8 } }, key: 'policy.spam.highThreshold' },
    { adminMay: ['spam'], after: { checks: { virus: false } }, key: 'policy.checks.virus' },
    { adminMay: ['spamx'], after: { spam: { threshold: 1 } }, key: 'policy.spam.threshold' },
    { adminMay: [], after: { spam: { threshold: 1 } }, key: 'policy.spam.threshold' },
    { adminMay: [], after: {}, allowed: true },
  ])('allowed $adminMay → $after', ({ adminMay, after, allowed, key }) => {
    const d = decidePolicyChange({ spam: { threshold: 5 } }, { spam: { threshold: 5 }, ...after, ...(after.spam ? { spam: after.spam } : {}) }, adminMay);
    if (allowed) expect(d.allowed).toBe(true);
    else expect(d).toMatchObject({ allowed: false, key });
  });

  it('reads the allowed keys as typed, refusing what is not a key', () => {
    expect(parseAdminMay('policy.spam.threshold, actions.spam  checks.spam')).toEqual({ ok: true, keys: ['spam.threshold', 'actions.spam', 'checks.spam'] });
    expect(parseAdminMay('spam.*')).toMatchObject({ ok: false });
  });
});
