// Quarantine digests for every recipient with held mail (no console account needed). Per hosted
// domain (policy.digest, rules/digest.ts): off, a daily digest at console.digest.hourUtc, or a
// notice that gathers a recipient's holds for console.digest.noticeBatchMs and leaves within a
// minute. Each listed message carries links (release or request release, allow sender, block
// sender, not spam), and each mail one link that opens the recipient's quarantine without a password.
//
// A link is `<publicUrl>d/<token id>.<HMAC>`: the token id (128 random bits) names a row that
// binds ONE action on ONE message to ONE recipient with an expiry; the HMAC (key derived from the
// console secret) covers action, id, message, recipient and expiry, so a copy of the database
// alone cannot mint links. Opening the link shows a confirmation page (mail scanners that
// pre-fetch links must not act); the POST uses the token once (compare-and-set) and acts.
// A message that also went to other recipients gets no release link: one recipient must not
// release mail for another. A message of a class the recipient may not release
// (rules/release-rights.ts: a virus, by default) gets a "request release" link instead. A
// recipient whose console account is disabled gets none.
//
// Several consoles: a day's run and each notice interval are claimed once in digest_runs, and
// each (recipient, message) is claimed once in digest_listed, so no message is listed twice.
import type { Config } from '../../gateway/config/schema.ts';
import type { Logger } from '../../gateway/log.ts';
import type { AccountStore } from '../../gateway/store/accounts.ts';
import type { DigestStore } from '../../gateway/store/digests.ts';
import type { MessageRecord, MetadataStore } from '../../gateway/store/metadata.ts';
import { digestMode, noticeDue } from '../../rules/digest.ts';
import { domainOf } from '../../rules/envelope.ts';
import type { DigestMode } from '../../rules/policy.ts';
import { composeDigest } from './digest-mail.ts';
import { sendGenerated, type Submit } from './mail-out.ts';

export { checkToken, issueToken, type TokenCheck } from './digest-links.ts';

export interface DigestDeps {
  config: Config;
  store: MetadataStore;
  accounts: AccountStore;
  digests: DigestStore;
  secret: Buffer;
  publicUrl: string;
  logger: Logger;
  now(): number;
  /** Hands a generated message to the gateway for delivery (it appears in the message log). */
  submit: Submit;
}

const DAILY_LOOKBACK_MS = 7 * 24 * 3600_000;
/** Notices look back a day: a console down for longer leaves older holds to the quarantine page. */
const NOTICE_LOOKBACK_MS = 24 * 3600_000;
/** Messages in one mail; the rest are listed by the next run. */
const MAX_LISTED = 200;
/** Quarantined messages read per run (pages of PAGE). */
const PAGE = 1000;
const MAX_PAGES = 50;

export interface DigestRunResult {
  sent: number;
  recipients: string[];
}

/** The quarantined messages of every recipient whose domain is in `mode`, received since `since`. */
async function heldByRecipient(deps: DigestDeps, mode: DigestMode, since: number): Promise<Map<string, MessageRecord[]>> {
  const { config } = deps;
  const domains = Object.keys(config.domains).filter((d) => digestMode(config.policy, config.domains[d]) === mode);
  const held = new Map<string, MessageRecord[]>();
  if (domains.length === 0) return held;
  const inMode = new Set(domains);
  for (let page = 0; page < MAX_PAGES; page++) {
    const { rows } = await deps.store.searchMessages({
      scope: { domains, addresses: [] },
      statuses: ['quarantined'],
      from: since,
      limit: PAGE,
      offset: page * PAGE,
    });
    for (const m of rows) {
      for (const r of new Set(m.rcptTo.map((x) => x.toLowerCase()))) {
        if (!inMode.has(domainOf(r))) continue;
        held.set(r, [...(held.get(r) ?? []), m]);
      }
    }
    if (rows.length < PAGE) break;
  }
  return held;
}

