// The content verdict: a pure function from one recipient's view of the scan report and that
// recipient's policy (rules/policy.ts) to a verdict class. Fail closed: a check that is on and
// could not look is a retry (the message stays in the spool and is scanned again), never "clean";
// a limit reached is "unscannable" or "malformed", classes of their own.
import type { LearnerScan, ScanReport, ScoreSummary } from '../scanners/types.ts';
import type { Policy, VerdictClass } from './policy.ts';
import { learnerPoints } from './learner.ts';
import {
  allowedReason,
  belowThresholdReason,
  blockedReason,
  findingReason,
  formatScore,
  phishingReason,
  scannerDownReason,
  spamReason,
  spoofedReason,
  unscannableHtmlReason,
  virusReason,
  virusUnscannableReason,
} from './explain.ts';

export type { VerdictClass };

/** One class the report holds evidence for, with that evidence in words. */
export interface ClassEvidence {
  class: VerdictClass;
  reasons: string[];
}

export type Classification =
  /** A check is on and its scanner failed: scan again later. */
  | { kind: 'retry'; reason: string }
  | {
      kind: 'verdict';
      /** The most severe class with evidence (rules/actions.ts then picks the one whose action is strictest). */
      class: VerdictClass;
      reason: string;
      reasons: string[];
      /** Every class with evidence, most severe first (empty: clean). Each one's action counts. */
      classes: ClassEvidence[];
      score: ScoreSummary;
    };

export { formatScore };

const SPAM_CLASSES: readonly VerdictClass[] = ['spam', 'high-spam'];
export const isSpamClass = (c: VerdictClass): boolean => SPAM_CLASSES.includes(c);

/** Checks that are on but have no usable result: each one a reason to scan again. */
function failures(r: ScanReport, p: Policy): string[] {
  const out: string[] = [];
  const failed = (name: string, s: { status: string; reason?: string } | undefined) => {
    if (!s) out.push(`${name} check did not run`);
    else if (s.status === 'error') out.push(`${name} check failed: ${s.reason}`);
  };
  if (p.checks.virus) {
    if (r.virus.status === 'error' && p.outage.virus === 'retry') out.push(`virus scanner unavailable: ${r.virus.reason}`);
    else if (r.virus.status === 'skipped') out.push(`virus check did not run: ${r.virus.reason}`);
  }
  if (p.checks.spam && r.spam.status === 'error' && p.outage.spam === 'retry') out.push(`spam scanner unavailable: ${r.spam.reason}`);
  if (p.checks.attachments) failed('attachment', r.attachments);
  if (p.checks.html) failed('HTML', r.html);
  if (p.checks.auth) failed('authentication', r.auth);
  if (p.checks.urls) failed('URL', r.urls);
  // The learner's models live in the metadata database: unreadable is a retry like any check.
  if (p.checks.learner && r.learner?.status === 'error') out.push(`learned filter failed: ${r.learner.reason}`);
  return out;
}

/** The score the spam classes are decided on: spamd's, plus URL listings, plus DMARC penalties, plus the learned filter's points. */
export function scoreOf(r: ScanReport, p: Policy): ScoreSummary {
  const spam = p.checks.spam && r.spam.status === 'scored' ? r.spam.score : null;
  const urls = p.checks.urls && r.urls?.status === 'checked' ? r.urls.score : 0;
  let auth = 0;
  const dmarc = p.checks.auth && r.auth?.status === 'checked' ? r.auth.dmarc : null;
  if (dmarc && dmarc.result === 'fail' && !arcExcuses(r, p)) {
    if (dmarc.policy === 'quarantine') auth = p.auth.dmarcQuarantineScore;
    if (dmarc.policy === 'reject' && p.auth.dmarcReject === 'score') auth = p.auth.dmarcRejectScore;
  }
  const learned = p.checks.learner && r.learner?.status === 'scored' ? r.learner : null;
  const learner = learned ? learnerPoints(learned.logOdds, learned.trained, p.learner) : 0;
  const total = Math.round(((spam ?? 0) + urls + auth + learner) * 1000) / 1000;
  return { spam, urls, auth, ...(learned ? { learner } : {}), total, threshold: p.spam.threshold, highThreshold: p.spam.highThreshold };
}

