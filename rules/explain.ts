// Why, in plain words: each piece of evidence in a scan report as a sentence a domain admin reads
// without knowing the scanners ("contains the virus Eicar-Test-Signature", "a link shows
// www.paypal.com but goes to evil-login.example.net", "SpamAssassin score 12.3; strongest signs:
// …"). These sentences are the verdict's reasons: the message list, the digest, the scan report,
// the X-Mailmoat-Warning header and a refusal's reply text all show them. Pure.
import type { AttachmentFindingReport, LearnerScan, ListMatch, PhishingLink, ScoreSummary, SpamScan } from '../scanners/types.ts';

export const formatScore = (score: number): string => score.toFixed(1);

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);
const listOf = (xs: string[]) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

export const virusReason = (viruses: string[]): string => `contains the ${plural(viruses.length, 'virus', 'viruses')} ${listOf(viruses)}`;

const LIST_OWNER: Record<ListMatch['scope'], string> = { user: "the recipient's", domain: "the domain's", global: 'the global' };

export const blockedReason = (l: ListMatch): string => `the sender is on ${LIST_OWNER[l.scope]} block list (entry ${l.entry})`;
export const allowedReason = (l: ListMatch): string => `the sender is on ${LIST_OWNER[l.scope]} allow list (entry ${l.entry}), so spam checks do not count`;

export const spoofedReason = (from: string): string =>
  `claims to come from ${from} but fails that domain's DMARC check, and ${from} asks receivers to reject such mail`;

export const phishingReason = (l: PhishingLink): string => `a link shows ${l.shown} but goes to ${l.real}`;

/** An attachment finding: what the file is, where it sits, and what is wrong with it. */
export function findingReason(f: AttachmentFindingReport): string {
  const verdict =
    f.class === 'malformed'
      ? 'is malformed'
      : f.class === 'unscannable'
        ? 'could not be fully scanned'
        : f.class === 'encrypted'
          ? 'is encrypted, so it cannot be scanned'
          : 'is not allowed';
  if (f.part === null) return f.class === 'malformed' ? `the message structure is broken: ${f.reason}` : `the message could not be fully scanned: ${f.reason}`;
  // A finding about an archive itself names the archive (the last of its path), not "part N".
  const path = f.filename === null ? (f.archivePath ?? []).slice(0, -1) : (f.archivePath ?? []);
  const name = f.filename ?? f.archivePath?.at(-1) ?? null;
  const where = path.length > 0 ? ` inside ${path.join(' > ')}` : '';
  return `${name !== null ? `the attachment "${name}"` : `message part ${f.part}`}${where} ${verdict}: ${f.reason}`;
}

export const unscannableHtmlReason = (part: string, detail: string): string => `the HTML of message part ${part} could not be checked: ${detail}`;
export const virusUnscannableReason = (why: string): string => `the virus scanner could not scan all of it: ${why}`;
export const scannerDownReason = (which: 'virus' | 'spam', why: string): string =>
  `not scanned for ${which === 'virus' ? 'viruses' : 'spam'}: ${which} scanner unavailable (${why})`;

/** SpamAssassin's strongest signs as their descriptions, highest score first. */
export function strongestSigns(spam: SpamScan, n = 3): string[] {
  if (spam.status !== 'scored') return [];
  // Without descriptions (an older report, a custom spamd report template) the rule names are all there is.
  const hits = spam.details ?? spam.rules.map((rule) => ({ rule, score: 0, description: rule }));
  return (
    [...hits]
      // SpamAssassin says "No description available." for test rules: nothing a reader can use.
      .filter((h) => (h.score > 0 && !/^no description available/i.test(h.description)) || !spam.details)
      .sort((a, b) => b.score - a.score)
      .slice(0, n)
      .map((h) => (spam.details ? `${h.description.replace(/\.$/, '')} (+${formatScore(h.score)})` : h.description))
  );
}

/** The learned filter's part in the score, with the text that drove it ("learned filter +4.2: “click here”, “Dear friend”"). */
export function learnerReason(points: number, l: LearnerScan | undefined): string {
  const signs = l?.status === 'scored' ? (points >= 0 ? l.spamSigns : l.hamSigns) : [];
  const sign = points >= 0 ? '+' : '−';
  return `learned filter ${sign}${formatScore(Math.abs(points))}${signs.length > 0 ? ` (${points >= 0 ? 'spam-like' : 'like wanted mail'}: ${signs.map((t) => `“${t}”`).join(', ')})` : ''}`;
}

/** The score and what it is made of, and at what score this class starts. */
export function spamReason(score: ScoreSummary, spam: SpamScan, cls: 'spam' | 'high-spam', learner?: LearnerScan): string {
  const extras = [
    ...(score.urls ? [`links to listed sites +${formatScore(score.urls)}`] : []),
    ...(score.auth ? [`failed DMARC +${formatScore(score.auth)}`] : []),
    ...(score.learner ? [learnerReason(score.learner, learner)] : []),
  ];
  const what =
    extras.length === 0
      ? `SpamAssassin score ${formatScore(score.total)}`
      : `spam score ${formatScore(score.total)} (${[...(score.spam !== null ? [`SpamAssassin ${formatScore(score.spam)}`] : []), ...extras].join(', ')})`;
  const limit = cls === 'high-spam' ? `${formatScore(score.highThreshold)} or more is high spam` : `${formatScore(score.threshold)} or more is spam`;
  const signs = strongestSigns(spam);
  return `${what}, ${limit}${signs.length > 0 ? `; strongest signs: ${signs.join(', ')}` : ''}`;
}

export function belowThresholdReason(score: ScoreSummary, learner?: LearnerScan): string {
  const parts = score.learner
    ? ` (${[...(score.spam !== null ? [`SpamAssassin ${formatScore(score.spam)}`] : []), learnerReason(score.learner, learner)].join(', ')})`
    : '';
  return `spam score ${formatScore(score.total)}${parts}, below ${formatScore(score.threshold)}`;
}
