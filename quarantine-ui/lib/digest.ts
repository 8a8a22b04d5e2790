// Quarantine digests: once a day each end user gets a plain-text e-mail listing the messages
// quarantined for their addresses since the last digest, each with a release link.
//
// A link is `<publicUrl>d/<token id>.<HMAC>`: the token id (128 random bits) names a row that
// binds ONE message to ONE recipient with an expiry; the HMAC (key derived from the console
// secret) covers id, message, recipient and expiry, so a copy of the database alone cannot mint
// links. Opening the link shows a confirmation page (mail scanners that pre-fetch links must not
// release anything); the POST uses the token once (compare-and-set) and releases the message.
// A message that also went to other recipients gets no link: one recipient must not release
// mail for another. A message of a class the recipient may not release (rules/release-rights.ts:
// a virus, by default) gets a "request release" link instead, to the same page, which then offers
// only the request.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../../gateway/config/schema.ts';
import type { Logger } from '../../gateway/log.ts';
import type { AccountStore } from '../../gateway/store/accounts.ts';
import type { DigestStore, ReleaseToken } from '../../gateway/store/digests.ts';
import type { MessageRecord, MetadataStore } from '../../gateway/store/metadata.ts';
import { deriveKey } from './keys.ts';
import { decide } from './rights.ts';
import { displayText, formatTime } from './text.ts';

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
  submit(envelope: { from: string; to: string[] }, raw: Buffer, subject: string): Promise<string>;
}

const LOOKBACK_MS = 7 * 24 * 3600_000;
const MAX_LISTED = 200;

function sign(secret: Buffer, t: Pick<ReleaseToken, 'id' | 'messageId' | 'recipient' | 'expiresAt'>): string {
  return createHmac('sha256', deriveKey(secret, 'digest-links'))
    .update(`mailmoat-release\n${t.id}\n${t.messageId}\n${t.recipient.toLowerCase()}\n${t.expiresAt}`)
    .digest('base64url');
}

export async function issueToken(deps: Pick<DigestDeps, 'digests' | 'secret' | 'config' | 'now'>, messageId: string, recipient: string): Promise<string> {
  const t = {
    id: randomBytes(16).toString('base64url'),
    messageId,
    recipient: recipient.toLowerCase(),
    expiresAt: deps.now() + deps.config.console.digest.linkTtlHours * 3600_000,
  };
  await deps.digests.addToken(t);
  return `${t.id}.${sign(deps.secret, t)}`;
}

export type TokenCheck = { ok: true; token: ReleaseToken } | { ok: false; reason: string };

/** Checks a link's token: signature, existence, expiry and single use (without using it). */
export async function checkToken(deps: Pick<DigestDeps, 'digests' | 'secret' | 'now'>, value: string): Promise<TokenCheck> {
  const m = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value);
  const token = m ? await deps.digests.getToken(m[1]!) : undefined;
  if (!m || !token) return { ok: false, reason: 'This link is not valid.' };
  const expected = Buffer.from(sign(deps.secret, token));
  const given = Buffer.from(m[2]!);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'This link is not valid.' };
  if (token.usedAt !== null) return { ok: false, reason: 'This link has been used already.' };
  if (token.expiresAt <= deps.now()) return { ok: false, reason: 'This link has expired.' };
  return { ok: true, token };
}

export interface DigestRunResult {
  sent: number;
  recipients: string[];
}

/** Sends one digest per end-user address that has messages not listed in an earlier digest. */
export async function sendDigests(deps: DigestDeps): Promise<DigestRunResult> {
  const result: DigestRunResult = { sent: 0, recipients: [] };
  const from = deps.config.console.digest.from ?? `quarantine@${deps.config.hostname}`;
  for (const account of await deps.accounts.list()) {
    if (account.role !== 'user' || account.disabled) continue;
    for (const address of account.addresses) {
      const { rows } = await deps.store.searchMessages({
        scope: { domains: [], addresses: [address] },
        statuses: ['quarantined'],
        from: deps.now() - LOOKBACK_MS,
        limit: MAX_LISTED,
      });
      const listed = await deps.digests.alreadySent(address, rows.map((r) => r.id));
      const fresh = rows.filter((r) => !listed.has(r.id));
      if (fresh.length === 0) continue;
      const raw = await composeDigest(deps, from, address, fresh);
      try {
        await deps.submit({ from: '', to: [address] }, raw.message, raw.subject);
        result.sent++;
        result.recipients.push(address);
      } catch (err) {
        deps.logger.error({ err, address }, 'quarantine digest could not be queued');
      }
    }
  }
  return result;
}

async function composeDigest(deps: DigestDeps, from: string, address: string, rows: MessageRecord[]): Promise<{ message: Buffer; subject: string }> {
  const base = deps.publicUrl;
  const lines: string[] = [
    `Messages for ${address} held in quarantine by ${deps.config.hostname}:`,
    '',
  ];
  for (const m of rows) {
    const own = m.rcptTo.every((r) => r.toLowerCase() === address.toLowerCase());
    // Token rows are written for every listed message (they also mark it as listed).
    const token = await issueToken(deps, m.id, address);
    lines.push(
      `* ${formatTime(m.receivedAt)}  from ${displayText(m.mailFrom || '<>', 120)}`,
      `  Subject: ${displayText(m.subject ?? '(none)', 150)}`,
      `  Held because: ${displayText(m.reason ?? m.verdict ?? 'unknown', 150)}`,
      !own
        ? '  (also addressed to other people: ask your administrator to release it)'
        : decide(deps.config, m, 'user', 'release').allowed
          ? `  Release it: ${base}d/${token}`
          : `  Request release (an administrator decides): ${base}d/${token}`,
      '',
    );
  }
  lines.push(
    `Release and request links work once and expire after ${deps.config.console.digest.linkTtlHours} hours.`,
    `Log in to see and manage your quarantine: ${base}`,
  );
  const subject = `Quarantine digest: ${rows.length} message(s) held for ${address}`;
  const date = new Date(deps.now()).toUTCString().replace('GMT', '+0000');
  const head = [
    `From: mailmoat quarantine <${from}>`,
    `To: <${address}>`,
    `Subject: ${subject}`,
    `Date: ${date}`,
    `Message-ID: <digest.${randomBytes(8).toString('hex')}@${deps.config.hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  return { subject, message: Buffer.from(`${head.join('\r\n')}\r\n\r\n${lines.join('\r\n')}\r\n`, 'utf8') };
}

/** Runs the digest once a day at console.digest.hourUtc; several consoles run it once (claimRun). */
export function startDigestScheduler(deps: DigestDeps, everyMs = 5 * 60_000): { stop(): void } {
  const tick = async () => {
    const now = new Date(deps.now());
    if (now.getUTCHours() < deps.config.console.digest.hourUtc) return;
    if (!(await deps.digests.claimRun(now.toISOString().slice(0, 10)))) return;
    const r = await sendDigests(deps);
    deps.logger.info({ sent: r.sent }, 'quarantine digests queued');
  };
  const timer = setInterval(() => void tick().catch((err: unknown) => deps.logger.error({ err }, 'digest run failed')), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
