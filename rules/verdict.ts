// The content verdict: a pure function from one recipient's view of the scan report and that
// recipient's policy (rules/policy.ts) to a verdict class. Fail closed: a check that is on and
// could not look is a retry (the message stays in the spool and is scanned again), never "clean";
// a limit reached is "unscannable" or "malformed", classes of their own.
import type { ScanReport, ScoreSummary } from '../scanners/types.ts';
import type { Policy, VerdictClass } from './policy.ts';

export type { VerdictClass };

export type Classification =
  /** A check is on and its scanner failed: scan again later. */
  | { kind: 'retry'; reason: string }
  | { kind: 'verdict'; class: VerdictClass; reason: string; reasons: string[]; score: ScoreSummary };

export const formatScore = (score: number): string => score.toFixed(1);

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
  return out;
}

/** The score the spam classes are decided on: spamd's, plus URL listings, plus DMARC penalties. */
export function scoreOf(r: ScanReport, p: Policy): ScoreSummary {
  const spam = p.checks.spam && r.spam.status === 'scored' ? r.spam.score : null;
  const urls = p.checks.urls && r.urls?.status === 'checked' ? r.urls.score : 0;
  let auth = 0;
  const dmarc = p.checks.auth && r.auth?.status === 'checked' ? r.auth.dmarc : null;
  if (dmarc && dmarc.result === 'fail' && !arcExcuses(r, p)) {
    if (dmarc.policy === 'quarantine') auth = p.auth.dmarcQuarantineScore;
    if (dmarc.policy === 'reject' && p.auth.dmarcReject === 'score') auth = p.auth.dmarcRejectScore;
  }
  const total = (spam ?? 0) + urls + auth;
  return { spam, urls, auth, total, threshold: p.spam.threshold, highThreshold: p.spam.highThreshold };
}

function arcExcuses(r: ScanReport, p: Policy): boolean {
  return p.auth.trustArc && r.auth?.status === 'checked' && r.auth.arc?.result === 'pass';
}

/** Each class's evidence in the report, most severe class first; the first non-empty one wins. */
function evidence(r: ScanReport, p: Policy, score: ScoreSummary): [VerdictClass, string[]][] {
  const a = p.checks.attachments && r.attachments?.status === 'checked' ? r.attachments : null;
  const findings = (cls: string) => (a ? a.findings.filter((f) => f.class === cls).map(findingText) : []);
  const encrypted = findings('encrypted');
  const html = p.checks.html && r.html?.status === 'checked' ? r.html : null;
  const auth = p.checks.auth && r.auth?.status === 'checked' ? r.auth : null;
  const dmarc = auth?.dmarc;
  const spoofed =
    dmarc && dmarc.result === 'fail' && dmarc.policy === 'reject' && p.auth.dmarcReject === 'spoofed' && !arcExcuses(r, p)
      ? [`DMARC fails for ${dmarc.from || dmarc.domain}, whose policy is reject`]
      : [];
  const spam = r.spam.status === 'scored' && p.checks.spam ? ` (${r.spam.rules.slice(0, 8).join(', ') || 'no rules'})` : '';
  const scoreText = (cmp: string, limit: number) => `score ${formatScore(score.total)} ${cmp} ${formatScore(limit)}${spam}`;
  const listed = p.checks.lists && r.list?.kind === 'block' ? [`sender on the ${r.list.scope} block list (${r.list.entry})`] : [];
  return [
    ['virus', p.checks.virus && r.virus.status === 'infected' ? [`virus: ${r.virus.viruses.join(', ')}`] : []],
    ['blocked', listed],
    ['malformed', findings('malformed')],
    ['banned', [...findings('banned'), ...(p.attachments.encrypted === 'banned' ? encrypted : [])]],
    [
      'unscannable',
      [
        ...(p.checks.virus && r.virus.status === 'unscannable' ? [`could not be virus-scanned: ${r.virus.reason}`] : []),
        ...(p.checks.virus && r.virus.status === 'error' && p.outage.virus === 'quarantine' ? [`virus scanner unavailable: ${r.virus.reason}`] : []),
        ...(p.checks.spam && r.spam.status === 'error' && p.outage.spam === 'quarantine' ? [`spam scanner unavailable: ${r.spam.reason}`] : []),
        ...findings('unscannable'),
        ...(p.attachments.encrypted === 'unscannable' ? encrypted : []),
        ...(html ? html.findings.filter((f) => f.kind === 'unscannable-html').map((f) => `part ${f.part}: ${f.detail}`) : []),
        ...(p.checks.html && r.html?.status === 'unscannable' ? [`HTML not analysed: ${r.html.reason}`] : []),
        ...(p.checks.urls && r.urls?.status === 'unscannable' ? [`links not read: ${r.urls.reason}`] : []),
      ],
    ],
    ['spoofed', spoofed],
    ['phishing', html && p.html.phishingNet ? html.phishing.map((l) => `phishing link: shows ${l.shown} but goes to ${l.real}`) : []],
    ['high-spam', score.total >= p.spam.highThreshold && hasScore(score) ? [scoreText('>=', p.spam.highThreshold)] : []],
    ['spam', score.total >= p.spam.threshold && hasScore(score) ? [scoreText('>=', p.spam.threshold)] : []],
  ];
}

