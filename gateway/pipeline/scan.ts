// The scan worker: one job per spooled message. Resolves each recipient's policy (config, rules,
// allow/block lists), runs every scanner those policies ask for in parallel (gateway/pipeline/
// analyse.ts: clamd, spamd, MIME walk + attachment rules, HTML, mail authentication, URLs),
// decides a verdict per recipient (rules/verdict.ts), plans the action (rules/actions.ts) and acts:
// refuse inline, quarantine, or deliver a copy made for the recipient's group (act.ts).
//
// Idempotent: the job can run again after a crash at any point, and a message already handled (no
// longer in the spool) is left alone. Fail closed: a scanner that is down is a retry; out of
// retries, or on an error nobody expected, the message is held as "unscannable", never delivered.
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Envelope, Spool } from '../spool/spool.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { MessageRecord, MetadataStore } from '../store/metadata.ts';
import { replies } from '../../rules/replies.ts';
import { RetryLater, type JobContext, type JobQueue } from '../store/queue.ts';
import { classify } from '../../rules/verdict.ts';
import { groupPlans, inlineRefusal, planFor, type PlanGroup, type RecipientPlan } from '../../rules/actions.ts';
import { DEFAULT_PHISHING_SAFE_SITES } from '../../rules/defaults/phishing-safe-sites.ts';
import { retryDelay } from '../../rules/retry.ts';
import { analyse, reportFor, type Analysis, type Scanners } from './analyse.ts';
import { deliverGroup, dropRefused, quarantineGroup, splitOff, type Links } from './act.ts';
import type { ArcSealKey } from './auth.ts';
import type { InlineVerdicts } from './inline.ts';
import { recipientPolicies, type ListSource } from './policy.ts';
import { openLedger } from '../ledger/ledger.ts';
import { giveUpReport, handleReport, type ReportLearning } from '../reports/process.ts';
import { holdAsPoison } from '../poison.ts';
import { lastOf } from '../ledger/events.ts';
import { FINAL } from '../ledger/states.ts';
import type { SummaryRecord } from '../summary.ts';

export type { Scanners };
export { OWN_HEADER_PREFIXES } from './act.ts';

export interface ScanDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  quarantine: BlobStore;
  queue: JobQueue;
  scanners: Scanners;
  logger: Logger;
  /** The allow/block lists (gateway/store/lists.ts); absent: no list entries apply. */
  lists?: ListSource;
  /** Inline verdicts (gateway/pipeline/inline.ts); absent: never refused at SMTP time. */
  inline?: InlineVerdicts;
  arcKey?: ArcSealKey | null;
  /** Issue 8: learning from spam reports (reportspam@); absent: a report is retried, then recorded as not learned. */
  reports?: ReportLearning;
  /** Issue 18: each submitted message's verdict (spam or not) for hijack detection (gateway/smtp/hijack.ts watchOutboundSpam). */
  outboundSpam?: (who: { account: string; domain: string }, spam: boolean) => Promise<void>;
  /**
   * The first delivery attempt of a message this job planned for delivery, made here (gateway/
   * delivery/deliver.ts attemptFirstHere): it finishes the message or hands it to the deliver
   * queue (`scanned`: the message's row as this job wrote it). Absent: every delivery is a deliver job.
   */
  deliverHere?: (envelope: Envelope, scanned: SummaryRecord) => Promise<void>;
}

/** A message planned for delivery whose first attempt is left to its scan job. */
interface AttemptHere {
  envelope: Envelope;
  scanned: SummaryRecord;
}

