// The state table (gateway/ledger/states.ts): what it allows and refuses, checked as a table.
import { describe, expect, it } from 'vitest';
import { FINAL, IN_SPOOL, MOVES, isLegal, releaseHoldMove } from '../../../gateway/ledger/states.ts';
import { IN_FLIGHT } from '../../../gateway/store/metadata.ts';

describe('the state table', () => {
  it.each([
    ['queued', 'delivering', true],
    ['queued', 'quarantined', true],
    ['quarantined', 'releasing', true],
    ['releasing', 'released', true],
    ['deferred', 'failed', true],
    ['held', 'delivering', true],
    ['delivered', 'delivering', false],
    ['quarantined', 'delivering', false],
    ['refused', 'queued', false],
    ['deleted', 'quarantined', false],
    ['released', 'releasing', false],
  ] as const)('%s → %s: %s', (from, to, legal) => {
    expect(isLegal(from, to)).toBe(legal);
  });

  it('no move leaves a final state except a person acting on a quarantined one', () => {
    for (const [verb, m] of Object.entries(MOVES)) {
      const fromFinal = (m.from as readonly string[]).filter((s) => FINAL.includes(s as never));
      if (fromFinal.length > 0) expect([verb, fromFinal]).toEqual([verb, ['quarantined']]);
    }
  });

  it('the spool statuses are the store’s in-flight statuses', () => {
    expect([...IN_SPOOL].sort()).toEqual([...IN_FLIGHT].sort());
  });

  it('a held message returns to the stage it was held at', () => {
    expect(releaseHoldMove('queued')).toBe('releaseHoldToScan');
    expect(releaseHoldMove('deferred')).toBe('releaseHoldToDelivery');
    expect(releaseHoldMove('releasing')).toBe('releaseHoldToRelease');
  });
});
