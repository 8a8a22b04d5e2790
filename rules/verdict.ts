// The content verdict: a pure function from the scan report and the spam policy to what happens
// to the message. Fail closed: a scanner that could not look is never read as "clean".
import type { ScanReport } from '../scanners/types.ts';

export interface SpamPolicy {
  threshold: number;
  highThreshold: number;
  subjectTag: string;
}

export type VerdictClass = 'clean' | 'spam' | 'high-spam' | 'virus' | 'unscannable';

export type Verdict =
  | { action: 'deliver'; class: 'clean' | 'spam'; reason: string; subjectTag: string | null }
  | { action: 'quarantine'; class: 'virus' | 'high-spam' | 'unscannable'; reason: string }
  /** A scanner is down or timed out: keep the message and scan it again later. */
  | { action: 'retry'; reason: string };

export function decideVerdict(report: ScanReport, policy: SpamPolicy): Verdict {
  const { virus, spam } = report;
  if (virus.status === 'infected') {
    return { action: 'quarantine', class: 'virus', reason: `virus: ${virus.viruses.join(', ')}` };
  }
  if (virus.status === 'error') return { action: 'retry', reason: `virus scanner unavailable: ${virus.reason}` };
  if (virus.status === 'unscannable') {
    return { action: 'quarantine', class: 'unscannable', reason: `could not be virus-scanned: ${virus.reason}` };
  }
  if (spam.status === 'error') return { action: 'retry', reason: `spam scanner unavailable: ${spam.reason}` };
  if (spam.status === 'scored') {
    const score = formatScore(spam.score);
    if (spam.score >= policy.highThreshold) {
      return { action: 'quarantine', class: 'high-spam', reason: `spam score ${score} >= ${policy.highThreshold}` };
    }
    if (spam.score >= policy.threshold) {
      return { action: 'deliver', class: 'spam', reason: `spam score ${score} >= ${policy.threshold}`, subjectTag: policy.subjectTag };
    }
    return { action: 'deliver', class: 'clean', reason: `spam score ${score} < ${policy.threshold}`, subjectTag: null };
  }
  // Deliberately skipped (too large for the spam scan, like spamc): delivered, and the status
  // header says it was not spam-scanned.
  return { action: 'deliver', class: 'clean', reason: `not spam-scanned: ${spam.reason}`, subjectTag: null };
}

export const formatScore = (score: number): string => score.toFixed(1);

/**
 * The X-Mailmoat-Status / X-Spam-* header values for a delivered message. The receiving mailbox
 * server and the user's filters read these, so they say exactly what was and was not checked.
 */
export function statusHeaders(report: ScanReport, verdict: Verdict, policy: SpamPolicy): [string, string][] {
  const virus =
    report.virus.status === 'infected' ? `infected (${report.virus.viruses.join(', ')})` : report.virus.status;
  const { spam } = report;
  const spamPart =
    spam.status === 'scored'
      ? `score=${formatScore(spam.score)} required=${formatScore(policy.threshold)}`
      : `not scanned (${spam.status === 'skipped' ? spam.reason : 'error'})`;
  const cls = verdict.action === 'retry' ? 'unknown' : verdict.class;
  const headers: [string, string][] = [['X-Mailmoat-Status', `${cls}; virus=${virus}; spam ${spamPart}`]];
  if (spam.status === 'scored') {
    const isSpam = spam.score >= policy.threshold;
    const tests = spam.rules.length > 0 ? spam.rules.join(',') : 'none';
    headers.push(['X-Spam-Flag', isSpam ? 'YES' : 'NO']);
    headers.push(['X-Spam-Score', formatScore(spam.score)]);
    headers.push(['X-Spam-Status', `${isSpam ? 'Yes' : 'No'}, score=${formatScore(spam.score)} required=${formatScore(policy.threshold)} tests=${tests}`]);
  }
  return headers;
}