export async function handleScanJob(deps: ScanDeps, job: JobContext): Promise<void> {
  const { spool, logger } = deps;
  const id = job.messageId;
  if ((job.attempt > 1 || job.faults > 0) && (await handedOn(deps, job))) return;
  const envelope = await spool.readEnvelope(id);
  if (!envelope) {
    logger.debug({ id }, 'scan job for a message no longer in the spool: already handled');
    return;
  }
  if (!(await spool.hasBody(id))) {
    // Nothing to scan, now or on a retry: an administrator decides (never left "queued" silently).
    return holdAsPoison(deps, 'scan', job, 'its body is missing from the spool');
  }
  let attemptHere: AttemptHere | undefined;
  try {
    if (envelope.report) {
      // A spam report is learned from, never scanned for delivery (gateway/reports/process.ts).
      if (!deps.reports) throw new Error('spam report received, but this worker has no learning set up');
      return await handleReport({ ...deps, mailauth: deps.scanners.mailauth, reports: deps.reports }, { ...envelope, report: envelope.report }, job);
    }
    attemptHere = await scanAndAct(deps, envelope, job);
  } catch (err) {
    if (err instanceof RetryLater) throw err;
    const reason = `unexpected error: ${(err as Error)?.message ?? String(err)}`;
    logger.error({ id, err, attempt: job.attempt }, 'scan failed unexpectedly');
    if (!job.isLastAttempt) throw new RetryLater(reason, retryDelay(job.attempt, deps.config.scan));
    if (envelope.report) return giveUpReport(deps, envelope, reason);
    // Out of attempts: hold it for an administrator; never deliver what was not fully scanned.
    await hold(deps, envelope, `gave up scanning: ${reason}`);
  }
  // Outside the scan's error handling: the message is scanned and in delivery whatever happens here.
  if (attemptHere) await deps.deliverHere!(attemptHere.envelope, attemptHere.scanned);
}

/**
 * A scan job run again (its worker died, or it failed, after it planned delivery) for a message
 * already past its scan: in delivery, the deliver queue takes it, as the deliver job of the
 * interrupted attempt would have gone on; settled (a crash before the spool was cleared), its
 * spool files are leftovers. Never scanned twice. False: not scanned yet, scan as usual.
 */
async function handedOn(deps: ScanDeps, job: JobContext): Promise<boolean> {
  const id = job.messageId;
  const status = (await deps.store.get(id))?.status;
  if (status && FINAL.includes(status)) {
    await openLedger(deps).clearLeftover(id);
    return true;
  }
  if (status !== 'delivering' && status !== 'deferred') return false;
  // Deferred: attempt 1 was made and recorded; the next one at the time it announced.
  const next = status === 'deferred' ? lastOf(await deps.store.events(id), 'deferred')?.nextAttempt : undefined;
  const after = next ? { attemptsBefore: 1, delayMs: Math.max(0, Date.parse(next) - Date.now()), faultsBefore: job.faults } : { faultsBefore: job.faults };
  await openLedger(deps).handToDelivery(id, after, 'scan job run again');
  deps.logger.warn({ id, status, attempt: job.attempt, faults: job.faults }, 'scan job run again for a message in delivery: handed to the deliver queue');
  return true;
}

