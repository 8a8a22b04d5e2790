// Actions: from each recipient's verdict and policy to what happens to the message for them, and
// the grouping of recipients whose handling is the same (one copy, one quarantine entry). Pure.
//
// Groups: recipients get the same copy when their plans are equal (same disposition, same class,
// same tags, same stripped parts, same disarming). Side effects (notices, forwarded copies) are
// per recipient and do not split groups.
import type { ScanReport, ScoreSummary } from '../scanners/types.ts';
import type { SmtpReply } from './replies.ts';
import { DISPOSITIONS, type ClassAction, type Disposition, type Policy, type VerdictClass } from './policy.ts';
import { formatScore, statusHeaders, type ClassEvidence } from './verdict.ts';

/** HTML disarming settings of a delivered copy (scanners/html-disarm.ts DisarmOptions, the policy part). */
export interface DisarmSettings {
  remoteImages: 'keep' | 'placeholder' | 'remove';
  phishingNet: boolean;
  phishingSafeSites: string[];
}

/** What the delivered copy looks like. */
export interface DeliverySpec {
  /** Put in front of the subject ("{Spam?}", "{Fraud?} <Cleaned>"), or null. */
  subjectTag: string | null;
  /** X-Mailmoat-Warning value (dispositions headers, tagged, strip), or null. */
  warning: string | null;
  /** Part ids replaced by a text note. */
  strip: string[];
  /** null: HTML is passed through as it came. */
  disarm: DisarmSettings | null;
  /** Add our Authentication-Results header. */
  authResults: boolean;
  statusHeaders: [string, string][];
}

export type Plan =
  | { kind: 'deliver'; class: VerdictClass; spec: DeliverySpec }
  | { kind: 'quarantine'; class: VerdictClass }
  /** Refused at SMTP time if the session still waits and every recipient refuses; else quarantined. */
  | { kind: 'reject'; class: VerdictClass; reply: SmtpReply };

export interface RecipientVerdict {
  recipient: string;
  policy: Policy;
  /** Rules that applied (names). */
  rules: string[];
  /** This recipient's view of the report (attachments and HTML evaluated with its policy). */
  report: ScanReport;
  class: VerdictClass;
  reason: string;
  reasons: string[];
  /** Every class with evidence, most severe first (rules/verdict.ts); empty: clean. */
  classes: ClassEvidence[];
  score: ScoreSummary;
}

export interface RecipientPlan extends RecipientVerdict {
  /** The strictest action of all classes with evidence; `class`/`reason` are the class it came from. */
  action: ClassAction;
  plan: Plan;
  /** The X-Mailmoat-Status / X-Spam-* headers (also recorded for a message that is not delivered). */
  statusHeaders: [string, string][];
}

/** Strictness of a disposition: its place in DISPOSITIONS (least strict first). */
const strictness = (d: Disposition): number => DISPOSITIONS.indexOf(d);

/**
 * Every class with evidence decides, and the strictest action wins (refuse > quarantine > strip >
 * tag > headers > deliver). Ranking the classes instead and acting on the first one let a spammer
 * escape the quarantine by adding one misleading link (phishing outranks high-spam, but its
 * default action is only a tag). Among classes with the winning action, the most severe one names
 * the verdict. Notices and forwarded copies are those of every class with evidence.
 */
export function strictestAction(v: Pick<RecipientVerdict, 'classes' | 'policy'>): { class: VerdictClass; action: ClassAction } {
  const classes = v.classes.length > 0 ? v.classes.map((c) => c.class) : (['clean'] as VerdictClass[]);
  let winner = classes[0];
  for (const c of classes) if (strictness(v.policy.actions[c].do) > strictness(v.policy.actions[winner].do)) winner = c;
  const all = classes.map((c) => v.policy.actions[c]);
  return {
    class: winner,
    action: {
      do: v.policy.actions[winner].do,
      notifyRecipient: all.some((a) => a.notifyRecipient),
      notifyAdmin: all.some((a) => a.notifyAdmin),
      forwardTo: [...new Set(all.flatMap((a) => a.forwardTo))],
    },
  };
}

/**
 * The HTML settings a policy disarms (or, with html.disarm off, only judges phishing) with; null
 * when the HTML check is off. `defaultSafeSites` (rules/defaults/phishing-safe-sites.ts) is passed
 * in to keep this file pure of the list.
 */
export function disarmSettings(p: Policy, defaultSafeSites: readonly string[]): DisarmSettings | null {
  if (!p.checks.html) return null;
  const known = settingsByHtml.get(p.html);
  if (known?.defaults === defaultSafeSites) return known.settings;
  const sites = [...new Set([...defaultSafeSites, ...p.html.phishingSafeSites].map((s) => s.toLowerCase()))].sort();
  // Frozen: one object serves every message of a config generation, so a change would leak.
  const settings = Object.freeze({ remoteImages: p.html.remoteImages, phishingNet: p.html.phishingNet, phishingSafeSites: Object.freeze(sites) as string[] });
  settingsByHtml.set(p.html, { defaults: defaultSafeSites, settings });
  return settings;
}

/**
 * Settings made per policy `html` section: it is shared by every message of a config generation
 * (gateway/pipeline/policy.ts layers once), and a message asked for them three times per
 * recipient (the analysis, its per-recipient view, the plan), each sorting the safe-site list.
 */
const settingsByHtml = new WeakMap<Policy['html'], { defaults: readonly string[]; settings: DisarmSettings }>();

