// Acting on verdicts: one message (or one part of it split off per policy group) is quarantined,
// delivered as a copy made for its group, or dropped after an inline refusal. Every step can be
// run again after a crash: quarantine and spool writes overwrite, generated notices have derived
// ids, and the message's state changes by compare-and-set.
//
// Splitting: one message id, one spool entry and one delivered copy per id is the model of the
// spool, the delivery worker and the `deliveries` table. Recipients whose handling differs are
// therefore split into messages of their own: "<id>-2", "<id>-3"… each with its own spool entry
// (a copy of the body), row, copy, delivery records and quarantine entry, and an event on both
// sides saying so. The parent keeps its first group; its row's recipients are narrowed to it, so
// that releasing it from quarantine never delivers to recipients who got their copy elsewhere.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CoreDeps } from '../deps.ts';
import { readHeaderBlock } from '../spool/files.ts';
import type { Envelope } from '../spool/spool.ts';
import type { ScanReport } from '../../scanners/types.ts';
import type { DisarmOptions } from '../../scanners/html-disarm.ts';
import type { SmtpReply } from '../../rules/replies.ts';
import { domainOf } from '../../rules/envelope.ts';
import type { PlanGroup, RecipientPlan } from '../../rules/actions.ts';
import { htmlBounds, registrableDomain, type Analysis } from './analyse.ts';
import { disarmKey } from './text-scan.ts';
import type { DisarmSettings } from '../../rules/actions.ts';
import type { AnalysisPool } from './analysis-pool.ts';
import { arcSealHeaders, isOurAuthResults, type ArcSealKey } from './auth.ts';
import { sendNotices } from './notify.ts';
import { removalNote, writeCopy } from './rewrite.ts';
import { OWN_HEADER_PREFIXES } from './stamp.ts';
import { dkimSignatureFor, isOutbound } from './dkim.ts';
import { receivedHeader } from './trace.ts';
import { workerMetrics } from '../metrics.ts';
import { verdictKind } from '../stats.ts';
import { narrowDsn, openLedger } from '../ledger/ledger.ts';
import type { LedgerEvent } from '../ledger/events.ts';
import { scannedRecord, type SummaryRecord } from '../summary.ts';

export { OWN_HEADER_PREFIXES };

export interface ActDeps extends CoreDeps {
  /** ARC-seal delivered copies with this key (authentication.arcSeal); absent: no seal. */
  arcKey?: ArcSealKey | null;
  /** Worker threads for disarming HTML (analysis-pool.ts); absent: disarmed on the event loop. */
  scanners?: { analysis?: AnalysisPool };
}

export interface Links {
  splitInto?: string[];
  splitFrom?: string;
}

/** The report stored with a message: its group's view plus how it was handled. */
function groupReport(g: PlanGroup, action: string, links: Links, sent: string[]): ScanReport {
  const m = g.members[0];
  return {
    ...m.report,
    score: m.score,
    outcome: {
      recipients: g.members.map((x) => x.recipient),
      class: m.class,
      // Every class with evidence, not only the one whose action won (console and digest show `class`).
      classes: m.classes.length > 0 ? m.classes.map((c) => c.class) : [m.class],
      action,
      reasons: m.reasons,
      rules: [...new Set(g.members.flatMap((x) => x.rules))],
      ...(m.statusHeaders.length > 0 ? { headers: m.statusHeaders } : {}),
      ...(links.splitInto && links.splitInto.length > 0 ? { splitInto: links.splitInto } : {}),
      ...(links.splitFrom ? { splitFrom: links.splitFrom } : {}),
      ...(sent.length > 0 ? { sent } : {}),
    },
  };
}

/**
 * The disarm settings the rewrite must apply, or null when it would change nothing: the analysis
 * already disarmed every HTML part with these settings exactly as the rewrite does (text-scan.ts)
 * and nothing changed, so the rewrite would pass every part on byte for byte. Parsing the HTML a
 * second time (a thread hand-off and a cheerio parse per part) would only confirm it. Without a
 * complete prediction for these settings (the pass stopped early, or did not run), the rewrite
 * disarms as always.
 */