/** The message planned for delivery with its first attempt left to this job, if any. */
async function scanAndAct(deps: ScanDeps, envelope: Envelope, job: JobContext): Promise<AttemptHere | undefined> {
  const { config, logger } = deps;
  const id = envelope.id;
  const policies = await recipientPolicies(config, envelope, deps.lists);
  const analysis = await analyse(deps, envelope, policies);
  const verdicts = policies.map((rp) => {
    const report = reportFor(analysis, rp);
    return { rp, report, c: classify(report, rp.policy) };
  });
  const retry = verdicts.find((v) => v.c.kind === 'retry');
  if (retry && retry.c.kind === 'retry') {
    if (await tempfailInline(deps, envelope, retry.c.reason)) return undefined;
    if (!job.isLastAttempt) {
      await openLedger(deps).note(id, { kind: 'scan-deferred', reason: retry.c.reason });
      logger.warn({ id, attempt: job.attempt, reason: retry.c.reason }, 'scan deferred');
      throw new RetryLater(retry.c.reason, retryDelay(job.attempt, config.scan));
    }
    await hold(deps, envelope, `gave up scanning: ${retry.c.reason}`, analysis);
    return undefined;
  }
  const plans: RecipientPlan[] = verdicts.map(({ rp, report, c }) => {
    if (c.kind !== 'verdict') throw new Error('unreachable');
    const v = {
      recipient: rp.recipient,
      policy: rp.policy,
      rules: rp.rules,
      report,
      class: c.class,
      reason: c.reason,
      reasons: c.reasons,
      classes: c.classes,
      score: c.score,
    };
    return planFor(v, DEFAULT_PHISHING_SAFE_SITES);
  });

  const account = envelope.submitted?.user;
  if (account !== undefined && deps.outboundSpam) {
    const spam = plans.some((p) => p.classes.some((c) => c.class === 'spam' || c.class === 'high-spam'));
    const domain = envelope.mailFrom.slice(envelope.mailFrom.lastIndexOf('@') + 1).toLowerCase();
    // Advisory: a failure is logged, never a reason to hold or retry the message.
    await deps.outboundSpam({ account, domain }, spam).catch((err: unknown) => logger.error({ id, err }, 'hijack detection failed'));
  }
  const refusal = inlineRefusal(plans);
  if (deps.inline) {
    let refused = false;
    try {
      refused = refusal !== null && (await deps.inline.refuse(id, refusal));
      if (!refused) await deps.inline.accept(id);
    } catch (err) {
      // The handshake failed: the SMTP side accepts at its deadline; the message is handled as accepted.
      logger.warn({ id, err }, 'inline verdict handshake failed');
    }
    if (refused && refusal) {
      // Decided: the session refuses it. A failure from here on is retried (the decision stays).
      await dropRefused(deps, envelope, plans, refusal);
      await deps.inline.announce(id).catch((err: unknown) => logger.warn({ id, err }, 'inline verdict announce failed'));
      return undefined;
    }
  }
  return processEnvelope(deps, envelope, analysis, new Map(plans.map((p) => [p.recipient, p])), {});
}

/**
 * Acts on one message for its recipients; recipients whose plans differ are split off into
 * "<id>-N" messages first (see act.ts). Children from an earlier, interrupted run are reused.
 */
async function processEnvelope(
  deps: ScanDeps,
  env: Envelope,
  analysis: Analysis,
  plans: Map<string, RecipientPlan>,
  links: Links,
): Promise<AttemptHere | undefined> {
  const { store, spool } = deps;
  const earlier: string[] = [];
  const earlierRows: MessageRecord[] = [];
  // One read per message even on its first run: a fresh scan job is not proof that none ran before
  // (a poison release and a requeue after Redis lost its jobs start again at attempt 1), and the
  // row of a part split off is the only trace before the parent's 'split' event is written.
  for (let n = 2; ; n++) {
    const row = await store.get(`${env.id}-${n}`);
    if (!row) break;
    earlier.push(`${env.id}-${n}`);
    earlierRows.push(row);
  }
  const taken = new Set(earlierRows.flatMap((r) => r.rcptTo));
  const own = env.rcptTo.filter((r) => !taken.has(r));
  const ownPlans = own.map((r) => plans.get(r));
  if (own.length === 0 || ownPlans.some((p) => p === undefined)) {
    // Recipients this job has no verdict for (a child from an earlier, interrupted run of a
    // parent whose envelope was narrowed since): the message gets a scan job of its own.
    deps.logger.warn({ id: env.id }, 'message without a verdict for all its recipients: scanning it on its own');
    await openLedger(deps).rescan(env.id);
    return undefined;
  }
  const groups = groupPlans(ownPlans as RecipientPlan[]);
  const children: Envelope[] = [];
  for (const [i, g] of groups.slice(1).entries()) {
    children.push(
      await splitOff(
        deps,
        env,
        `${env.id}-${earlier.length + i + 2}`,
        g.members.map((m) => m.recipient),
      ),
    );
  }
  const mine = groups[0].members.map((m) => m.recipient);
  const split = children.length > 0 || earlier.length > 0;
  if (split) await openLedger(deps).narrow(env.id, mine);
  for (const c of earlier) {
    const row = await store.get(c);
    const childEnv = row?.status === 'queued' ? await spool.readEnvelope(c) : undefined;
    if (childEnv) children.push(childEnv);
  }
  for (const child of children) await processEnvelope(deps, child, analysis, plans, { splitFrom: env.id });
  const self = { ...env, rcptTo: mine };
  // `env` is the envelope as spooled: unless the split narrowed it, the spool already holds it.
  const spooledAsIs = mine.length === env.rcptTo.length;
  return act(
    deps,
    self,
    groups[0],
    analysis,
    {
      ...links,
      ...(split ? { splitInto: [...earlier, ...children.map((c) => c.id)].filter((v, i, a) => a.indexOf(v) === i) } : {}),
    },
    spooledAsIs,
  );
}

