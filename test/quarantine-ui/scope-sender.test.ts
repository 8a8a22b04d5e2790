// Issue 15 point 4: mail an authenticated user submitted is also visible from its sender's side
// (the sender domain's admin, and the sender); an unauthenticated sender address proves nothing.
// Acting still needs every recipient in scope.
import { describe, expect, it } from 'vitest';
import { canActOn, canSee } from '../../quarantine-ui/scope.ts';
import type { RecipientScope } from '../../gateway/store/metadata.ts';

const adminA: RecipientScope = { domains: ['a.test'], addresses: [] };
const adminB: RecipientScope = { domains: ['b.test'], addresses: [] };
const alice: RecipientScope = { domains: [], addresses: ['alice@a.test'] };
const outbound = { mailFrom: 'Alice@A.test', rcptTo: ['friend@elsewhere.test'], submittedBy: 'alice@a.test' };

describe('sender-side scope', () => {
  it('a submitted message is visible to its sender domain’s admin and to the sender, not to another domain’s admin', () => {
    expect([canSee(outbound, adminA), canSee(outbound, alice), canSee(outbound, adminB)]).toEqual([true, true, false]);
  });

  it('the same envelope sender without authentication (MX mail) gives the sender side nothing; nor does a null sender', () => {
    expect(canSee({ ...outbound, submittedBy: null }, adminA)).toBe(false);
    expect(canSee({ ...outbound, mailFrom: '' }, adminA)).toBe(false);
  });

  it('seeing is not acting: the recipients decide', () => {
    expect(canActOn(outbound, adminA)).toBe(false);
    expect(canActOn({ ...outbound, rcptTo: ['bob@a.test'] }, adminA)).toBe(true);
  });
});