/** Lists the messages not yet listed to this recipient (claimed, so once across consoles) in one mail. */
async function sendTo(deps: DigestDeps, kind: 'digest' | 'notice', recipient: string, rows: MessageRecord[]): Promise<boolean> {
  // A disabled account's links are refused (routes/digest.ts): no mail full of dead links.
  if ((await deps.accounts.byName(recipient))?.disabled) return false;
  const listed = await deps.digests.alreadySent(
    recipient,
    rows.map((r) => r.id),
  );
  const fresh = rows.filter((r) => !listed.has(r.id)).slice(0, MAX_LISTED);
  if (fresh.length === 0) return false;
  const claimed = new Set(
    await deps.digests.claimListing(
      recipient,
      fresh.map((r) => r.id),
    ),
  );
  const mine = fresh.filter((r) => claimed.has(r.id));
  if (mine.length === 0) return false;
  try {
    const mail = await composeDigest(deps, kind, recipient, mine);
    await sendGenerated(deps, mail);
    return true;
  } catch (err) {
    await deps.digests.releaseListing(
      recipient,
      mine.map((r) => r.id),
    );
    deps.logger.error({ err, recipient, kind }, 'quarantine digest could not be queued');
    return false;
  }
}

async function sendAll(deps: DigestDeps, kind: 'digest' | 'notice', held: Map<string, MessageRecord[]>): Promise<DigestRunResult> {
  const result: DigestRunResult = { sent: 0, recipients: [] };
  for (const [recipient, rows] of [...held].sort(([a], [b]) => a.localeCompare(b))) {
    if (await sendTo(deps, kind, recipient, rows)) {
      result.sent++;
      result.recipients.push(recipient);
    }
  }
  return result;
}

/** Sends one digest per recipient (in daily-mode domains) that has messages not listed in an earlier digest. */
export async function sendDigests(deps: DigestDeps): Promise<DigestRunResult> {
  return sendAll(deps, 'digest', await heldByRecipient(deps, 'daily', deps.now() - DAILY_LOOKBACK_MS));
}

/** Sends a notice to each recipient (in notice-mode domains) whose oldest unlisted hold is noticeBatchMs old. */
export async function sendNotices(deps: DigestDeps): Promise<DigestRunResult> {
  const now = deps.now();
  const held = await heldByRecipient(deps, 'notice', now - NOTICE_LOOKBACK_MS);
  const due = new Map<string, MessageRecord[]>();
  for (const [recipient, rows] of held) {
    const listed = await deps.digests.alreadySent(
      recipient,
      rows.map((r) => r.id),
    );
    const fresh = rows.filter((r) => !listed.has(r.id));
    if (
      noticeDue(
        fresh.map((r) => r.receivedAt),
        now,
        deps.config.console.digest.noticeBatchMs,
      )
    )
      due.set(recipient, fresh);
  }
  return sendAll(deps, 'notice', due);
}

/**
 * The daily digest at console.digest.hourUtc (checked every `dailyEveryMs`) and the notices
 * (every console.digest.noticeCheckMs). With several consoles each day and each notice interval
 * is claimed by one of them; a run still going when the next tick comes is not started twice.
 */
export function startDigestScheduler(deps: DigestDeps, o: { dailyEveryMs?: number } = {}): { stop(): void } {
  const { noticeCheckMs } = deps.config.console.digest;
  const guarded = (what: string, fn: () => Promise<void>) => {
    let running = false;
    return () => {
      if (running) return;
      running = true;
      fn()
        .catch((err: unknown) => deps.logger.error({ err }, `${what} failed`))
        .finally(() => (running = false));
    };
  };
  const daily = guarded('digest run', async () => {
    const now = new Date(deps.now());
    if (now.getUTCHours() < deps.config.console.digest.hourUtc) return;
    if (!(await deps.digests.claimRun(now.toISOString().slice(0, 10)))) return;
    await deps.digests.pruneRuns('notice:', now.getTime() - 24 * 3600_000);
    const r = await sendDigests(deps);
    deps.logger.info({ sent: r.sent }, 'quarantine digests queued');
  });
  const notices = guarded('digest notices', async () => {
    if (!(await deps.digests.claimRun(`notice:${Math.floor(deps.now() / noticeCheckMs)}`))) return;
    const r = await sendNotices(deps);
    if (r.sent > 0) deps.logger.info({ sent: r.sent }, 'quarantine notices queued');
  });
  const timers = [setInterval(daily, o.dailyEveryMs ?? 5 * 60_000), setInterval(notices, noticeCheckMs)];
  for (const t of timers) t.unref();
  return { stop: () => timers.forEach(clearInterval) };
}
