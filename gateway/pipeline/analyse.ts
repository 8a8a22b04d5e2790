// The analysis of one spooled message: every scanner a recipient's policy asks for, in parallel.
// A small message (READ_ONCE_BYTES) is read from the spool once and every analyser takes that
// buffer (clamd, spamd, mailauth, the learner, then the rewrite); a larger one is streamed from
// the file by each, so that it is never held twice (spamd and mailauth take the message whole,
// bounded by spamd.maxBytes and smtp.maxMessageBytes). The MIME walk and the text scan share one
// pass (mime-pass.ts). Then `reportFor` gives each recipient's view of it: attachment rules and
// HTML settings can differ per recipient's policy.
//
// A scanner that fails is reported as failed (the verdict retries the scan), never left out.
// The MIME pass runs in worker threads (analysis-pool.ts) with a time budget; a bound it hits
// (HTML nesting, time, memory) is "unscannable" — a retry would hit it again.
import { promises as fs } from 'node:fs';
import { openSpoolFile } from '../spool/read.ts';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.ts';
import type { Envelope, Spool } from '../spool/spool.ts';
import { walkMessage } from '../../scanners/mime-walk.ts';
import { DEFAULT_ZIP_LIMITS } from '../../scanners/zip-inspect.ts';
import type { MessageFacts } from '../../scanners/facts.ts';
import type { AttachmentScan, Failed, Unscannable, HtmlScan, LearnerScan, ScanReport, Skipped, SpamScan, UrlScan, VirusScan } from '../../scanners/types.ts';
import { domainOf } from '../../rules/envelope.ts';
import { LEARNER_HEAD_BYTES, type Learner } from '../learner/learner.ts';
import { evaluateAttachments, mergeAttachmentRules } from '../../rules/attachments.ts';
import { DEFAULT_ATTACHMENT_RULES } from '../../rules/defaults/attachments.ts';
import { DEFAULT_PHISHING_SAFE_SITES } from '../../rules/defaults/phishing-safe-sites.ts';
import { disarmSettings, type DisarmSettings } from '../../rules/actions.ts';
import { urlScan, type UrlFacts } from '../../rules/urls.ts';
import type { Policy } from '../../rules/policy.ts';
import { authenticateMessage, type AuthOutcome } from './auth.ts';
import { disarmKey, registrableDomain, type TextScanOptions, type TextScanResult } from './text-scan.ts';
import { mimePass, passInput, sourceStream, type MessageSource, type MimePassResult } from './mime-pass.ts';
import { AnalysisLimit, type AnalysisPool } from './analysis-pool.ts';
import { createUrlChecker, type UrlChecker } from './urls.ts';
import type { RecipientPolicy } from './policy.ts';
import { receivedHeader } from './trace.ts';
import type { MailauthResolver } from '../../core/dns.ts';
import type { HtmlBounds } from '../../scanners/html-bounds.ts';
import { timedScan } from '../metrics.ts';

export { registrableDomain };

export interface Scanners {
  /** A small message comes as the buffer every analyser shares, a large one as a stream of its spool file. */
  virus(input: Readable | Buffer): Promise<VirusScan>;
  spam(message: Buffer): Promise<SpamScan>;
  /** Mail authentication on the gateway's resolver; absent: the auth check cannot run (a policy asking for it retries). */
  mailauth?: MailauthResolver;
  /** URL look-ups; absent: bad-sites list only, no blocklists. */
  urls?: UrlChecker;
  /** Worker threads for the HTML and text analysis (analysis-pool.ts); absent: it runs on the event loop, unbudgeted. */
  analysis?: AnalysisPool;
  /** The learned filter (gateway/learner/learner.ts); absent: reported as not set up, it adds nothing. */
  learner?: Pick<Learner, 'score'>;
}

export interface Analysis {
  virus: VirusScan;
  spam: SpamScan;
  facts: MessageFacts | Failed | Skipped;
  text: TextScanResult | Failed | Skipped | Unscannable;
  auth: AuthOutcome | Skipped;
  urls: UrlFacts | Failed | Skipped | Unscannable;
  /** When the analysis began and ended (epoch ms): the summary line's queue and scan delays. */
  timing: { startedAt: number; finishedAt: number };
  /** The learner's verdict per recipient domain. */
  learner: Map<string, LearnerScan> | Failed | Skipped;
  /** The message as read once (up to READ_ONCE_BYTES), for the rewrite; absent: read it from the spool. */
  body?: Buffer;
}

const skipped = (reason: string): Skipped => ({ status: 'skipped', reason });
const failed = (err: unknown): Failed => ({ status: 'error', reason: (err as Error)?.message ?? String(err) });

export const htmlBounds = (config: Config): HtmlBounds => ({ maxDepth: config.mime.maxHtmlDepth, maxElements: config.mime.maxHtmlElements });

export function walkLimits(config: Config) {
  const m = config.mime;
  return { maxParts: m.maxParts, maxDepth: m.maxDepth, maxHeaderBytes: m.maxHeaderBytes, maxArchiveBytes: m.maxArchiveBytes, zip: DEFAULT_ZIP_LIMITS };
}