function arcExcuses(r: ScanReport, p: Policy): boolean {
  return p.auth.trustArc && r.auth?.status === 'checked' && r.auth.arc?.result === 'pass';
}

/** Each class's evidence in the report in plain words (rules/explain.ts), most severe class first. */
function evidence(r: ScanReport, p: Policy, score: ScoreSummary): [VerdictClass, string[]][] {
  const a = p.checks.attachments && r.attachments?.status === 'checked' ? r.attachments : null;
  const findings = (cls: string) => (a ? a.findings.filter((f) => f.class === cls).map(findingReason) : []);
  const encrypted = findings('encrypted');
  const html = p.checks.html && r.html?.status === 'checked' ? r.html : null;
  const auth = p.checks.auth && r.auth?.status === 'checked' ? r.auth : null;
  const dmarc = auth?.dmarc;
  const spoofed =
    dmarc && dmarc.result === 'fail' && dmarc.policy === 'reject' && p.auth.dmarcReject === 'spoofed' && !arcExcuses(r, p)
      ? [spoofedReason(dmarc.from || dmarc.domain)]
      : [];
  const listed = p.checks.lists && r.list?.kind === 'block' ? [blockedReason(r.list)] : [];
  const scored = hasScore(score);
  return [
    ['virus', p.checks.virus && r.virus.status === 'infected' ? [virusReason(r.virus.viruses)] : []],
    ['blocked', listed],
    ['malformed', findings('malformed')],
    ['banned', [...findings('banned'), ...(p.attachments.encrypted === 'banned' ? encrypted : [])]],
    [
      'unscannable',
      [
        ...(p.checks.virus && r.virus.status === 'unscannable' ? [virusUnscannableReason(r.virus.reason)] : []),
        ...(p.checks.virus && r.virus.status === 'error' && p.outage.virus === 'quarantine' ? [scannerDownReason('virus', r.virus.reason)] : []),
        ...(p.checks.spam && r.spam.status === 'error' && p.outage.spam === 'quarantine' ? [scannerDownReason('spam', r.spam.reason)] : []),
        ...findings('unscannable'),
        ...(p.attachments.encrypted === 'unscannable' ? encrypted : []),
        ...(html ? html.findings.filter((f) => f.kind === 'unscannable-html').map((f) => unscannableHtmlReason(f.part, f.detail)) : []),
        ...(p.checks.html && r.html?.status === 'unscannable' ? [`HTML not analysed: ${r.html.reason}`] : []),
        ...(p.checks.urls && r.urls?.status === 'unscannable' ? [`links not read: ${r.urls.reason}`] : []),
      ],
    ],
    ['spoofed', spoofed],
    ['phishing', html && p.html.phishingNet ? html.phishing.map(phishingReason) : []],
    ['high-spam', scored && score.total >= p.spam.highThreshold ? [spamReason(score, spamOf(r, p), 'high-spam', learnerOf(r, p))] : []],
    // One score, one spam class: above the high threshold it is high-spam only, so that a policy
    // may handle high-spam more mildly than spam (e.g. headers only for one recipient).
    ['spam', scored && score.total >= p.spam.threshold && score.total < p.spam.highThreshold ? [spamReason(score, spamOf(r, p), 'spam', learnerOf(r, p))] : []],
  ];
}

const spamOf = (r: ScanReport, p: Policy): ScanReport['spam'] => (p.checks.spam ? r.spam : { status: 'skipped', reason: 'off' });

const learnerOf = (r: ScanReport, p: Policy): LearnerScan | undefined => (p.checks.learner ? r.learner : undefined);

const hasScore = (s: ScoreSummary) => s.spam !== null || s.urls !== 0 || s.auth !== 0 || (s.learner ?? 0) !== 0;