function cleanedTag(v: RecipientVerdict): boolean {
  const h = v.report.html;
  if (!v.policy.checks.html || !v.policy.html.disarm || h?.status !== 'checked' || !h.changed) return false;
  return h.dangerous || v.policy.html.tagWebBugs;
}

function joinTags(...tags: string[]): string | null {
  const t = tags.filter((x) => x !== '').join(' ');
  return t === '' ? null : t;
}

export function planFor(verdict: RecipientVerdict, defaultSafeSites: readonly string[]): RecipientPlan {
  const { class: cls, action } = strictestAction(verdict);
  // The winning class's reasons come first: they say why the message was handled this way.
  const won = verdict.classes.find((c) => c.class === cls);
  const reasons = won ? [...won.reasons, ...verdict.classes.filter((c) => c !== won).flatMap((c) => c.reasons)] : verdict.reasons;
  const v: RecipientVerdict = { ...verdict, class: cls, reason: reasons[0] ?? verdict.reason, reasons };
  const base = { ...v, action, statusHeaders: statusHeaders(v.report, cls, v.score, v.policy) };
  if (action.do === 'quarantine') return { ...base, plan: { kind: 'quarantine', class: cls } };
  if (action.do === 'reject') return { ...base, plan: { kind: 'reject', class: cls, reply: refusalReply(v) } };
  const marked = v.classes.filter((c) => v.policy.actions[c.class].do !== 'deliver');
  // Every class whose own action tags adds its tag ("{Fraud?} {Spam?}"), once each.
  const tags = v.classes.filter((c) => ['tagged', 'strip'].includes(v.policy.actions[c.class].do)).map((c) => v.policy.tags[c.class]);
  const strip = action.do === 'strip' && v.report.attachments?.status === 'checked' ? strippable(v) : [];
  const spec: DeliverySpec = {
    subjectTag: joinTags(...new Set(tags), cleanedTag(v) ? v.policy.tags.cleaned : ''),
    warning: marked.length > 0 ? oneLine(marked.map((c) => `${c.class}: ${c.reasons[0]}`).join('; '), 300) : null,
    strip,
    disarm: v.policy.html.disarm ? disarmSettings(v.policy, defaultSafeSites) : null,
    authResults: v.policy.checks.auth && v.report.auth?.status === 'checked',
    statusHeaders: base.statusHeaders,
  };
  return { ...base, plan: { kind: 'deliver', class: cls, spec } };
}

/** Parts holding a banned finding (encrypted ones too when they count as banned). */
function strippable(v: RecipientVerdict): string[] {
  const a = v.report.attachments;
  if (a?.status !== 'checked') return [];
  const classes = new Set(['banned', ...(v.policy.attachments.encrypted === 'banned' ? ['encrypted'] : [])]);
  return [...new Set(a.findings.filter((f) => f.part !== null && classes.has(f.class)).map((f) => f.part as string))];
}

export interface PlanGroup {
  plan: Plan;
  members: RecipientPlan[];
}

/** Recipients with equal plans, in order of their first recipient. */
export function groupPlans(plans: readonly RecipientPlan[]): PlanGroup[] {
  const groups = new Map<string, PlanGroup>();
  for (const p of plans) {
    const key = JSON.stringify(p.plan);
    const g = groups.get(key);
    if (g) g.members.push(p);
    else groups.set(key, { plan: p.plan, members: [p] });
  }
  return [...groups.values()];
}

/** The SMTP reply when every recipient's plan refuses (the most severe class's reply); else null. */
export function inlineRefusal(plans: readonly RecipientPlan[]): SmtpReply | null {
  if (plans.length === 0 || !plans.every((p) => p.plan.kind === 'reject')) return null;
  const first = plans[0].plan;
  return first.kind === 'reject' ? first.reply : null;
}

/** Whether any class of any of these policies could refuse at SMTP time (else the session need not wait). */
export function mayRefuse(policies: readonly Policy[]): boolean {
  return policies.length > 0 && policies.every((p) => Object.values(p.actions).some((a) => a.do === 'reject'));
}

/** A reply line built from message content: printable ASCII only, bounded (no reply-line injection). */
export function oneLine(text: string, max = 200): string {
  const flat = text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}~` : flat;
}

/** The refusal for one class: code, enhanced code (RFC 3463) and why, so that the sender learns what to fix. */
export function refusalReply(v: Pick<RecipientVerdict, 'class' | 'reason' | 'score'>): SmtpReply {
  const why = oneLine(v.reason);
  switch (v.class) {
    case 'virus':
      return { code: 554, enhanced: '5.7.1', text: `Message refused: ${why}` };
    case 'banned':
      return { code: 554, enhanced: '5.7.1', text: `Message refused: ${why}` };
    case 'malformed':
      return { code: 554, enhanced: '5.6.0', text: `Message refused: ${why}` };
    case 'unscannable':
      return { code: 554, enhanced: '5.6.0', text: `Message refused: ${why}` };
    case 'spoofed':
      return { code: 550, enhanced: '5.7.1', text: `Message refused: ${why}` };
    case 'phishing':
      return { code: 554, enhanced: '5.7.1', text: `Message refused: ${why}` };
    case 'high-spam':
    case 'spam':
      return { code: 550, enhanced: '5.7.1', text: `Message refused as spam (score ${formatScore(v.score.total)})` };
    case 'blocked':
      return { code: 550, enhanced: '5.7.1', text: "Message refused: the sender is blocked by the recipient's policy" };
    case 'clean':
      return { code: 550, enhanced: '5.7.1', text: "Message refused by the recipient's policy" };
  }
}
