import { describe, expect, it } from 'vitest';
import { groupPlans, inlineRefusal, mayRefuse, oneLine, planFor, refusalReply, type RecipientVerdict } from '../../rules/actions.ts';
import { DEFAULT_POLICY, layerPolicy, type Policy, type VerdictClass } from '../../rules/policy.ts';
import type { ScanReport } from '../../scanners/types.ts';

const report: ScanReport = {
  virus: { status: 'clean' },
  spam: { status: 'scored', score: 7, threshold: 5, rules: ['X'] },
  attachments: {
    status: 'checked',
    structure: { status: 'ok' },
    parts: 2,
    files: [],
    findings: [{ part: '2', filename: 'a.exe', rule: 'banned-name', class: 'banned', reason: '.exe files are not allowed' }],
  },
  html: { status: 'checked', parts: 1, findings: [], phishing: [], changed: false, dangerous: false },
};
const score = { spam: 7, urls: 0, auth: 0, total: 7, threshold: 5, highThreshold: 10 };

function verdict(cls: VerdictClass, o: { recipient?: string; policy?: Policy; report?: ScanReport; reason?: string } = {}): RecipientVerdict {
  return {
    recipient: o.recipient ?? 'a@example.test',
    policy: o.policy ?? DEFAULT_POLICY,
    rules: [],
    report: o.report ?? report,
    class: cls,
    reason: o.reason ?? `${cls} reason`,
    reasons: [o.reason ?? `${cls} reason`],
    classes: cls === 'clean' ? [] : [{ class: cls, reasons: [o.reason ?? `${cls} reason`] }],
    score,
  };
}

describe('planFor', () => {
  it('tags spam with the spam tag and says why in a header', () => {
    const p = planFor(verdict('spam'), []);
    expect(p.plan).toMatchObject({ kind: 'deliver', class: 'spam', spec: { subjectTag: '{Spam?}', warning: 'spam: spam reason', strip: [] } });
  });

  it('delivers clean mail untagged, HTML disarmed with the default safe sites', () => {
    const p = planFor(verdict('clean'), ['list-manage.com']);
    expect(p.plan).toMatchObject({
      kind: 'deliver',
      spec: { subjectTag: null, warning: null, disarm: { remoteImages: 'keep', phishingNet: true, phishingSafeSites: ['list-manage.com'] } },
    });
  });

  it('adds <Cleaned> when disarming removes something dangerous, not for web bugs alone', () => {
    const html = (dangerous: boolean): ScanReport => ({
      ...report,
      html: { status: 'checked', parts: 1, findings: [], phishing: [], changed: true, dangerous },
    });
    expect(planFor(verdict('clean', { report: html(true) }), []).plan).toMatchObject({ spec: { subjectTag: '<Cleaned>' } });
    expect(planFor(verdict('clean', { report: html(false) }), []).plan).toMatchObject({ spec: { subjectTag: null } });
    const tagBugs = layerPolicy(DEFAULT_POLICY, [{ html: { tagWebBugs: true } }]);
    expect(planFor(verdict('phishing', { report: html(false), policy: tagBugs }), []).plan).toMatchObject({ spec: { subjectTag: '{Fraud?} <Cleaned>' } });
  });

  it('strips the banned parts and tags the subject when the policy says strip', () => {
    const policy = layerPolicy(DEFAULT_POLICY, [{ actions: { banned: { do: 'strip' } } }]);
    expect(planFor(verdict('banned', { policy }), []).plan).toMatchObject({ kind: 'deliver', spec: { strip: ['2'], subjectTag: '{Filename?}' } });
  });

  it('quarantines and rejects by policy', () => {
    expect(planFor(verdict('virus'), []).plan).toEqual({ kind: 'quarantine', class: 'virus' });
    const reject = layerPolicy(DEFAULT_POLICY, [{ actions: { virus: { do: 'reject' } } }]);
    expect(planFor(verdict('virus', { policy: reject, reason: 'virus: Eicar-Test' }), []).plan).toEqual({
      kind: 'reject',
      class: 'virus',
      reply: { code: 554, enhanced: '5.7.1', text: 'Message refused: virus: Eicar-Test' },
    });
  });
});

describe('groups and inline refusals', () => {
  const reject = layerPolicy(DEFAULT_POLICY, [{ actions: { virus: { do: 'reject' } } }]);

  it('groups recipients with equal plans, in order', () => {
    const tagged = layerPolicy(DEFAULT_POLICY, [{ tags: { spam: '[SPAM]' } }]);
    const plans = [
      planFor(verdict('spam', { recipient: 'a@x.test' }), []),
      planFor(verdict('spam', { recipient: 'b@y.test', policy: tagged }), []),
      planFor(verdict('spam', { recipient: 'c@x.test' }), []),
    ];
    expect(groupPlans(plans).map((g) => g.members.map((m) => m.recipient))).toEqual([['a@x.test', 'c@x.test'], ['b@y.test']]);
  });

  it('refuses only when every recipient refuses', () => {
    const both = [planFor(verdict('virus', { policy: reject }), []), planFor(verdict('virus', { policy: reject, recipient: 'b@x.test' }), [])];
    expect(inlineRefusal(both)).toMatchObject({ code: 554 });
    const mixed = [both[0], planFor(verdict('virus', { recipient: 'c@x.test' }), [])];
    expect(inlineRefusal(mixed)).toBeNull();
  });

  it('waits only when every policy has some reject action', () => {
    expect(mayRefuse([DEFAULT_POLICY])).toBe(false);
    expect(mayRefuse([reject])).toBe(true);
    expect(mayRefuse([reject, DEFAULT_POLICY])).toBe(false);
  });
});

describe('refusal replies', () => {
  it('never lets message content inject reply lines or non-ASCII', () => {
    const r = refusalReply({ class: 'banned', reason: 'the attachment "invoice\u202efdp.exe"\r\n250 ok', score });
    expect(r.text).toBe('Message refused: the attachment "invoice\\u202efdp.exe" 250 ok');
    expect(oneLine('x'.repeat(300))).toHaveLength(200);
  });

  it('says the score for spam', () => {
    expect(refusalReply({ class: 'high-spam', reason: 'x', score: { ...score, total: 12.34 } })).toEqual({
      code: 550,
      enhanced: '5.7.1',
      text: 'Message refused as spam (score 12.3)',
    });
  });
});
