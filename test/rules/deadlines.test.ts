import { describe, expect, it } from 'vitest';
import { busy, commandTimeoutMs, creditData, expectCommand, nextDeadline, startData, startSession, type DeadlinePolicy } from '../../rules/deadlines.ts';

const policy: DeadlinePolicy = {
  commandMs: 300_000,
  commandUnderLoadMs: 10_000,
  underLoadAt: 0.8,
  dataMinBytesPerSec: 500,
  dataMs: 600_000,
  sessionMs: 1_800_000,
};

describe('session deadlines', () => {
  it('the command deadline is shortened while the listener is nearly full (Postfix under stress)', () => {
    expect(commandTimeoutMs(policy, { open: 399, max: 500 })).toBe(300_000);
    expect(commandTimeoutMs(policy, { open: 400, max: 500 })).toBe(10_000);
    expect(commandTimeoutMs({ ...policy, underLoadAt: 1 }, { open: 499, max: 500 })).toBe(300_000);
  });

  it('DATA: each byte buys 1/rate s, never more than the command timeout ahead; the total deadline stays', () => {
    let s = startData(startSession(policy, 0), policy, 0, 300_000);
    expect(nextDeadline(s)).toEqual({ at: 300_000, kind: 'data-rate' });
    s = creditData(s, policy, 1_000, 1, 300_000); // one byte: 2 ms, a byte a second loses 998 ms a second
    expect(nextDeadline(s)).toEqual({ at: 300_002, kind: 'data-rate' });
    s = creditData(s, policy, 2_000, 10_000_000, 300_000); // a burst cannot buy more than 300 s ahead
    expect(nextDeadline(s)).toEqual({ at: 302_000, kind: 'data-rate' });
    for (let t = 3_000; t <= 600_000; t += 1_000) s = creditData(s, policy, t, 1_000_000, 300_000);
    expect(nextDeadline(s)).toEqual({ at: 600_000, kind: 'data' });
  });

  it('nothing runs while we work; the session deadline is looked at between commands only', () => {
    const started = startSession(policy, 0);
    expect(nextDeadline(started)).toBeNull();
    expect(nextDeadline(expectCommand(started, 1_700_000, 300_000))).toEqual({ at: 1_800_000, kind: 'session' });
    expect(nextDeadline(startData(started, policy, 1_700_000, 300_000))).toEqual({ at: 2_000_000, kind: 'data-rate' });
    expect(nextDeadline(busy(expectCommand(started, 0, 300_000)))).toBeNull();
  });
});
