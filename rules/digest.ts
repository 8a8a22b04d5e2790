// Quarantine digests for every recipient: which mode a recipient's domain is in, when a notice is
// due, and which links one listed message gets. Pure: the console (quarantine-ui/lib/digest.ts)
// gathers the facts and sends.
import { DEFAULT_POLICY, type DigestMode, type PolicyPatch } from './policy.ts';

/** The digest mode of a hosted domain: its policy, else the global policy, else the default. Not hosted: off. */
export function digestMode(globalPolicy: PolicyPatch | undefined, domain: { policy?: PolicyPatch } | undefined): DigestMode {
  if (!domain) return 'off';
  return domain.policy?.digest ?? globalPolicy?.digest ?? DEFAULT_POLICY.digest;
}

/**
 * A recipient's notice is due once the oldest hold not yet listed is `batchMs` old: the holds of
 * that window go out in one notice (a burst of spam is one mail, not fifty).
 */
export function noticeDue(receivedAts: readonly number[], now: number, batchMs: number): boolean {
  return receivedAts.length > 0 && Math.min(...receivedAts) <= now - batchMs;
}

export type ReleaseLink = 'release' | 'request' | 'none';

export interface ListedMessageFacts {
  /** The recipient the digest is for, lower case. */
  recipient: string;
  rcptTo: readonly string[];
  /** The envelope sender; "" for the null sender. */
  mailFrom: string;
  /** rules/release-rights.ts: may an end user release this message's classes? */
  userMayRelease: boolean;
}

export interface LinkChoice {
  release: ReleaseLink;
  /** Allow and block lists take an address: none for the null sender. */
  senderLists: boolean;
  /** Not spam always learns; it also releases where `release` is "release". */
  notSpam: boolean;
}

/**
 * One recipient must not release mail for another: a message that also went to other people gets
 * no release link (an administrator releases it). Allow, block and not-spam touch only the
 * recipient's own list and the learned filter, so they are offered either way.
 */
export function linksFor(f: ListedMessageFacts): LinkChoice {
  const own = f.rcptTo.every((r) => r.toLowerCase() === f.recipient);
  return {
    release: !own ? 'none' : f.userMayRelease ? 'release' : 'request',
    senderLists: f.mailFrom !== '',
    notSpam: true,
  };
}