export function disarmNeeded(settings: DisarmSettings | null, text: Analysis['text']): DisarmSettings | null {
  if (!settings || 'status' in text || !text.complete) return settings;
  const predicted = text.html.get(disarmKey(settings));
  return predicted && !predicted.changed && predicted.findings.length === 0 ? null : settings;
}

/** The Subject of a spooled message (header block only), for the message log. */
export async function readSubject(file: string): Promise<string | null> {
  const head = (await readHeaderBlock(file)).toString('latin1').split(/\r?\n\r?\n/)[0];
  const m = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
  return m ? m[1].replace(/\r?\n[ \t]+/g, ' ').trim() : null;
}

/** The numbers over time (gateway/stats.ts): the verdict, and what became of the group. */
function countVerdict(deps: ActDeps, verdictClass: string, g: PlanGroup, outcome?: 'quarantined' | 'refused'): void {
  const recipients = g.members.map((x) => x.recipient);
  const kind = verdictKind(verdictClass);
  if (kind) deps.stats?.count(kind, recipients);
  if (outcome) deps.stats?.count(outcome, recipients);
}

const WITHHELD = ['quarantine', 'reject', 'strip'];

async function notices(deps: ActDeps, env: Envelope, g: PlanGroup, outcome: string, subject: string | null, o: { forwards: boolean }): Promise<string[]> {
  // A recipient hears of what was withheld from them; a delivered copy speaks for itself.
  const notify = g.members.filter((m) => m.action.notifyRecipient && WITHHELD.includes(m.action.do)).map((m) => m.recipient);
  const admins = g.members.filter((m) => m.action.notifyAdmin).map((m) => m.policy.adminAddress ?? `postmaster@${domainOf(m.recipient)}`);
  const forwards = o.forwards ? g.members.flatMap((m) => m.action.forwardTo) : [];
  if (notify.length + admins.length + forwards.length === 0) return [];
  const m = g.members[0];
  return sendNotices(
    deps,
    { about: env, subject, class: m.class, outcome, reasons: m.reasons, recipients: g.members.map((x) => x.recipient) },
    { recipients: notify, admins, forwards },
  );
}

/** Holds the message in the quarantine for its group. */
export async function quarantineGroup(deps: ActDeps, env: Envelope, g: PlanGroup, links: Links, why?: string): Promise<void> {
  const { spool, logger } = deps;
  const subject = await readSubject(spool.messagePath(env.id));
  const m = g.members[0];
  const reason = why ?? m.reason;
  const fallback = g.plan.kind === 'reject';
  const sent = await notices(deps, env, g, 'quarantined', subject, { forwards: true });
  const action = fallback ? 'quarantine (reject: accepted before the verdict)' : 'quarantine';
  await openLedger(deps).planQuarantine(
    env.id,
    { verdict: m.class, reason, report: groupReport(g, action, links, sent), subject },
    { kind: 'quarantined', reason, policySaidReject: fallback },
  );
  workerMetrics.scanned.inc({ verdict: m.class, action: 'quarantine' });
  countVerdict(deps, m.class, g, 'quarantined');
  logger.debug({ id: env.id, verdict: m.class, reason, rcpt: env.rcptTo }, 'message quarantined');
}

/**
 * Writes the group's copy (tags, headers, removed attachments, disarmed HTML) and plans its
 * delivery: queued for the deliver worker, or (attemptHere) left for the caller's first attempt.
 * When the caller must make that attempt (or hand the message on: it has no job yet), the
 * message's row as written here (its summary line is made from it, not read back).
 */
