// NUL bytes in a message. SMTP DATA without BINARYMIME (RFC 3030, which we do not offer) carries
// 7bit or 8bit data, and neither may contain NUL (RFC 2045 §2.7 and §2.8, RFC 6152 §2). C-string
// based programs downstream (mail stores, filters, clients) cut a line or a header at a NUL, so a
// scanner and a mail client would not see the same message. Postfix passes NUL unless told
// otherwise (message_reject_characters / message_strip_characters, whose manual example is "\0");
// we refuse by default, and can strip instead (the message then differs from what was signed).
import { ACCEPT, type Decision } from './connection.ts';

export type NulPolicy = 'reject' | 'strip' | 'accept';

export function decideNulBytes(count: number, policy: NulPolicy): Decision {
  if (count === 0) return ACCEPT;
  const reason = `message has ${count} NUL byte${count === 1 ? '' : 's'}`;
  if (policy === 'reject') {
    return {
      action: 'reject',
      reply: { code: 550, enhanced: '5.6.0', text: 'Error: message contains NUL bytes, which SMTP does not carry (RFC 2045 section 2.8)' },
      reason,
      check: 'protocol.nul-bytes',
    };
  }
  return { action: 'accept', notes: [`${reason}: ${policy === 'strip' ? 'removed' : 'accepted as they are'}`] };
}
