// Whether a delivery status notification may go to a message's envelope sender. A DSN to a forged
// sender is backscatter: it goes to an innocent party, and a gateway that sends it gets
// blocklisted (Postfix and amavis sites learned this; RFC 3834 §2 asks responders not to answer
// mail whose sender they cannot trust). So no DSN for mail we classed as malware, spam or phishing,
// or whose sender failed SPF or DMARC, and at most so many per sender domain per hour.
// The failed recipients stay recorded as failed either way; only the notice is withheld.
import { domainOf } from './envelope.ts';

export interface DsnFacts {
  /** The envelope sender; "" is the null sender. */
  sender: string;
  /** The verdict class of the message, if it was scanned (null for messages we wrote). */
  verdictClass: string | null;
  /** SPF result of the envelope sender and DMARC result of the From domain, when checked. */
  spf?: string;
  dmarc?: string;
  /** DSNs sent to the sender's domain within the last hour, and the hourly limit (0: none). */
  sentLastHour: number;
  perHourLimit: number;
}

export type DsnDecision = { send: true } | { send: false; reason: string };

/** Classes whose sender is not to be trusted with a notice. */
const UNTRUSTED_CLASSES = new Set(['virus', 'spam', 'high-spam', 'phishing', 'spoofed', 'blocked']);

export function decideDsn(f: DsnFacts): DsnDecision {
  // RFC 5321 §4.5.5: never a notice to the null sender (it would loop).
  if (f.sender === '') return { send: false, reason: 'null sender' };
  if (f.verdictClass && UNTRUSTED_CLASSES.has(f.verdictClass)) return { send: false, reason: `message classed ${f.verdictClass} (backscatter)` };
  if (f.spf === 'fail') return { send: false, reason: 'sender failed SPF (backscatter)' };
  if (f.dmarc === 'fail') return { send: false, reason: 'sender failed DMARC (backscatter)' };
  if (f.perHourLimit > 0 && f.sentLastHour >= f.perHourLimit) {
    return { send: false, reason: `${f.perHourLimit} DSNs to ${domainOf(f.sender)} in the last hour (rate limit)` };
  }
  return { send: true };
}