export async function deliverGroup(
  deps: ActDeps,
  env: Envelope,
  g: PlanGroup,
  analysis: Analysis,
  links: Links,
  o: { spooledAsIs?: boolean; attemptHere?: boolean } = {},
): Promise<SummaryRecord | undefined> {
  const { spool, config, logger } = deps;
  const pool = deps.scanners?.analysis;
  if (g.plan.kind !== 'deliver') throw new Error('deliverGroup needs a deliver plan');
  const { spec } = g.plan;
  const disarm = disarmNeeded(spec.disarm, analysis.text);
  const m = g.members[0];
  const authservId = config.authentication.authservId ?? config.hostname;
  // Issue 18: an outbound copy carries no inbound-only headers (our Authentication-Results, the
  // spam status, warnings meant for a recipient here), and is DKIM-signed instead of ARC-sealed.
  const outbound = isOutbound(env);
  const authHeaders = !outbound && spec.authResults && 'headers' in analysis.auth ? analysis.auth.headers : [];
  const findings = m.report.attachments?.status === 'checked' ? m.report.attachments.findings : [];
  const strip = spec.strip.map((part) => {
    const here = findings.filter((f) => f.part === part);
    return {
      part,
      note: removalNote({ filename: here[0]?.archivePath?.[0] ?? here[0]?.filename ?? null, reasons: here.map((f) => f.reason), messageId: env.id }),
    };
  });
  const copySpec = {
    stamp: {
      prepend: [
        ['Received', receivedHeader(env, config.hostname)],
        ...authHeaders,
        ['X-Mailmoat-ID', env.id],
        ...(outbound ? [] : spec.statusHeaders),
        ...(spec.warning && !outbound ? [['X-Mailmoat-Warning', spec.warning]] : []),
      ] as [string, string][],
      removePrefixes: OWN_HEADER_PREFIXES,
      removeIf: (key: string, line: string) => isOurAuthResults(key, line, authservId),
      subjectTag: spec.subjectTag,
    },
    strip,
    disarm: disarm && {
      ...disarm,
      registrableDomain,
      maxHtmlPartBytes: config.mime.maxHtmlPartBytes,
      htmlBounds: htmlBounds(config),
      runDisarm: pool && ((html: string, o: Partial<DisarmOptions>) => pool.disarmHtml(html, o)),
    },
    limits: { maxParts: config.mime.maxParts, maxHeaderBytes: config.mime.maxHeaderBytes },
  };
  let result: Awaited<ReturnType<typeof writeCopy>> | undefined;
  // The bytes the analysis read once (a split-off child's spool copy is the same bytes).
  const input = () => (analysis.body ? Readable.from([analysis.body], { objectMode: false }) : createReadStream(spool.messagePath(env.id)));
  const arc = !outbound && deps.arcKey && spec.authResults && 'arc' in analysis.auth ? analysis.auth.arc : null;
  const arcKey = deps.arcKey;
  // Headers made over the finished copy and put on top of it: the ARC set, or a DKIM signature.
  const sealWith = outbound
    ? (side: string) => dkimSignatureFor(side, env, config.dataDir)
    : arcKey && arc
      ? (side: string) => arcSealHeaders(side, arcKey, arc)
      : null;
  // The copy with its envelope as the commit record; an envelope that is the one spooled (not
  // narrowed by a split) is already that record and is not written again.
  const writeForDelivery = (produce: (out: Writable) => Promise<void>) =>
    o.spooledAsIs ? spool.writeScannedCopy(env.id, produce) : spool.restoreForDelivery(env, produce);
  try {
    if (sealWith) {
      // RFC 8617 / RFC 6376: the seal or signature covers the copy as delivered, so it is made
      // over the finished copy (written aside first), and goes on top of it.
      const side = `${spool.outputPath(env.id)}.unsealed`;
      try {
        const ws = createWriteStream(side);
        result = await writeCopy(input(), ws, copySpec);
        await new Promise<void>((resolve, reject) => ws.end((e?: Error | null) => (e ? reject(e) : resolve())));
        const seal = await sealWith(side);
        await writeForDelivery(async (out) => {
          out.write(seal);
          await pipeline(createReadStream(side), out, { end: false });
        });
      } finally {
        await fs.rm(side, { force: true });
      }
    } else {
      await writeForDelivery(async (out) => {
        result = await writeCopy(input(), out, copySpec);
      });
    }
  } catch (err) {
    // A copy we cannot write (a structure the splitter refuses) is held, never sent as it came.
    logger.warn({ id: env.id, err }, 'could not write the delivered copy; holding the message');
    await quarantineGroup(
      deps,
      env,
      { ...g, plan: { kind: 'quarantine', class: 'unscannable' } },
      links,
      `could not write the delivered copy: ${(err as Error).message}`,
    );
    return undefined;
  }
  const outcome = spec.strip.length > 0 ? 'delivered with attachments removed' : spec.subjectTag ? `delivered tagged ${spec.subjectTag}` : 'delivered';
  const sent = await notices(deps, env, g, outcome, result?.subject ?? null, { forwards: true });
  const report = groupReport(g, g.members[0].action.do, links, sent);
  if (report.attachments?.status === 'checked' && result && result.stripped.length > 0)
    report.attachments = { ...report.attachments, stripped: result.stripped };
  const ledger = openLedger(deps);
  const verdict = { verdict: m.class, reason: m.reason, report, subject: result?.subject ?? null };
  const events: LedgerEvent[] = result?.stripped.length ? [{ kind: 'stripped', parts: result.stripped }] : [];
  let here = false;
  if (!o.attemptHere) await ledger.planDeliver(env.id, verdict, events);
  // Not queued any more (this scan ran before): the deliver queue has it, as planDeliver would do.
  else if (!(here = await ledger.planDeliverHere(env.id, verdict, events))) await ledger.handToDelivery(env.id);
  workerMetrics.scanned.inc({ verdict: m.class, action: 'deliver' });
  countVerdict(deps, m.class, g);
  logger.debug({ id: env.id, verdict: m.class, reason: m.reason, rcpt: env.rcptTo }, 'message scanned, planned for delivery');
  return here ? scannedRecord(env, verdict) : undefined;
}