export function classify(r: ScanReport, p: Policy): Classification {
  const failed = failures(r, p);
  if (failed.length > 0) return { kind: 'retry', reason: failed.join('; ') };
  const score = scoreOf(r, p);
  // An allow entry only lifts the spam classes (MailScanner's rule: a whitelist never skips
  // the virus, attachment or spoofing checks — a forged allowed sender is the attack).
  const lifted = allowListed(r, p);
  const classes = evidence(r, p, score)
    .filter(([cls, reasons]) => reasons.length > 0 && !(lifted && isSpamClass(cls)))
    .map(([cls, reasons]) => ({ class: cls, reasons }));
  if (classes.length > 0) {
    const reasons = classes.flatMap((c) => c.reasons);
    return { kind: 'verdict', class: classes[0].class, reason: reasons[0], reasons, classes, score };
  }
  const reason = lifted
    ? `${allowedReason(r.list!)}${hasScore(score) ? ` (spam score ${formatScore(score.total)})` : ''}`
    : !p.checks.spam
      ? 'spam check off for this recipient'
      : r.spam.status === 'skipped'
        ? `not spam-scanned: ${r.spam.reason}`
        : belowThresholdReason(score, learnerOf(r, p));
  return { kind: 'verdict', class: 'clean', reason, reasons: [reason], classes: [], score };
}

const allowListed = (r: ScanReport, p: Policy): boolean => p.checks.lists && r.list?.kind === 'allow';

/**
 * What the score says, whatever the class: at or above the spam threshold is spam for the
 * X-Spam-* headers, even when a stricter class (virus, phishing…) decided the action; downstream
 * filters act on X-Spam-Flag alone. Only an allow-list entry (which lifts the spam classes) says NO.
 */
export function scoreSaysSpam(r: ScanReport, score: ScoreSummary, p: Policy): boolean {
  return p.checks.spam && hasScore(score) && score.total >= p.spam.threshold && !allowListed(r, p);
}

/**
 * The X-Mailmoat-Status / X-Spam-* header values for a delivered copy. The receiving mailbox
 * server and the user's filters read these, so they say exactly what was and was not checked.
 */
export function statusHeaders(r: ScanReport, cls: VerdictClass, score: ScoreSummary, p: Policy): [string, string][] {
  const virus = !p.checks.virus
    ? 'not checked'
    : r.virus.status === 'infected'
      ? `infected (${r.virus.viruses.join(', ')})`
      : r.virus.status === 'error'
        ? 'NOT SCANNED (virus scanner unavailable)'
        : r.virus.status;
  const { spam } = r;
  const spamPart = !p.checks.spam
    ? 'not scanned (off)'
    : spam.status === 'scored'
      ? `score=${formatScore(score.total)} required=${formatScore(p.spam.threshold)}`
      : `not scanned (${spam.status === 'skipped' ? spam.reason : 'spam scanner unavailable'})`;
  const parts = [`${cls}; virus=${virus}; spam ${spamPart}`];
  if (r.auth?.status === 'checked' && p.checks.auth && r.auth.dmarc) parts.push(`dmarc=${r.auth.dmarc.result}`);
  if (r.urls?.status === 'checked' && p.checks.urls && r.urls.hits.length > 0) parts.push(`url-hits=${r.urls.hits.length}`);
  const headers: [string, string][] = [['X-Mailmoat-Status', parts.join('; ')]];
  if (p.checks.spam && spam.status === 'scored') {
    const isSpam = scoreSaysSpam(r, score, p);
    const tests = spam.rules.length > 0 ? spam.rules.join(',') : 'none';
    headers.push(['X-Spam-Flag', isSpam ? 'YES' : 'NO']);
    headers.push(['X-Spam-Score', formatScore(score.total)]);
    headers.push(['X-Spam-Status', `${isSpam ? 'Yes' : 'No'}, score=${formatScore(score.total)} required=${formatScore(p.spam.threshold)} tests=${tests}`]);
  }
  return headers;
}
