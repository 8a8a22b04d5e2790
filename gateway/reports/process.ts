// The scan worker's handling of a spam report (issue 8): a message to reportspam@ / notspam@ that
// the SMTP front accepted from one of the domain's users (gateway/reports/rcpt.ts). It is never
// delivered. The reported message(s) are extracted (extract.ts), each is learned through the one
// learning implementation (gateway/learning.ts, spamd TELL), the outcome is recorded in the
// message log (events) and the learn log, the sender may be added to the reporter's block list,
// and the reporter gets a short acknowledgement (a generated message on the DSN/notice path).
//
// A report accepted "pending DKIM" (a sender of the domain without an SPF pass) is learned from
// only if a DKIM signature of the domain passes; otherwise it is recorded as refused, nothing is
// learned and nobody is answered (the sender may be forged).
import { promises as fs } from 'node:fs';
import type { CoreDeps } from '../deps.ts';
import type { Envelope } from '../spool/spool.ts';
import type { JobContext } from '../store/queue.ts';
import { RetryLater } from '../store/queue.ts';
import type { LearnLog } from '../store/learnlog.ts';
import type { ListStore } from '../store/lists.ts';
import { learnMessage, type LearnResult, type SpamTeacher } from '../learning.ts';
import type { Learner } from '../learner/learner.ts';
import type { MailauthResolver } from '../../core/dns.ts';
import { authenticateMessage } from '../pipeline/auth.ts';
import { commitGenerated, composeNotice } from '../pipeline/notify.ts';
import { retryDelay } from '../../rules/retry.ts';
import { openLedger } from '../ledger/ledger.ts';
import { addressOf, extractReported, headerBlock, type Extraction } from './extract.ts';
import { inDomain, type EnvelopeReport } from './rcpt.ts';

export interface ReportLearning {
  spamd: SpamTeacher;
  /** The learned filter (issue 19): a report teaches the reporter's domain's model. */
  learner?: Pick<Learner, 'teach'>;
  learnLog: LearnLog;
  /** For `addSenderToBlockList`. */
  lists?: ListStore;
}

export interface ReportDeps extends CoreDeps {
  mailauth?: MailauthResolver;
  reports: ReportLearning;
}

export interface ReportItem {
  label: string;
  outcome: LearnResult['outcome'] | 'not-extracted';
  detail: string;
}

export async function handleReport(deps: ReportDeps, env: Envelope & { report: EnvelopeReport }, job: JobContext): Promise<void> {
  const { config, spool, logger } = deps;
  const { report } = env;
  const file = spool.messagePath(env.id);
  const raw = await fs.readFile(file);
  const subject = reportSubject(raw);
  const what = report.kind === 'spam' ? 'spam report' : 'not-spam report';

  if (report.trust === 'dkim-pending') {
    const dkim = await alignedDkim(deps, file, env, report.domain);
    if (!dkim.ok) {
      const reason = `${what} refused: ${report.by}, and ${dkim.why}; nothing learned`;
      await finish(deps, env, raw, subject, 'report-refused', reason);
      await openLedger(deps).note(env.id, { kind: 'report-refused', text: reason });
      logger.warn({ id: env.id, from: env.mailFrom, to: report.address, reason }, 'spam report refused');
      return;
    }
    await openLedger(deps).note(env.id, { kind: 'report-trusted', text: `DKIM pass: ${dkim.why}` });
  }

  const domainCfg = config.domains[report.domain]!.reports;
  const extraction: Extraction = await extractReported(raw, {
    reporter: env.mailFrom,
    maxMessages: domainCfg.maxMessages,
    maxBytes: config.smtp.maxMessageBytes,
  });
  const items: ReportItem[] = [];
  for (const [n, m] of extraction.messages.entries()) {
    const r = await learnMessage(
      { spamd: deps.reports.spamd, log: deps.reports.learnLog, ...(deps.reports.learner ? { learner: deps.reports.learner } : {}) },
      m.raw,
      {
        domain: report.domain,
        as: report.kind,
        actor: env.mailFrom || report.address,
        source: 'reportspam',
        messageId: env.id,
        name: m.label,
        maxBytes: config.smtp.maxMessageBytes,
      },
    );
    // spamd could not be reached: try the whole report again later (what was learned is recognised by its hash).
    if (r.outcome === 'failed' && r.detail.startsWith('spamd could not learn it') && !job.isLastAttempt) {
      throw new RetryLater(r.detail, retryDelay(job.attempt, config.scan));
    }
    items.push({ label: m.label, outcome: r.outcome, detail: r.detail });
    if (report.kind === 'spam' && domainCfg.addSenderToBlockList && r.outcome !== 'refused') await blockSender(deps, env, report, m.raw, n);
  }
  for (const x of extraction.notExtracted) items.push({ label: x.label, outcome: 'not-extracted', detail: x.reason });
  for (const it of items)
    await openLedger(deps).note(env.id, {
      kind: it.outcome === 'learned' || it.outcome === 'already-learned' ? 'learned' : it.outcome === 'not-extracted' ? 'not-extracted' : 'learn-failed',
      text: `${it.label}: ${it.detail}`,
    });

  const learned = items.filter((i) => i.outcome === 'learned' || i.outcome === 'already-learned').length;
  const summary = `${what} from ${env.mailFrom || '(unknown)'} (${report.by}): ${learned} of ${extraction.messages.length} message(s) learned as ${report.kind}${extraction.notExtracted.length ? `, ${extraction.notExtracted.length} part(s) could not be extracted` : ''}`;
  if (domainCfg.acknowledge && env.mailFrom) await acknowledge(deps, env, report, subject, items);
  await finish(deps, env, raw, subject, 'report', summary);
  logger.info({ id: env.id, from: env.mailFrom, to: report.address, learned, items: items.length }, 'spam report handled');
}