const hasScore = (s: ScoreSummary) => s.spam !== null || s.urls !== 0 || s.auth !== 0;

function findingText(f: { part: string | null; filename: string | null; class: string; reason: string; archivePath?: string[] }): string {
  if (f.part === null) return `${f.class === 'malformed' ? 'malformed MIME' : 'not fully scanned'}: ${f.reason}`;
  // A finding about an archive itself names the archive (the last of its path), not "part N".
  const path = f.filename === null ? (f.archivePath ?? []).slice(0, -1) : (f.archivePath ?? []);
  const name = f.filename ?? f.archivePath?.at(-1) ?? null;
  const where = path.length > 0 ? ` in ${path.join(' > ')}` : '';
  return `${name !== null ? `"${name}"` : `part ${f.part}`}${where}: ${f.reason}`;
}

export function classify(r: ScanReport, p: Policy): Classification {
  const failed = failures(r, p);
  if (failed.length > 0) return { kind: 'retry', reason: failed.join('; ') };
  const score = scoreOf(r, p);
  const all = evidence(r, p, score);
  const allowed = p.checks.lists && r.list?.kind === 'allow';
  for (const [cls, reasons] of all) {
    if (reasons.length === 0) continue;
    // An allow entry only lifts the spam classes (MailScanner's rule: a whitelist never skips
    // the virus, attachment or spoofing checks — a forged allowed sender is the attack).
    if (allowed && isSpamClass(cls)) continue;
    const rest = all.filter(([c]) => c !== cls).flatMap(([, rs]) => rs);
    return { kind: 'verdict', class: cls, reason: reasons[0], reasons: [...reasons, ...rest], score };
  }
  const reason = allowed
    ? `sender on the ${r.list!.scope} allow list (${r.list!.entry})${hasScore(score) ? `, score ${formatScore(score.total)}` : ''}`
    : !p.checks.spam
      ? 'spam check off for this recipient'
      : r.spam.status === 'skipped'
        ? `not spam-scanned: ${r.spam.reason}`
        : `score ${formatScore(score.total)} < ${formatScore(p.spam.threshold)}`;
  return { kind: 'verdict', class: 'clean', reason, reasons: [reason], score };
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
    const isSpam = isSpamClass(cls);
    const tests = spam.rules.length > 0 ? spam.rules.join(',') : 'none';
    headers.push(['X-Spam-Flag', isSpam ? 'YES' : 'NO']);
    headers.push(['X-Spam-Score', formatScore(score.total)]);
    headers.push(['X-Spam-Status', `${isSpam ? 'Yes' : 'No'}, score=${formatScore(score.total)} required=${formatScore(p.spam.threshold)} tests=${tests}`]);
  }
  return headers;
}
