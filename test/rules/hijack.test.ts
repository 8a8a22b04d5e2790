import { describe, expect, it } from 'vitest';
import { decideHijack } from '../../rules/hijack.ts';

describe('hijack detection', () => {
  const p = { factor: 10, minimum: 50 };
  it.each([
    ['a quiet account past the floor', 51, [0, 0, 0], true],
    ['a quiet account under the floor', 50, [0, 0, 0], false],
    ['a busy account at its usual volume', 400, [300, 500, 400], false],
    ['a busy account ten times over its baseline', 4001, [300, 500, 400], true],
    ['no history at all', 60, [], true],
  ])('%s', (_name, current, history, flagged) => {
    expect(decideHijack(current, history, p).flagged).toBe(flagged);
  });
  it('reports the baseline and the threshold it used', () => {
    expect(decideHijack(10, [2, 4], { factor: 3, minimum: 5 })).toEqual({ flagged: true, baseline: 3, threshold: 9 });
  });
});
