// Retry spacing and giving up, for scans and deliveries: exponential from a first delay, capped,
// like Postfix's minimal_backoff_time/maximal_backoff_time; a message gives up at the end of its
// queue lifetime (Postfix's maximal_queue_lifetime, 5 days), and its sender is warned once when it
// has waited longer than the delay-warning time. Pure, so the schedule is testable without a clock.
export interface RetryPolicy {
  retryDelayMs: number;
  maxRetryDelayMs: number;
}

/** Delay before attempt `attempt + 1`, given that `attempt` (1-based) just failed. */
export function retryDelay(attempt: number, policy: RetryPolicy): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(policy.retryDelayMs * 2 ** exponent, policy.maxRetryDelayMs);
}

export interface LifetimePolicy extends RetryPolicy {
  maxLifetimeMs: number;
  /** 0 turns the delay warning off. */
  delayWarningMs: number;
}

export type DeferralDecision = { action: 'retry'; delayMs: number; warnSender: boolean } | { action: 'give-up'; reason: string };

/** What to do with recipients still deferred after `attempt` tries of a message received at `receivedAt`. */
export function decideDeferral(f: { receivedAt: number; now: number; attempt: number; alreadyWarned: boolean }, policy: LifetimePolicy): DeferralDecision {
  const age = f.now - f.receivedAt;
  if (age >= policy.maxLifetimeMs) {
    return { action: 'give-up', reason: `message expired after ${formatDuration(age)} in the queue` };
  }
  // The last retry is never scheduled past the end of the lifetime: the message is tried once more then.
  const delayMs = Math.max(0, Math.min(retryDelay(f.attempt, policy), policy.maxLifetimeMs - age));
  const warnSender = policy.delayWarningMs > 0 && age >= policy.delayWarningMs && !f.alreadyWarned;
  return { action: 'retry', delayMs, warnSender };
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} seconds`;
  if (s < 7200) return `${Math.round(s / 60)} minutes`;
  if (s < 172_800) return `${Math.round(s / 3600)} hours`;
  return `${Math.round(s / 86_400)} days`;
}
