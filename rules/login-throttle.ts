// Whether a console login attempt is heard, from the failed logins recorded for the username.
//
// Counting failures per username alone lets anyone lock a known admin out by failing ten times from
// anywhere. So the limits are per username AND client address: an address that keeps failing for a
// username backs off (1 s, 2 s, 4 s … between tries, doubling from the third failure) and is refused
// for the window after `maxFailures`; the username as a whole gets a back-off only for addresses that
// have failed for it. An address with no failures for the username is always heard, so the right
// password from a clean address still logs in. (Guessing from many addresses is bounded by the
// per-address request limit, and each of those addresses soon backs off.)

export interface LoginFailureFacts {
  now: number;
  /** Failures for this username from this client address within the window, and the newest one's time. */
  fromAddress: { count: number; last: number | null };
  /** Failures for this username from every address within the window, and the newest one's time. */
  total: { count: number; last: number | null };
  maxFailures: number;
  windowMs: number;
}

export type LoginThrottle = { allowed: true } | { allowed: false; retryAfterMs: number; reason: string };

const BACKOFF_FROM = 3;
const BACKOFF_BASE_MS = 1000;

const backoff = (failures: number, windowMs: number) => Math.min(windowMs, BACKOFF_BASE_MS * 2 ** (failures - BACKOFF_FROM));

export function loginThrottle(f: LoginFailureFacts): LoginThrottle {
  const mine = f.fromAddress;
  if (mine.count === 0) return { allowed: true };
  if (mine.count >= f.maxFailures) {
    const minutes = Math.ceil(f.windowMs / 60_000);
    return {
      allowed: false,
      retryAfterMs: f.windowMs,
      reason: `Too many failed logins for this username from your address. Wait ${minutes} minutes and try again.`,
    };
  }
  // This address has failed for the username: it waits the longer of its own back-off and the
  // username's (when failures come from many addresses at once).
  const waits = [mine.count >= BACKOFF_FROM && mine.last !== null ? mine.last + backoff(mine.count, f.windowMs) : 0];
  if (f.total.count >= f.maxFailures && f.total.last !== null) waits.push(f.total.last + backoff(f.total.count - f.maxFailures + BACKOFF_FROM, f.windowMs));
  const until = Math.max(...waits);
  if (until <= f.now) return { allowed: true };
  const seconds = Math.ceil((until - f.now) / 1000);
  return {
    allowed: false,
    retryAfterMs: until - f.now,
    reason: `Too many failed logins for this username. Wait ${seconds} second${seconds === 1 ? '' : 's'} and try again.`,
  };
}