/** Out of attempts (or an error nobody expected, on the last one): recorded as failed, never quarantined (a release would deliver it to the report address). */
export async function giveUpReport(deps: Omit<ReportDeps, 'reports'>, env: Envelope, reason: string): Promise<void> {
  const raw = await fs.readFile(deps.spool.messagePath(env.id)).catch(() => Buffer.alloc(0));
  await openLedger(deps).note(env.id, { kind: 'learn-failed', text: `gave up: ${reason}` });
  await finish(deps, env, raw, reportSubject(raw), 'report', `spam report not learned: ${reason}`);
}

/** Records the outcome, keeps the report's body for the console (what could not be extracted too) and clears the spool. */
async function finish(deps: Omit<ReportDeps, 'reports'>, env: Envelope, raw: Buffer, subject: string | null, verdict: string, reason: string): Promise<void> {
  const skipped = { status: 'skipped' as const, reason: 'a spam report: learned from, never delivered' };
  await openLedger(deps).planReport(env.id, { verdict, reason, report: { virus: skipped, spam: skipped }, subject }, raw.length > 0);
}

async function alignedDkim(deps: ReportDeps, file: string, env: Envelope, domain: string): Promise<{ ok: boolean; why: string }> {
  if (!deps.mailauth) return { ok: false, why: 'DKIM could not be checked (no resolver)' };
  const auth = await authenticateMessage(file, env, { resolver: deps.mailauth, authservId: deps.config.hostname });
  if (auth.scan.status !== 'checked') return { ok: false, why: `DKIM could not be checked (${auth.scan.reason ?? 'error'})` };
  const aligned = auth.scan.dkim.find(
    (d) => d.result === 'pass' && (d.domain === domain || d.domain.endsWith(`.${domain}`) || domain.endsWith(`.${d.domain}`)),
  );
  if (aligned) return { ok: true, why: `signature of ${aligned.domain} (selector ${aligned.selector})` };
  const seen = auth.scan.dkim
    .filter((d) => d.result !== 'none')
    .map((d) => `${d.domain || '?'}=${d.result}`)
    .join(', ');
  return { ok: false, why: `no passing DKIM signature of ${domain}${seen ? ` (${seen})` : ' (unsigned)'}` };
}

/** Adds the From address of a reported spam to the reporter's own block list (never an address of the reporter's domain). */
async function blockSender(deps: ReportDeps, env: Envelope, report: EnvelopeReport, raw: Buffer, n: number): Promise<void> {
  const lists = deps.reports.lists;
  const reporter = env.mailFrom.toLowerCase();
  if (!lists || !inDomain(reporter, report.domain)) return;
  const from = addressOf(
    headerBlock(raw)
      .find((l) => /^from:/i.test(l))
      ?.slice(5),
  );
  if (!from) return;
  if (inDomain(from, report.domain)) {
    await openLedger(deps).note(env.id, { kind: 'block-skipped', text: `message ${n + 1}: sender ${from} is in ${report.domain}; not blocked` });
    return;
  }
  const r = await lists.add({
    kind: 'block',
    scope: 'user',
    owner: reporter,
    entry: from,
    comment: `reported as spam (message ${env.id})`,
    createdBy: `reportspam:${reporter}`,
  });
  await openLedger(deps).note(env.id, {
    kind: r.ok ? 'blocked-sender' : 'block-skipped',
    text: r.ok ? `${from} added to the block list of ${reporter}` : `${from} not blocked: ${r.error}`,
  });
}

async function acknowledge(deps: ReportDeps, env: Envelope, report: EnvelopeReport, subject: string | null, items: ReportItem[]): Promise<void> {
  const { config } = deps;
  const id = `${env.id}-R1`;
  const learned = items.filter((i) => i.outcome === 'learned' || i.outcome === 'already-learned').length;
  const lines = [
    `This is the mail gateway at ${config.hostname}.`,
    '',
    `Thank you for your report${subject ? ` "${visible(subject).slice(0, 120)}"` : ''} to ${report.address}.`,
    learned > 0
      ? `The filter has learned from ${learned} message(s) as ${report.kind === 'spam' ? 'spam' : 'not spam'}.`
      : 'The filter could not learn from it:',
    '',
    ...items.map((i) => `- ${visible(i.label)}: ${visible(i.detail)}`),
    '',
    ...(items.some((i) => i.outcome === 'not-extracted')
      ? ['To report a message, forward it as an attachment (or inline, with its full headers), or redirect it.', '']
      : []),
    `Report id: ${env.id}`,
  ];
  const text = lines.join('\n');
  const message = await composeNotice(config, {
    id,
    to: env.mailFrom,
    subject: `Your ${report.kind === 'spam' ? 'spam' : 'not-spam'} report: ${learned} message(s) learned`,
    text,
  });
  await commitGenerated(deps, {
    id,
    rcptTo: [env.mailFrom],
    verdict: 'report-ack',
    reason: `acknowledgement of report ${env.id}`,
    subject: 'Your spam report',
    about: env.id,
    produce: async (out) => {
      out.write(message);
    },
  });
  await openLedger(deps).note(env.id, { kind: 'acknowledged', text: `acknowledgement ${id} sent to ${env.mailFrom}` });
}

function reportSubject(raw: Buffer): string | null {
  const l = headerBlock(raw).find((x) => /^subject:/i.test(x));
  return l ? l.slice(8).trim() : null;
}

const visible = (s: string) =>
  s.replace(/[\u0000-\u001f\u007f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