/** The text scan's bounds from the config, with the disarm settings to predict (also used by bench/analysis-pass.ts). */
export function textScanLimits(config: Config, disarm: DisarmSettings[]) {
  const m = config.mime;
  return {
    maxParts: m.maxParts,
    maxHeaderBytes: m.maxHeaderBytes,
    maxHtmlPartBytes: m.maxHtmlPartBytes,
    maxTextPartBytes: m.maxTextPartBytes,
    maxHosts: config.urls.maxHosts,
    disarm,
    htmlBounds: htmlBounds(config),
  };
}

export interface AnalyseDeps {
  config: Config;
  spool: Spool;
  scanners: Scanners;
}

/**
 * Messages up to this size are read from the spool once, into one buffer that every analyser
 * shares (clamd, spamd, mailauth, the MIME pass, the learner, then the rewrite); larger ones are
 * streamed from the file by each, so that a big message is never held twice.
 */
export const READ_ONCE_BYTES = 4 * 1024 * 1024;

/**
 * The walk and the text scan in one MIME pass (mime-pass.ts), in a worker thread when there is a
 * pool. A bound of the analysis hit (time, memory) is "unscannable" for the text scan, as it was
 * on its own; the walk, which never had a budget, then runs alone on the event loop, so that its
 * facts are what they always were.
 */
function runMimePass(
  scanners: Scanners,
  source: MessageSource,
  o: { walk?: ReturnType<typeof walkLimits>; text?: Omit<TextScanOptions, 'registrableDomain'> },
): { facts: Promise<MessageFacts | Failed | Skipped>; text: Promise<TextScanResult | Failed | Skipped | Unscannable> } {
  if (!o.walk && !o.text) return { facts: Promise.resolve(skipped('attachment check off')), text: Promise.resolve(skipped('HTML and URL checks off')) };
  const options = { ...(o.walk ? { walk: o.walk } : {}), ...(o.text ? { text: o.text } : {}) };
  const pass: Promise<MimePassResult> = timedScan(o.text ? 'html' : 'mime', () =>
    scanners.analysis
      ? scanners.analysis.mimePass(source, options)
      : mimePass(passInput(source), { ...(o.walk ? { walk: o.walk } : {}), ...(o.text ? { text: { ...o.text, registrableDomain } } : {}) }),
  );
  const walkAlone = (): Promise<MessageFacts | Failed> => timedScan('mime', () => walkMessage(sourceStream(source), o.walk)).catch(failed);
  const facts: Promise<MessageFacts | Failed | Skipped> = !o.walk
    ? Promise.resolve(skipped('attachment check off'))
    : pass.then(
        (r) => r.facts ?? failed(new Error('the MIME pass returned no walk')),
        (err: unknown) => (scanners.analysis ? walkAlone() : failed(err)),
      );
  const text: Promise<TextScanResult | Failed | Skipped | Unscannable> = !o.text
    ? Promise.resolve(skipped('HTML and URL checks off'))
    : pass.then(
        (r) => r.text ?? failed(new Error('the MIME pass returned no text scan')),
        (err: unknown) => (err instanceof AnalysisLimit ? { status: 'unscannable' as const, reason: err.message } : failed(err)),
      );
  return { facts, text };
}