/**
 * The message, when a delivery is planned whose first attempt this job makes (only the job's own
 * message: a split-off part is a deliver job's). `env` is the envelope as spooled for delivery.
 */
async function act(deps: ScanDeps, env: Envelope, g: PlanGroup, analysis: Analysis, links: Links, spooledAsIs: boolean): Promise<AttemptHere | undefined> {
  const attemptHere = deps.deliverHere !== undefined && links.splitFrom === undefined;
  if (g.plan.kind === 'deliver') {
    const scanned = await deliverGroup(deps, env, g, analysis, links, { spooledAsIs, attemptHere });
    return scanned && { envelope: env, scanned };
  }
  await quarantineGroup(deps, env, g, links);
  return undefined;
}

/** Holds the whole message as "unscannable" (out of retries, or an unexpected error). */
async function hold(deps: ScanDeps, env: Envelope, reason: string, analysis?: Analysis): Promise<void> {
  const policies = await recipientPolicies(deps.config, env, deps.lists);
  const members: RecipientPlan[] = policies.map((rp) => {
    const report = analysis ? reportFor(analysis, rp) : { virus: { status: 'error' as const, reason }, spam: { status: 'error' as const, reason } };
    const score = { spam: null, urls: 0, auth: 0, total: 0, threshold: rp.policy.spam.threshold, highThreshold: rp.policy.spam.highThreshold };
    return {
      recipient: rp.recipient,
      policy: rp.policy,
      rules: rp.rules,
      report,
      class: 'unscannable',
      reason,
      reasons: [reason],
      classes: [{ class: 'unscannable', reasons: [reason] }],
      score,
      statusHeaders: [],
      action: { do: 'quarantine', notifyRecipient: false, notifyAdmin: false, forwardTo: [] },
      plan: { kind: 'quarantine', class: 'unscannable' },
    };
  });
  await quarantineGroup(deps, env, { plan: { kind: 'quarantine', class: 'unscannable' }, members }, {}, reason);
}

/**
 * A scanner is down while the SMTP session still waits for the verdict: the client gets
 * 451 4.7.1 and keeps the message (it will try again), so our copy is dropped. If the session no
 * longer waits, this does nothing and the scan is retried after the queue.
 */
async function tempfailInline(deps: ScanDeps, envelope: Envelope, reason: string): Promise<boolean> {
  if (!deps.inline) return false;
  const reply = replies.scannerTempfail();
  const refused = await deps.inline.refuse(envelope.id, reply).catch(() => false);
  if (!refused) return false;
  const text = `${reply.code} ${reply.enhanced} ${reply.text}`;
  await openLedger(deps).refuse(envelope.id, text, { why: reason });
  await deps.inline.announce(envelope.id).catch(() => {});
  deps.logger.warn({ id: envelope.id, reason }, 'scanner unavailable: inline session answered 451 4.7.1');
  return true;
}
