// The Received trace header (RFC 5321 §4.4) for a message we accepted.
import type { Envelope } from '../spool/spool.ts';

export function receivedHeader(envelope: Envelope, ourHostname: string): string {
  const client = `${envelope.clientHostname ?? 'unknown'} [${envelope.clientIp}]`;
  const rcpt = envelope.rcptTo.length === 1 ? ` for <${envelope.rcptTo[0]}>` : '';
  // RFC 3848: "S" for TLS, "A" for SMTP AUTH (ESMTPA, ESMTPS, ESMTPSA).
  const protocol = `ESMTP${envelope.tls ? 'S' : ''}${envelope.submitted?.user ? 'A' : ''}`;
  return `from ${envelope.helo || 'unknown'} (${client}) by ${ourHostname} (mailmoat) with ${protocol} id ${envelope.id}${rcpt}; ${new Date(envelope.receivedAt).toUTCString().replace('GMT', '+0000')}`;
}
