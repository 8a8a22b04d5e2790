// The login throttle as a table: who is heard after which failures (rules/login-throttle.ts).
import { describe, expect, it } from 'vitest';
import { loginThrottle, type LoginFailureFacts } from '../../rules/login-throttle.ts';

const NOW = 1_000_000_000;
const WINDOW = 15 * 60_000;
const facts = (mine: [number, number | null], total: [number, number | null]): LoginFailureFacts => ({
  now: NOW,
  fromAddress: { count: mine[0], last: mine[1] },
  total: { count: total[0], last: total[1] },
  maxFailures: 10,
  windowMs: WINDOW,
});

describe('loginThrottle', () => {
  it.each([
    // [failures from this address, its last, all failures, their last, heard?]
    ['a clean address, even with the username under attack', [0, null], [500, NOW], true],
    ['two failures from this address, just now', [2, NOW], [2, NOW], true],
    ['three failures: waits 1 s', [3, NOW - 500], [3, NOW - 500], false],
    ['three failures, 1 s ago', [3, NOW - 1000], [3, NOW - 1000], true],
    ['six failures: waits 8 s', [6, NOW - 7000], [6, NOW - 7000], false],
    ['six failures, 8 s ago', [6, NOW - 8000], [6, NOW - 8000], true],
    ['the limit from this address: refused for the window', [10, NOW - WINDOW + 1], [10, NOW - WINDOW + 1], false],
    ['one failure here, the username over the limit from elsewhere: waits', [1, NOW - 60_000], [12, NOW - 100], false],
    ['one failure here, the username over the limit long ago', [1, NOW - 60_000], [12, NOW - 10_000], true],
  ] as const)('%s', (_name, mine, total, heard) => {
    expect(loginThrottle(facts(mine as [number, number | null], total as [number, number | null])).allowed).toBe(heard);
  });

  it('says how long to wait, in words', () => {
    const r = loginThrottle(facts([4, NOW], [4, NOW]));
    expect(r).toMatchObject({ allowed: false, retryAfterMs: 2000, reason: 'Too many failed logins for this username. Wait 2 seconds and try again.' });
    expect(loginThrottle(facts([10, NOW], [10, NOW]))).toMatchObject({ allowed: false, reason: expect.stringContaining('from your address. Wait 15 minutes') });
  });
});
