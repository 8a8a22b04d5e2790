// The spam-share signal of hijack detection (rules/hijack.ts decideSpamShare).
import { describe, expect, it } from 'vitest';
import { decideSpamShare } from '../../rules/hijack.ts';

describe('decideSpamShare', () => {
  const p = { spamShare: 0.5, spamMinimum: 3 };
  it('needs both the share and the minimum count', () => {
    expect(decideSpamShare(2, 2, p).flagged).toBe(false); // 100 %, but only two
    expect(decideSpamShare(3, 6, p)).toEqual({ flagged: true, share: 0.5 });
    expect(decideSpamShare(3, 7, p).flagged).toBe(false);
    expect(decideSpamShare(0, 0, p)).toEqual({ flagged: false, share: 0 });
  });
});
