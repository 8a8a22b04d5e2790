// Issue 18: a compromised account is the classic outbound disaster. An account is flagged when
// what it does in the current window (messages, distinct recipients) jumps far above its own
// baseline, the mean of the windows before; a floor keeps a quiet account's first busy hour (a
// newsletter of 30) from counting as a jump from zero.

export interface HijackPolicy {
  /** Flag when the current window exceeds this many times the baseline... */
  factor: number;
  /** ...and at least this many (the floor for accounts with little or no history). */
  minimum: number;
}

export interface HijackDecision {
  flagged: boolean;
  baseline: number;
  threshold: number;
}

/** `current`: this window's count; `history`: the counts of the windows before (missing ones as 0). */
export function decideHijack(current: number, history: readonly number[], p: HijackPolicy): HijackDecision {
  const baseline = history.length > 0 ? history.reduce((a, b) => a + b, 0) / history.length : 0;
  const threshold = Math.max(p.minimum, p.factor * baseline);
  return { flagged: current > threshold, baseline, threshold };
}

export interface SpamSharePolicy {
  /** Flag when at least this share (0–1) of the account's scanned outbound mail in the window is spam... */
  spamShare: number;
  /** ...and at least this many of its messages were (one spam in two messages is not yet a pattern). */
  spamMinimum: number;
}

/**
 * A stolen account sends spam: its outbound mail, scanned as inbound, turns from ham to spam.
 * `spam`, `scanned`: the account's spam-classed and scanned messages in the current window.
 */
export function decideSpamShare(spam: number, scanned: number, p: SpamSharePolicy): { flagged: boolean; share: number } {
  const share = scanned > 0 ? spam / scanned : 0;
  return { flagged: spam >= p.spamMinimum && share >= p.spamShare, share };
}