/** The message was refused at SMTP time: nothing is kept but its record. */
export async function dropRefused(deps: ActDeps, env: Envelope, plans: RecipientPlan[], reply: SmtpReply): Promise<void> {
  const { spool, logger } = deps;
  const text = `${reply.code} ${reply.enhanced} ${reply.text}`;
  const g: PlanGroup = { plan: plans[0].plan, members: plans };
  const subject = await readSubject(spool.messagePath(env.id)).catch(() => null);
  // A refused message is not kept anywhere: notices, but no forwarded copies.
  const sent = await notices(deps, env, g, 'refused', subject, { forwards: false });
  await openLedger(deps).refuse(env.id, text, {
    verdict: { verdict: plans[0].class, reason: plans[0].reason, report: groupReport(g, 'refused', {}, sent), subject },
  });
  workerMetrics.scanned.inc({ verdict: plans[0].class, action: 'refuse' });
  countVerdict(deps, plans[0].class, g, 'refused');
  logger.debug({ id: env.id, verdict: plans[0].class, reply: text }, 'message refused by inline verdict');
}

/** A copy of the spooled message under a new id with some of its recipients (a policy group). */
export async function splitOff(deps: ActDeps, parent: Envelope, childId: string, rcptTo: string[]): Promise<Envelope> {
  const { spool } = deps;
  const child: Envelope = { ...parent, id: childId, rcptTo, ...(parent.dsn ? { dsn: narrowDsn(parent.dsn, rcptTo) } : {}) };
  await spool.discardIncoming(childId);
  await spool.receive(childId, createReadStream(spool.messagePath(parent.id)), Number.MAX_SAFE_INTEGER);
  await spool.commit(child);
  await openLedger(deps).split(parent, child);
  return child;
}
