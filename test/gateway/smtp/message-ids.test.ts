import { describe, expect, it } from 'vitest';
import { messageIds, pooledRandom } from '../../../gateway/smtp/message-ids.ts';

describe('message ids', () => {
  it('the pooled randomness refills: every draw is a fresh byte fraction in [0, 1)', () => {
    const random = pooledRandom(16);
    const draws = Array.from({ length: 4096 }, random);
    expect(draws.every((x) => Number.isFinite(x) && x >= 0 && x < 1 && Number.isInteger(x * 256))).toBe(true);
    expect(new Set(draws).size).toBeGreaterThan(200); // 256 values possible; a stuck pool gives 16
  });

  it('are unique ULIDs in the order they were made', () => {
    const next = messageIds();
    const ids = Array.from({ length: 5000 }, next);
    expect(ids.every((id) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});
