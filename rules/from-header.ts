// Issue 18: "by option the From header must belong to the account" (submission.senders.
// checkFromHeader). The From header's addresses, and whether the account owns them: pure
// functions over the header block that the SMTP front captured (gateway/smtp/from-header.ts). The
// scan worker reads the same addresses for DKIM signing (gateway/pipeline/dkim.ts).
import addressparser from 'nodemailer/lib/addressparser';
import { decideSubmissionSender, type SenderOwnership, type SubmissionUser } from './frontline.ts';
import type { Decision } from './connection.ts';
import { replies } from './replies.ts';

/** The addresses of the From header fields (all of them: a second From is a classic spoof). */
export function fromAddresses(head: string): string[] {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const values = unfolded
    .split(/\r?\n/)
    .filter((l) => /^from:/i.test(l))
    .map((l) => l.slice(5));
  const flatten = (list: ReturnType<typeof addressparser>): string[] =>
    list.flatMap((a) => ('group' in a && a.group ? flatten(a.group) : 'address' in a && a.address ? [a.address] : []));
  return values.flatMap((v) => flatten(addressparser(v)));
}

export function decideFromHeader(head: string, user: SubmissionUser, o: SenderOwnership): Decision {
  const addresses = fromAddresses(head);
  if (addresses.length === 0)
    return { action: 'reject', reply: replies.fromHeaderNotOwned('(none)', user.username), reason: 'no From address', check: 'submission.from' };
  for (const address of addresses) {
    const d = decideSubmissionSender(address, user, o);
    if (d.action !== 'accept')
      return {
        action: 'reject',
        reply: replies.fromHeaderNotOwned(address, user.username),
        reason: `${user.username} may not use From: ${address}`,
        check: 'submission.from',
      };
  }
  return { action: 'accept' };
}
