// Every class decides, the strictest action wins: a table over every pair of verdict classes, each
// pair built as a scan report that really holds both kinds of evidence and taken through
// classify → planFor, under the default policy and under one where every class acts differently.
import { describe, expect, it } from 'vitest';
import { classify } from '../../rules/verdict.ts';
import { planFor, type RecipientPlan } from '../../rules/actions.ts';
import { DEFAULT_POLICY, DISPOSITIONS, layerPolicy, VERDICT_CLASSES, type Policy, type VerdictClass } from '../../rules/policy.ts';
import type { AttachmentFindingReport, ScanReport } from '../../scanners/types.ts';

const CLASSES = VERDICT_CLASSES.filter((c) => c !== 'clean');
const base: ScanReport = {
  virus: { status: 'clean' },
  spam: { status: 'scored', score: 0, threshold: 5, rules: [] },
  attachments: { status: 'checked', structure: { status: 'ok' }, parts: 2, files: [], findings: [] },
  html: { status: 'checked', parts: 1, findings: [], phishing: [], changed: false, dangerous: false },
  auth: { status: 'checked', spf: { result: 'none', domain: '' }, dkim: [], dmarc: null, arc: null, header: 'mx; none' },
  urls: { status: 'checked', hosts: 0, truncated: false, hits: [], errors: [], score: 0 },
  list: null,
};
const finding = (cls: string, part: string): AttachmentFindingReport => ({ part, filename: `f${part}.bin`, rule: cls, class: cls, reason: `${cls} finding` });

/** Adds one class's evidence to a report. */
function withEvidence(r: ScanReport, c: VerdictClass): ScanReport {
  const a = r.attachments as Extract<ScanReport['attachments'], { status: 'checked' }>;
  const addFinding = (f: AttachmentFindingReport) => ({ ...r, attachments: { ...a, findings: [...a.findings, f] } });
  const score = (n: number): ScanReport => ({
    ...r,
    spam: { status: 'scored', score: Math.max(n, r.spam.status === 'scored' ? r.spam.score : 0), threshold: 5, rules: ['GTUBE'] },
  });
  switch (c) {
    case 'virus':
      return { ...r, virus: { status: 'infected', viruses: ['Eicar-Test-Signature'] } };
    case 'blocked':
      return { ...r, list: { kind: 'block', scope: 'domain', entry: 'spammer.test' } };
    case 'malformed':
      return addFinding(finding('malformed', '2'));
    case 'banned':
      return addFinding(finding('banned', '3'));
    case 'unscannable':
      return addFinding(finding('unscannable', '4'));
    case 'spoofed':
      return {
        ...r,
        auth: { ...(r.auth as object), dmarc: { result: 'fail', domain: 'bank.test', policy: 'reject', from: 'bank.test' } } as ScanReport['auth'],
      };
    case 'phishing':
      return {
        ...r,
        html: {
          status: 'checked',
          parts: 1,
          findings: [],
          phishing: [{ part: '1', shown: 'www.paypal.com', real: 'evil-login.example.net' }],
          changed: true,
          dangerous: true,
        },
      };
    case 'high-spam':
      return score(1001.5);
    case 'spam':
      return score(6);
    case 'clean':
      return r;
  }
}

function plan(classes: VerdictClass[], policy: Policy, r0: ScanReport = base): RecipientPlan {
  const report = classes.reduce(withEvidence, r0);
  const c = classify(report, policy);
  if (c.kind !== 'verdict') throw new Error(`no verdict: ${c.reason}`);
  return planFor(
    { recipient: 'a@a.test', policy, rules: [], report, class: c.class, reason: c.reason, reasons: c.reasons, classes: c.classes, score: c.score },
    [],
  );
}

// One score: with both spam classes' evidence the higher score wins, and it is high-spam alone.
const implied = (cs: VerdictClass[]) => (cs.includes('high-spam') ? cs.filter((c) => c !== 'spam') : cs);

/** The expectation, stated independently: the strictest disposition, ties to the most severe class. */
function expected(cs: VerdictClass[], p: Policy) {
  const all = implied(cs).sort((x, y) => VERDICT_CLASSES.indexOf(x) - VERDICT_CLASSES.indexOf(y));
  const strictness = (c: VerdictClass) => DISPOSITIONS.indexOf(p.actions[c].do);
  const top = Math.max(...all.map(strictness));
  const cls = all.find((c) => strictness(c) === top)!;
  return { all, cls, action: p.actions[cls].do };
}

const MIXED = layerPolicy(DEFAULT_POLICY, [
  {
    actions: {
      virus: { do: 'reject' },
      blocked: { do: 'quarantine' },
      malformed: { do: 'tagged' },
      banned: { do: 'strip' },
      unscannable: { do: 'headers' },
      spoofed: { do: 'tagged' },
      phishing: { do: 'tagged' },
      'high-spam': { do: 'quarantine' },
      spam: { do: 'headers' },
    },
  },
]);