export async function analyse(deps: AnalyseDeps, envelope: Envelope, policies: RecipientPolicy[]): Promise<Analysis> {
  const { config, spool, scanners } = deps;
  const startedAt = Date.now();
  const file = spool.messagePath(envelope.id);
  const any = (k: keyof Policy['checks']) => policies.some((p) => p.policy.checks[k]);
  const settings = uniqueSettings(policies.map((p) => p.policy));
  // One read for every analyser (a small message); a large one is streamed from the file by each.
  const body = envelope.size <= READ_ONCE_BYTES ? await fs.readFile(file) : null;
  const source: MessageSource = body ? { bytes: body } : { file };

  const virus: Promise<VirusScan> = any('virus')
    ? timedScan('clamd', async () => scanners.virus(body ?? (await openSpoolFile(file))))
    : Promise.resolve(skipped('virus check off for every recipient'));
  const spam: Promise<SpamScan> =
    !any('spam') || !config.spamd.enabled
      ? Promise.resolve(skipped(config.spamd.enabled ? 'spam check off for every recipient' : 'spam scanning disabled'))
      : envelope.size > config.spamd.maxBytes
        ? Promise.resolve(skipped(`larger than ${config.spamd.maxBytes} bytes`))
        : (body ? Promise.resolve(body) : fs.readFile(file)).then((message) =>
            // spamd sees our trace header too, so it knows which relay handed the message to us.
            timedScan('spamd', () => scanners.spam(Buffer.concat([Buffer.from(`Received: ${receivedHeader(envelope, config.hostname)}\r\n`), message]))),
          );
  const mime = runMimePass(scanners, source, {
    ...(any('attachments') ? { walk: walkLimits(config) } : {}),
    ...(any('html') || any('urls')
      ? {
          text: textScanLimits(config, settings),
        }
      : {}),
  });
  const facts = mime.facts;
  const text = mime.text;
  const urls: Promise<UrlFacts | Failed | Skipped | Unscannable> = any('urls')
    ? text.then(async (t) => {
        if ('status' in t) return t;
        // Without a configured checker: the bad-sites list only, no DNS.
        const checker = scanners.urls ?? createUrlChecker({ config: config.urls, resolver: null, registrableDomain });
        return timedScan('urls', () => checker.check(t.hosts, t.truncated)).catch(failed);
      })
    : Promise.resolve(skipped('URL check off'));
  const authservId = config.authentication.authservId ?? config.hostname;
  const auth: Promise<AuthOutcome | Skipped> = !any('auth')
    ? Promise.resolve(skipped('authentication check off'))
    : scanners.mailauth
      ? ((resolver) => timedScan('auth', () => authenticateMessage(body ?? file, envelope, { resolver, authservId })))(scanners.mailauth)
      : Promise.resolve({ scan: failed(new Error('no resolver for mail authentication')), headers: [], arc: null });
  const learnerDomains = [...new Set(policies.filter((p) => p.policy.checks.learner).map((p) => domainOf(p.recipient)))];
  const learner: Promise<Map<string, LearnerScan> | Failed | Skipped> =
    learnerDomains.length === 0
      ? Promise.resolve(skipped('learned filter off for every recipient'))
      : !scanners.learner
        ? Promise.resolve(skipped('learned filter not set up on this node'))
        : (body ? Promise.resolve(body.subarray(0, LEARNER_HEAD_BYTES)) : readHead(file, LEARNER_HEAD_BYTES))
            .then((head) => scanners.learner!.score(head, learnerDomains))
            .catch(failed);
  const [v, s, f, t, a, u, l] = await Promise.all([virus, spam, facts, text, auth, urls, learner]);
  return { virus: v, spam: s, facts: f, text: t, auth: a, urls: u, learner: l, timing: { startedAt, finishedAt: Date.now() }, ...(body ? { body } : {}) };
}

/** The first `n` bytes of a file (the learner reads no more). */
async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function uniqueSettings(policies: Policy[]): DisarmSettings[] {
  const out = new Map<string, DisarmSettings>();
  for (const p of policies) {
    const s = disarmSettings(p, DEFAULT_PHISHING_SAFE_SITES);
    if (s) out.set(disarmKey(s), s);
  }
  return [...out.values()];
}

function attachmentView(a: Analysis, p: Policy): AttachmentScan {
  if (!p.checks.attachments) return skipped('attachment check off');
  if ('status' in a.facts) return a.facts;
  const facts = a.facts;
  const rules = p.attachments.rules.reduce(mergeAttachmentRules, { ...DEFAULT_ATTACHMENT_RULES, encrypted: 'report' as const });
  const evaluated = evaluateAttachments(facts, rules);
  const findings = evaluated.findings.filter((f) => !(f.class === 'encrypted' && p.attachments.encrypted === 'allow'));
  return {
    status: 'checked',
    structure: facts.outcome,
    parts: facts.parts.length,
    files: facts.parts
      .filter((x) => x.filename !== null || x.disposition === 'attachment' || !x.contentType.startsWith('text/'))
      .map((x) => ({ part: x.id, filename: x.filename, contentType: x.contentType, size: x.size, detected: x.detected?.description ?? null })),
    findings,
  };
}

function htmlView(a: Analysis, p: Policy): HtmlScan {
  if (!p.checks.html) return skipped('HTML check off');
  if ('status' in a.text) return a.text.status !== 'skipped' ? a.text : { status: 'error', reason: 'HTML was not read' };
  const s = disarmSettings(p, DEFAULT_PHISHING_SAFE_SITES);
  const found = s ? a.text.html.get(disarmKey(s)) : undefined;
  return found ?? { status: 'error', reason: 'no HTML analysis for this policy' };
}

function urlView(a: Analysis, p: Policy): UrlScan {
  if (!p.checks.urls) return skipped('URL check off');
  if ('status' in a.urls) return a.urls.status !== 'skipped' ? a.urls : { status: 'error', reason: 'URLs were not read' };
  return urlScan(a.urls, p.urls.badSiteScore);
}

function learnerView(a: Analysis, rp: RecipientPolicy): LearnerScan {
  if (!rp.policy.checks.learner) return skipped('learned filter off');
  if (!(a.learner instanceof Map)) return a.learner;
  return a.learner.get(domainOf(rp.recipient)) ?? { status: 'error', reason: 'no learner verdict for this domain' };
}

/** One recipient's view of the analysis: what rules/verdict.ts classifies. */
export function reportFor(a: Analysis, rp: RecipientPolicy): ScanReport {
  const p = rp.policy;
  return {
    virus: a.virus,
    spam: a.spam,
    attachments: attachmentView(a, p),
    html: htmlView(a, p),
    auth: !p.checks.auth ? skipped('authentication check off') : 'scan' in a.auth ? a.auth.scan : a.auth,
    urls: urlView(a, p),
    learner: learnerView(a, rp),
    list: p.checks.lists ? rp.list : null,
    timing: a.timing,
  };
}
