// The learner's policy (issue 19): the guards' weight per learn event and the fusion with spamd's score.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LEARNER_FUSION, DEFAULT_LEARNER_GUARDS, learnWeight, learnerPoints } from '../../rules/learner.ts';
import { classify } from '../../rules/verdict.ts';
import { DEFAULT_POLICY, layerPolicy } from '../../rules/policy.ts';
import type { LearnerScan, ScanReport } from '../../scanners/types.ts';

const g = DEFAULT_LEARNER_GUARDS;
const none = { reporters: [], weight: 0 };

describe('learn weight (guards)', () => {
  it('one user moves a message by userWeight; a second, distinct reporter tops it up to 1; the same reporter twice counts once', () => {
    const first = learnWeight({ reporter: 'a@x.test', trusted: false, recentByReporter: 0, earlier: none }, g);
    expect(first.weight).toBe(0.25);
    expect(learnWeight({ reporter: 'a@x.test', trusted: false, recentByReporter: 1, earlier: { reporters: ['a@x.test'], weight: 0.25 } }, g)).toMatchObject({
      weight: 0,
      why: expect.stringContaining('reported this message before'),
    });
    expect(learnWeight({ reporter: 'b@x.test', trusted: false, recentByReporter: 0, earlier: { reporters: ['a@x.test'], weight: 0.25 } }, g)).toMatchObject({
      weight: 0.75,
      why: '2 people reported it: full weight',
    });
    expect(
      learnWeight({ reporter: 'c@x.test', trusted: false, recentByReporter: 0, earlier: { reporters: ['a@x.test', 'b@x.test'], weight: 1 } }, g).weight,
    ).toBe(0);
  });

  it('an administrator confirms with full weight (topping up what users gave); a reporter over its hourly rate teaches nothing', () => {
    expect(learnWeight({ reporter: 'admin', trusted: true, recentByReporter: 999, earlier: none }, g).weight).toBe(1);
    expect(learnWeight({ reporter: 'admin', trusted: true, recentByReporter: 0, earlier: { reporters: ['a@x.test'], weight: 0.25 } }, g).weight).toBe(0.75);
    expect(learnWeight({ reporter: 'a@x.test', trusted: false, recentByReporter: g.perReporterPerHour, earlier: none }, g)).toMatchObject({
      weight: 0,
      why: expect.stringContaining('30 reports in an hour'),
    });
  });
});

const learned = (logOdds: number, trained = 1000): LearnerScan => ({
  status: 'scored',
  logOdds,
  probability: 1 / (1 + Math.exp(-logOdds)),
  trained,
  models: ['*', 'x.test'],
  spamSigns: ['FREE VIAGRA'],
  hamSigns: ['project meeting'],
});
const report = (spamd: number, learner?: LearnerScan): ScanReport => ({
  virus: { status: 'clean' },
  spam: { status: 'scored', score: spamd, threshold: 5, rules: [] },
  list: null,
  ...(learner ? { learner } : {}),
});
const lenient = layerPolicy(DEFAULT_POLICY, [{ checks: { attachments: false, html: false, auth: false, urls: false } }]);

describe('fusion', () => {
  it('adds the learner’s log-odds as points, bounded, ramped in while the models are young; an empty learner adds nothing', () => {
    expect(learnerPoints(0, 0, DEFAULT_LEARNER_FUSION)).toBe(0);
    expect(learnerPoints(1.5, 1000, DEFAULT_LEARNER_FUSION)).toBe(1.5 * DEFAULT_LEARNER_FUSION.pointsPerLogOdds);
    expect(learnerPoints(100, 1000, DEFAULT_LEARNER_FUSION)).toBe(DEFAULT_LEARNER_FUSION.maxPoints);
    expect(learnerPoints(-100, 1000, DEFAULT_LEARNER_FUSION)).toBe(-DEFAULT_LEARNER_FUSION.maxPoints);
    expect(learnerPoints(1, DEFAULT_LEARNER_FUSION.rampExamples / 2, DEFAULT_LEARNER_FUSION)).toBe(0.5 * DEFAULT_LEARNER_FUSION.pointsPerLogOdds);
  });

  it('is calibrated and monotonic: more spam-like log-odds or a higher spamd score never lower the total', () => {
    // One unit of log-odds is worth pointsPerLogOdds spamd points (fitted on the tune split).
    expect(DEFAULT_LEARNER_FUSION.pointsPerLogOdds).toBe(4);
    let last = -Infinity;
    for (let lo = -6; lo <= 6; lo += 0.05) {
      const p = learnerPoints(lo, 1000, DEFAULT_LEARNER_FUSION);
      expect(p).toBeGreaterThanOrEqual(last);
      last = p;
    }
    const total = (spamd: number, lo: number) => {
      const c = classify(report(spamd, learned(lo)), lenient);
      return c.kind === 'verdict' ? c.score!.total : NaN;
    };
    for (const lo of [-3, -0.5, 0, 0.5, 3]) for (const spamd of [0, 2.5, 5]) expect(total(spamd + 1, lo)).toBeGreaterThan(total(spamd, lo));
  });

  it('a message spamd lets through is spam once the learner is sure, and the reason says what the learner saw', () => {
    const c = classify(report(2, learned(1)), lenient);
    expect(c).toMatchObject({ kind: 'verdict', class: 'spam', score: { spam: 2, learner: 4, total: 6 } });
    expect(c.kind === 'verdict' && c.reason).toBe('spam score 6.0 (SpamAssassin 2.0, learned filter +4.0 (spam-like: “FREE VIAGRA”)), 5.0 or more is spam');
  });

  it('the learner can also pull a false positive back below the threshold, and says why', () => {
    const c = classify(report(6, learned(-0.75)), lenient);
    expect(c).toMatchObject({
      kind: 'verdict',
      class: 'clean',
      reason: 'spam score 3.0 (SpamAssassin 6.0, learned filter −3.0 (like wanted mail: “project meeting”)), below 5.0',
    });
  });

  it('off in the policy, the learner counts for nothing; unreadable models are a retry, not a silent pass', () => {
    const off = layerPolicy(lenient, [{ checks: { learner: false } }]);
    expect(classify(report(2, learned(1)), off)).toMatchObject({ class: 'clean', score: { total: 2 } });
    expect(classify(report(2, { status: 'error', reason: 'database down' }), lenient)).toEqual({
      kind: 'retry',
      reason: 'learned filter failed: database down',
    });
  });
});