const pairs = CLASSES.flatMap((a, i) => CLASSES.slice(i + 1).map((b) => [a, b] as [VerdictClass, VerdictClass]));

describe.each([
  ['default policy', DEFAULT_POLICY],
  ['a policy where the classes act differently', MIXED],
])('every pair of classes, %s', (_name, policy) => {
  it.each(pairs)('%s + %s: the strictest action wins, with every tag and reason', (a, b) => {
    const p = plan([a, b], policy);
    const want = expected([a, b], policy);
    expect(p.classes.map((c) => c.class)).toEqual(want.all);
    expect(p.class).toBe(want.cls);
    expect(p.action.do).toBe(want.action);
    expect(p.reasons.length).toBeGreaterThanOrEqual(want.all.length);
    expect(p.reason).toBe(p.classes.find((c) => c.class === want.cls)!.reasons[0]);
    if (p.plan.kind === 'deliver') {
      const tagging = want.all.filter((c) => ['tagged', 'strip'].includes(policy.actions[c].do));
      for (const c of tagging) expect(p.plan.spec.subjectTag).toContain(policy.tags[c]);
      const marked = want.all.filter((c) => policy.actions[c].do !== 'deliver');
      for (const c of marked) expect(p.plan.spec.warning).toContain(`${c}: `);
      if (want.action === 'strip') expect(p.plan.spec.strip).toEqual(['3']);
    } else {
      expect(p.plan).toMatchObject({ kind: want.action, class: want.cls });
    }
    const spamScore = want.all.includes('spam') || want.all.includes('high-spam');
    expect(p.statusHeaders).toContainEqual(['X-Spam-Flag', spamScore ? 'YES' : 'NO']);
  });
});

describe('precedence, the cases that were wrong', () => {
  it('GTUBE plus one misleading link is quarantined as high-spam, flagged as spam, phishing kept as a reason', () => {
    const p = plan(['phishing', 'high-spam'], DEFAULT_POLICY);
    expect(p.plan).toEqual({ kind: 'quarantine', class: 'high-spam' });
    expect(p.classes.map((c) => c.class)).toEqual(['phishing', 'high-spam']);
    expect(p.reasons.some((r) => r.includes('evil-login.example.net'))).toBe(true);
    expect(p.statusHeaders).toContainEqual(['X-Spam-Flag', 'YES']);
    expect(p.statusHeaders.find(([k]) => k === 'X-Spam-Status')?.[1]).toMatch(/^Yes, score=1001\.5 /);
  });

  it('phishing that is also spam gets both tags', () => {
    const p = plan(['phishing', 'spam'], DEFAULT_POLICY);
    expect(p.plan).toMatchObject({ kind: 'deliver', class: 'phishing', spec: { subjectTag: '{Fraud?} {Spam?} <Cleaned>' } });
    expect(p.statusHeaders).toContainEqual(['X-Spam-Flag', 'YES']);
  });

  it('an allow-list entry lifts only the spam classes: the link still tags, the flag says NO', () => {
    const allowed: ScanReport = { ...base, list: { kind: 'allow', scope: 'user', entry: 'news@shop.test' } };
    const p = plan(['phishing', 'high-spam'], DEFAULT_POLICY, allowed);
    expect(p.classes.map((c) => c.class)).toEqual(['phishing']);
    expect(p.plan).toMatchObject({ kind: 'deliver', class: 'phishing', spec: { subjectTag: '{Fraud?} <Cleaned>' } });
    expect(p.statusHeaders).toContainEqual(['X-Spam-Flag', 'NO']);
    expect(plan(['virus', 'spam'], DEFAULT_POLICY, allowed).plan).toEqual({ kind: 'quarantine', class: 'virus' });
  });

  it('notices and forwarded copies of every class with evidence are kept', () => {
    const p = layerPolicy(DEFAULT_POLICY, [
      { actions: { phishing: { notifyAdmin: true, forwardTo: ['soc@a.test'] }, 'high-spam': { notifyRecipient: true } } },
    ]);
    const r = plan(['phishing', 'high-spam'], p);
    expect(r.action).toEqual({ do: 'quarantine', notifyRecipient: true, notifyAdmin: true, forwardTo: ['soc@a.test'] });
  });

  it('a clean message is delivered with X-Spam-Flag: NO', () => {
    const p = plan([], DEFAULT_POLICY);
    expect(p.plan).toMatchObject({ kind: 'deliver', class: 'clean', spec: { subjectTag: null, warning: null } });
    expect(p.statusHeaders).toContainEqual(['X-Spam-Flag', 'NO']);
  });
});
