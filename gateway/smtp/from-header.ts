// Issue 18: "by option the From header must belong to the account" (submission.senders.
// checkFromHeader). The envelope sender is checked at MAIL; the From header only exists once the
// message is in, so its addresses are taken from the header block as DATA streams past (at most
// 64 KiB are kept: the header block ends long before that in any real message), and decided
// with the same ownership rule at the end of DATA.
import type { Readable } from 'node:stream';
import addressparser from 'nodemailer/lib/addressparser';
import { decideSubmissionSender, type SenderOwnership, type SubmissionUser } from '../../rules/frontline.ts';
import type { Decision } from '../../rules/connection.ts';
import { replies } from '../../rules/replies.ts';

const MAX_HEAD = 64 * 1024;

/** Collects the header block of a DATA stream (alongside whatever else reads it). */
export function captureHead(stream: Readable): { head(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const onData = (chunk: Buffer) => {
    if (done) return;
    chunks.push(chunk);
    size += chunk.length;
    const text = Buffer.concat(chunks).toString('latin1');
    if (size >= MAX_HEAD || /\r?\n\r?\n/.test(text)) {
      done = true;
      stream.off('data', onData);
    }
  };
  stream.on('data', onData);
  return {
    head() {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.search(/\r?\n\r?\n/);
      return end === -1 ? text : text.slice(0, end);
    },
  };
}

/** The addresses of the From header fields (all of them: a second From is a classic spoof). */
export function fromAddresses(head: string): string[] {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const values = unfolded.split(/\r?\n/).filter((l) => /^from:/i.test(l)).map((l) => l.slice(5));
  const flatten = (list: ReturnType<typeof addressparser>): string[] =>
    list.flatMap((a) => ('group' in a && a.group ? flatten(a.group) : 'address' in a && a.address ? [a.address] : []));
  return values.flatMap((v) => flatten(addressparser(v)));
}

export function decideFromHeader(head: string, user: SubmissionUser, o: SenderOwnership): Decision {
  const addresses = fromAddresses(head);
  if (addresses.length === 0) return { action: 'reject', reply: replies.fromHeaderNotOwned('(none)', user.username), reason: 'no From address', check: 'submission.from' };
  for (const address of addresses) {
    const d = decideSubmissionSender(address, user, o);
    if (d.action !== 'accept') return { action: 'reject', reply: replies.fromHeaderNotOwned(address, user.username), reason: `${user.username} may not use From: ${address}`, check: 'submission.from' };
  }
  return { action: 'accept' };
}
