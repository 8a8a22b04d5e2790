// Retry spacing for scans and deliveries: exponential from a first delay, capped, like Postfix's
// minimal_backoff_time/maximal_backoff_time. Pure, so the schedule is testable without a clock.
export interface RetryPolicy {
  retryDelayMs: number;
  maxRetryDelayMs: number;
}

/** Delay before attempt `attempt + 1`, given that `attempt` (1-based) just failed. */
export function retryDelay(attempt: number, policy: RetryPolicy): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(policy.retryDelayMs * 2 ** exponent, policy.maxRetryDelayMs);
}
