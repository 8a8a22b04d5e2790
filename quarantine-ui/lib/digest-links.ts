// Digest links: `<token id>.<HMAC>`. The token id (128 random bits) names a digest_tokens row that
// binds one action on one message to one recipient with an expiry; the HMAC (key derived from the
// console secret, lib/keys.ts) covers action, id, message, recipient and expiry, so a copy of the
// database alone cannot mint links, and a token cannot be turned into another action.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../../gateway/config/schema.ts';
import type { DigestStore, LinkAction, ReleaseToken } from '../../gateway/store/digests.ts';
import { USERNAME } from '../../gateway/store/accounts.ts';
import { deriveKey } from './keys.ts';

interface LinkDeps {
  digests: DigestStore;
  secret: Buffer;
  now(): number;
}

/** Release links signed before link actions existed keep their exact string ("mailmoat-release"). */
function sign(secret: Buffer, t: Pick<ReleaseToken, 'id' | 'action' | 'messageId' | 'recipient' | 'expiresAt'>): string {
  return createHmac('sha256', deriveKey(secret, 'digest-links'))
    .update(`mailmoat-${t.action}\n${t.id}\n${t.messageId}\n${t.recipient.toLowerCase()}\n${t.expiresAt}`)
    .digest('base64url');
}

/** A new single-use link token (`<id>.<hmac>`) for one action on one message ("" for login) and one recipient. */
export async function issueToken(deps: LinkDeps & { config: Config }, messageId: string, recipient: string, action: LinkAction = 'release'): Promise<string> {
  const t = {
    id: randomBytes(16).toString('base64url'),
    action,
    messageId,
    recipient: recipient.toLowerCase(),
    expiresAt: deps.now() + deps.config.console.digest.linkTtlHours * 3600_000,
  };
  await deps.digests.addToken(t);
  return `${t.id}.${sign(deps.secret, t)}`;
}

/**
 * Whether the open-my-quarantine link can work for an address: it logs into the end-user account
 * named after it, and a console username is shorter and plainer than a mail address may be
 * (o'brien@…, 65+ characters). No link is better than one that fails after a click.
 */
export function loginLinkPossible(address: string): boolean {
  return USERNAME.test(address.toLowerCase());
}

export type TokenCheck = { ok: true; token: ReleaseToken } | { ok: false; reason: string };

/** Checks a link's token: signature, existence, expiry and single use (without using it). */
export async function checkToken(deps: LinkDeps, value: string): Promise<TokenCheck> {
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
