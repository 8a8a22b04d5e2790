// The console's side of the release rights (rules/release-rights.ts): the facts of one message —
// its classes of evidence and its recipients' domains — put to the one decision, for every path
// that releases, downloads or previews (message page, bulk, digest links, requests).
import type { Config } from '../../gateway/config/schema.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';
import { decideRight, RIGHTS, type ConsoleRole, type Right, type RightDecision } from '../../rules/release-rights.ts';
import { domainOf } from '../../rules/envelope.ts';

/** The verdict, and any class the scan report has evidence for (a virus found is a virus, whatever won). */
export function classesOf(m: Pick<MessageRecord, 'verdict' | 'report'>): (string | null)[] {
  const report = (m.report ?? {}) as { virus?: { status?: string }; outcome?: { classes?: unknown } };
  const classes: (string | null)[] = [m.verdict ?? null];
  if (report.virus?.status === 'infected') classes.push('virus');
  if (Array.isArray(report.outcome?.classes)) classes.push(...report.outcome.classes.filter((c): c is string => typeof c === 'string'));
  return [...new Set(classes)];
}

export function decide(config: Config, m: Pick<MessageRecord, 'verdict' | 'report' | 'rcptTo'>, role: ConsoleRole, right: Right): RightDecision {
  const domains = [...new Set(m.rcptTo.map((r) => domainOf(r.toLowerCase())))].map((d) => config.domains[d]?.releaseRights ?? {});
  return decideRight(right, { role, classes: classesOf(m), global: config.console.releaseRights, domains });
}

export function rightsOf(config: Config, m: Pick<MessageRecord, 'verdict' | 'report' | 'rcptTo'>, role: ConsoleRole): Record<Right, RightDecision> {
  return Object.fromEntries(RIGHTS.map((r) => [r, decide(config, m, role, r)])) as Record<Right, RightDecision>;
}
