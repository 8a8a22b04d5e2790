// Envelope decisions (MAIL FROM / RCPT TO), pure: facts in, reply out. `null` means accept.
import { replies, type SmtpReply } from './replies.ts';

export interface RecipientFacts {
  /** Hosted domains, lower case. */
  hostedDomains: ReadonlySet<string>;
  /** Recipients already accepted in this transaction. */
  accepted: number;
  maxRecipients: number;
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0
    ? ''
    : address
        .slice(at + 1)
        .toLowerCase()
        .replace(/\.$/, '');
}

/** Only hosted domains are accepted: anything else is a relay attempt (never an open relay). */
export function decideRecipient(recipient: string, facts: RecipientFacts): SmtpReply | null {
  if (!facts.hostedDomains.has(domainOf(recipient))) return replies.relayDenied(recipient);
  if (facts.accepted >= facts.maxRecipients) return replies.tooManyRecipients(facts.maxRecipients);
  return null;
}

/** MAIL FROM: a declared SIZE over the limit is refused before any data is sent (RFC 1870). */
export function decideSender(facts: { declaredSize: number | null; maxMessageBytes: number; spoolHasRoom: boolean }): SmtpReply | null {
  if (!facts.spoolHasRoom) return replies.spoolFull();
  if (facts.declaredSize !== null && facts.declaredSize > facts.maxMessageBytes) return replies.declaredTooBig(facts.maxMessageBytes);
  return null;
}
