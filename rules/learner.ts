// The learner's policy (issue 19), pure: how much a learn event may move the models (the guards
// against one reporter poisoning them), and how the learner's verdict enters the spam score (the
// fusion with spamd's score).

export interface LearnerGuards {
  /** Learn events one reporter may cause per hour; beyond, its reports are recorded and not learned. */
  perReporterPerHour: number;
  /** The weight of one user's report (an administrator's, the CLI's and a release by an administrator weigh 1). */
  userWeight: number;
  /** Distinct reporters who must agree on a message before it moves a model with full weight. */
  quorum: number;
  /** The share of a domain's learn step that also goes to the global model. */
  globalShare: number;
}

export const DEFAULT_LEARNER_GUARDS: LearnerGuards = { perReporterPerHour: 30, userWeight: 0.25, quorum: 2, globalShare: 0.2 };

export interface LearnEventFacts {
  reporter: string;
  /** An administrator (console, CLI) confirms: full weight at once. */
  trusted: boolean;
  /** This reporter's learn events in the last hour. */
  recentByReporter: number;
  /** Earlier reports of this same message as this class: who, and the weight already applied. */
  earlier: { reporters: readonly string[]; weight: number };
}

/**
 * The weight in [0, 1] this event is learned with, and why. A message's total weight is capped at
 * 1: one user's report moves it by `userWeight`; when `quorum` distinct reporters agree (or an
 * administrator confirms) it is topped up to 1. The same reporter twice counts once.
 */
export function learnWeight(f: LearnEventFacts, g: LearnerGuards): { weight: number; why: string } {
  const left = Math.max(0, 1 - f.earlier.weight);
  if (f.trusted)
    return { weight: left, why: left < 1 ? `confirmed by an administrator (weight ${fmt(left)}, topped up to 1)` : 'taught by an administrator (full weight)' };
  if (f.recentByReporter >= g.perReporterPerHour) return { weight: 0, why: `not learned: ${f.reporter} reached ${g.perReporterPerHour} reports in an hour` };
  if (f.earlier.reporters.includes(f.reporter)) return { weight: 0, why: `not learned again: ${f.reporter} reported this message before` };
  const distinct = f.earlier.reporters.length + 1;
  const target = distinct >= g.quorum ? 1 : Math.min(1, g.userWeight * distinct);
  const weight = Math.max(0, Math.min(left, target - f.earlier.weight));
  return {
    weight,
    why:
      distinct >= g.quorum
        ? `${distinct} people reported it: full weight`
        : `one person's report: weight ${fmt(weight)} until ${g.quorum} agree or an administrator confirms`,
  };
}

const fmt = (n: number) => (Math.round(n * 100) / 100).toString();

export interface LearnerFusion {
  /** Spam-score points per unit of the learner's log-odds (calibrated in bench/detect.ts). */
  pointsPerLogOdds: number;
  /** The learner adds or removes at most this many points. */
  maxPoints: number;
  /** Models that learned from fewer messages count proportionally less (a new domain's few reports are noisy). */
  rampExamples: number;
}

// pointsPerLogOdds: a logistic regression of the label on (spamd score, learner log-odds) over the
// report loop of the TUNE split (bench/detect.ts --split tune) weighs one unit of log-odds as ~4
// spamd points (b/a ≈ 3.98); the reported split was not used for it. maxPoints 12: at ±8 the
// learner could not pull down ham that spamd scores 8–12 (newsletters), and the fused TPR at
// FPR ≤ 0.5 % fell below the learner's own (tune split, 10 seeds: 94.7 % at ±8, 98.0 % at ±12,
// no more beyond; bench/results/learner-tries.md).
export const DEFAULT_LEARNER_FUSION: LearnerFusion = { pointsPerLogOdds: 4, maxPoints: 12, rampExamples: 200 };

/**
 * The learner's points in the spam score: its log-odds of spam, times pointsPerLogOdds, scaled
 * down while the models have seen few messages, bounded by ±maxPoints. An empty learner adds 0,
 * so a fresh installation scores exactly as spamd does.
 */
export function learnerPoints(logOdds: number, trained: number, f: LearnerFusion): number {
  const ramp = Math.min(1, trained / Math.max(1, f.rampExamples));
  const p = f.pointsPerLogOdds * logOdds * ramp;
  return Math.max(-f.maxPoints, Math.min(f.maxPoints, Math.round(p * 10) / 10));
}
