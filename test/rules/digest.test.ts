// The digest decisions (rules/digest.ts): a domain's mode, when a notice is due, which links a
// listed message gets; and that policy.digest is one of the keys a superadmin can hand to domain admins.
import { describe, expect, it } from 'vitest';
import { digestMode, linksFor, noticeDue } from '../../rules/digest.ts';
import { decidePolicyChange } from '../../rules/policy-bounds.ts';
import { policyPatchSchema } from '../../gateway/config/policy.ts';

describe('digestMode', () => {
  it('takes the domain’s policy, else the global one, else daily; a domain not hosted gets none', () => {
    expect(digestMode(undefined, {})).toBe('daily');
    expect(digestMode({ digest: 'off' }, {})).toBe('off');
    expect(digestMode({ digest: 'off' }, { policy: { digest: 'notice' } })).toBe('notice');
    expect(digestMode({ digest: 'notice' }, { policy: {} })).toBe('notice');
    expect(digestMode({ digest: 'daily' }, undefined)).toBe('off');
  });
  it('the config file refuses a mode that does not exist', () => {
    expect(policyPatchSchema.safeParse({ digest: 'hourly' }).success).toBe(false);
    expect(policyPatchSchema.parse({ digest: 'notice' })).toEqual({ digest: 'notice' });
  });
});

describe('noticeDue', () => {
  it('is due once the oldest hold is a batch window old', () => {
    expect(noticeDue([], 10_000, 300)).toBe(false);
    expect(noticeDue([9_800, 9_900], 10_000, 300)).toBe(false);
    expect(noticeDue([9_700, 9_990], 10_000, 300)).toBe(true);
  });
});

describe('linksFor', () => {
  const base = { recipient: 'alice@a.test', rcptTo: ['alice@a.test'], mailFrom: 'bob@b.test', userMayRelease: true };
  it('offers release, sender lists and not spam for the recipient’s own message', () => {
    expect(linksFor(base)).toEqual({ release: 'release', senderLists: true, notSpam: true });
  });
  it('offers a request where the class may not be released by the user', () => {
    expect(linksFor({ ...base, userMayRelease: false }).release).toBe('request');
  });
  it('offers no release for a message that also went to someone else, whatever the case of the addresses', () => {
    expect(linksFor({ ...base, rcptTo: ['Alice@A.test', 'carol@a.test'] }).release).toBe('none');
    expect(linksFor({ ...base, rcptTo: ['Alice@A.test'] }).release).toBe('release');
  });
  it('offers no list links for the null sender', () => {
    expect(linksFor({ ...base, mailFrom: '' }).senderLists).toBe(false);
  });
});

describe('policy bounds', () => {
  it('a domain admin may change policy.digest only where the superadmin listed it', () => {
    expect(decidePolicyChange({}, { digest: 'notice' }, ['digest'])).toEqual({ allowed: true, changed: ['digest'] });
    expect(decidePolicyChange({}, { digest: 'notice' }, ['spam'])).toMatchObject({ allowed: false, key: 'policy.digest' });
  });
});
