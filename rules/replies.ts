// The one vocabulary for SMTP outcomes. Every refusal tells the sender why: a reply code, an
// RFC 3463 enhanced status code and a human text. Only the SMTP adapter turns these into wire
// replies; everything else returns or throws them.

export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status code, e.g. "5.7.1". */
  enhanced: string;
  text: string;
}

export const isTemporary = (reply: SmtpReply): boolean => reply.code >= 400 && reply.code < 500;
export const isPermanent = (reply: SmtpReply): boolean => reply.code >= 500;

/** One line as it goes on the wire after the code: "5.7.1 Relay access denied". */
export const formatReply = (reply: SmtpReply): string => `${reply.enhanced} ${reply.text}`;

/** An error that carries the reply the client should get. */
export class SmtpRefusal extends Error {
  readonly reply: SmtpReply;
  constructor(reply: SmtpReply) {
    super(formatReply(reply));
    this.name = 'SmtpRefusal';
    this.reply = reply;
  }
}

/**
 * Text that came from outside (a HELO name, an address, a DNSBL's TXT record) goes into a reply
 * only as one printable line of bounded length: a CR/LF in it would let the peer or a list
 * operator inject reply lines.
 */
const oneLine = (text: string, max = 200): string => {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

export const replies = {
  queued: (id: string): SmtpReply => ({ code: 250, enhanced: '2.0.0', text: `Ok: queued as ${id}` }),
  relayDenied: (recipient: string): SmtpReply => ({
    code: 554,
    enhanced: '5.7.1',
    text: `<${recipient}>: Relay access denied: this server does not accept mail for that domain`,
  }),
  tooManyRecipients: (max: number): SmtpReply => ({
    code: 452,
    enhanced: '4.5.3',
    text: `Too many recipients: at most ${max} per message, send the rest in another transaction`,
  }),
  messageTooBig: (maxBytes: number): SmtpReply => ({
    code: 552,
    enhanced: '5.3.4',
    text: `Message size exceeds fixed limit of ${maxBytes} bytes`,
  }),
  declaredTooBig: (maxBytes: number): SmtpReply => ({
    code: 552,
    enhanced: '5.3.4',
    text: `Declared message size exceeds fixed limit of ${maxBytes} bytes`,
  }),
  spoolFull: (): SmtpReply => ({
    code: 452,
    enhanced: '4.3.1',
    text: 'Insufficient system storage, please try again later',
  }),
  spoolWriteFailed: (): SmtpReply => ({
    code: 451,
    enhanced: '4.3.0',
    text: 'Local error writing the message, please try again later',
  }),
  queueUnavailable: (): SmtpReply => ({
    code: 451,
    enhanced: '4.3.0',
    text: 'Queue temporarily unavailable, please try again later',
  }),
  scannerTempfail: (): SmtpReply => ({
    code: 451,
    enhanced: '4.7.1',
    text: 'Content scanner temporarily unavailable, please try again later',
  }),
  shuttingDown: (): SmtpReply => ({ code: 421, enhanced: '4.3.2', text: 'Service shutting down, please try again later' }),
  /** A session deadline passed (rules/deadlines.ts); Postfix's words, which MTAs and their admins know. */
  timeoutExceeded: (hostname: string): SmtpReply => ({ code: 421, enhanced: '4.4.2', text: `${hostname} Error: timeout exceeded` }),
  nullSenderTooManyRecipients: (): SmtpReply => ({
    code: 550,
    enhanced: '5.5.3',
    text: 'Bounces (null sender) must have exactly one recipient',
  }),
  // --- connection checks (rules/connection.ts, rules/address.ts) ---
  /** RFC 5321 §4.1.1.1: EHLO takes a host name or an address literal; anything else is a syntax error. */
  heloSyntax: (helo: string, why: string): SmtpReply => ({
    code: 501,
    enhanced: '5.5.2',
    text: `Bad HELO: ${oneLine(helo)}: ${why}`,
  }),
  heloNotFqdn: (helo: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Bad HELO: ${oneLine(helo)} is not a fully-qualified domain name`,
  }),
  heloReserved: (helo: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Bad HELO: ${oneLine(helo)} is a reserved name, not a public host name`,
  }),
  heloLiteralMismatch: (helo: string, clientIp: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Bad HELO: address literal ${oneLine(helo)} does not match your address ${oneLine(clientIp)}`,
  }),
  heloForgedSelf: (helo: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Bad HELO: ${oneLine(helo)} is our own name or address, not yours`,
  }),
  heloUnknown: (name: string): SmtpReply => ({ code: 550, enhanced: '5.7.1', text: `Bad HELO: ${oneLine(name)} does not exist` }),
  heloNoAddress: (name: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Bad HELO: ${oneLine(name)} has no address record`,
  }),
  heloDnsTempfail: (name: string): SmtpReply => ({
    code: 450,
    enhanced: '4.7.1',
    text: `Bad HELO: cannot resolve ${oneLine(name)} now (temporary DNS failure), please try again later`,
  }),
  /** RFC 7372 §3.3: X.7.25 "Reverse DNS validation failed". */
  rdnsMissing: (ip: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.25',
    text: `Client host [${oneLine(ip)}] has no reverse DNS (PTR) record`,
  }),
  rdnsNotConfirmed: (ip: string, name: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.25',
    text: `Client host [${oneLine(ip)}]: reverse DNS name ${oneLine(name)} does not resolve back to this address`,
  }),
  rdnsTempfail: (ip: string): SmtpReply => ({
    code: 450,
    enhanced: '4.7.25',
    text: `Client host [${oneLine(ip)}]: cannot verify reverse DNS now (temporary DNS failure), please try again later`,
  }),
  /** `subject` is e.g. "client [192.0.2.1]" or "sender domain example.test". */
  dnsblBlocked: (subject: string, zone: string, reason?: string): SmtpReply => ({
    code: 554,
    enhanced: '5.7.1',
    text: `Service unavailable; ${oneLine(subject)} blocked using ${oneLine(zone)}${reason ? `; ${oneLine(reason, 300)}` : ''}`,
  }),
  dnsblTempfail: (subject: string, zone: string): SmtpReply => ({
    code: 451,
    enhanced: '4.7.1',
    text: `Service temporarily unavailable; ${oneLine(subject)} could not be checked against ${oneLine(zone)}, please try again later`,
  }),
  /** Address syntax smtp-server lets through but RFC 5321 §4.1.2 / §4.5.3.1 does not allow. */
  addressSyntax: (role: 'sender' | 'recipient', address: string, why: string): SmtpReply => ({
    code: 501,
    enhanced: role === 'sender' ? '5.1.7' : '5.1.3',
    text: `Bad ${role} address syntax: <${oneLine(address)}>: ${why}`,
  }),
  addressNotFqdn: (role: 'sender' | 'recipient', address: string): SmtpReply => ({
    code: 553,
    enhanced: role === 'sender' ? '5.1.7' : '5.1.3',
    text: `<${oneLine(address)}>: ${role === 'sender' ? 'Sender' : 'Recipient'} address rejected: need fully-qualified address`,
  }),
  /** RFC 5321 §4.1.1.11: an unrecognised MAIL/RCPT parameter is answered with 555. */
  unsupportedParameter: (name: string): SmtpReply => ({
    code: 555,
    enhanced: '5.5.4',
    text: `Unsupported parameter ${oneLine(name, 40)}`,
  }),
  // --- front line (rules/frontline.ts, gateway/smtp/) ---
  /** RFC 7372 §3.2: X.7.23 "SPF validation failed"; the domain's own explanation is appended. */
  spfFail: (result: string, domain: string, ip: string, explanation?: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.23',
    text: `SPF ${oneLine(result, 20)}: ${oneLine(domain)} does not designate ${oneLine(ip)} as permitted sender${explanation ? `; ${oneLine(explanation, 300)}` : ''}`,
  }),
  /** RFC 7372 §3.2: X.7.24 "SPF validation error" (temperror / permerror). */
  spfError: (domain: string, result: 'temperror' | 'permerror'): SmtpReply =>
    result === 'temperror'
      ? { code: 451, enhanced: '4.7.24', text: `SPF check of ${oneLine(domain)} could not be completed (temporary DNS error), please try again later` }
      : { code: 550, enhanced: '5.7.24', text: `SPF record of ${oneLine(domain)} is invalid (permerror)` },
  scoreTooHigh: (subject: string, reasons: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Too many signs of spam from ${oneLine(subject)}: ${oneLine(reasons, 300)}`,
  }),
  userUnknown: (recipient: string, detail?: string): SmtpReply => ({
    code: 550,
    enhanced: '5.1.1',
    text: `<${oneLine(recipient)}>: Recipient address rejected: User unknown${detail ? ` (${oneLine(detail, 200)})` : ''}`,
  }),
  recipientUnverified: (recipient: string, why: string): SmtpReply => ({
    code: 450,
    enhanced: '4.1.1',
    text: `<${oneLine(recipient)}>: Recipient address rejected: unverified address: ${oneLine(why, 200)}, please try again later`,
  }),
  /** Postfix's anvil wording; 421 closes the session. */
  tooManyConnections: (ip: string, max: number): SmtpReply => ({
    code: 421,
    enhanced: '4.7.0',
    text: `Error: too many connections from [${oneLine(ip)}] (at most ${max} at a time), please try again later`,
  }),
  connectionRate: (ip: string, max: number, windowSec: number): SmtpReply => ({
    code: 421,
    enhanced: '4.7.0',
    text: `Error: too many connections from [${oneLine(ip)}] (at most ${max} per ${windowSec} s), please try again later`,
  }),
  messageRate: (ip: string, max: number, windowSec: number): SmtpReply => ({
    code: 450,
    enhanced: '4.7.1',
    text: `Error: too much mail from [${oneLine(ip)}] (at most ${max} messages per ${windowSec} s), please try again later`,
  }),
  recipientRate: (ip: string, max: number, windowSec: number): SmtpReply => ({
    code: 450,
    enhanced: '4.7.1',
    text: `Error: too many recipients from [${oneLine(ip)}] (at most ${max} per ${windowSec} s), please try again later`,
  }),
  /** Postfix 3.9 smtpd_forbid_unauth_pipelining wording. */
  pipelining: (after: string): SmtpReply => ({
    code: 554,
    enhanced: '5.5.0',
    text: `Error: SMTP protocol synchronization: command sent before the reply to ${oneLine(after, 20)} (RFC 2920)`,
  }),
  /** Postfix smtpd_forbid_bare_newline wording: a bare CR or LF is how SMTP smuggling starts. */
  bareLineEnding: (what: 'LF' | 'CR', where: 'message' | 'command'): SmtpReply => ({
    code: 550,
    enhanced: '5.5.2',
    text: `Error: bare <${what}> received in the ${where}; lines must end with <CR><LF> (RFC 5321 section 2.3.8)`,
  }),
  tlsRequired: (): SmtpReply => ({ code: 530, enhanced: '5.7.0', text: 'Must issue a STARTTLS command first' }),
  authRequired: (): SmtpReply => ({ code: 530, enhanced: '5.7.0', text: 'Authentication required' }),
  senderNotOwned: (sender: string, user: string): SmtpReply => ({
    code: 553,
    enhanced: '5.7.1',
    text: `<${oneLine(sender)}>: Sender address rejected: not owned by user ${oneLine(user, 64)}`,
  }),
  authFailed: (): SmtpReply => ({ code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' }),
  authTooManyFailures: (): SmtpReply => ({ code: 421, enhanced: '4.7.0', text: 'Too many failed authentication attempts, closing connection' }),
  /** Issue 18: a per-account or per-domain sending limit (RFC 3463 4.7.1: delivery not authorized, try later). */
  sendingLimit: (limit: string, resetsAt: Date): SmtpReply => ({
    code: 450,
    enhanced: '4.7.1',
    text: `Sending limit reached: ${oneLine(limit, 200)}; it resets at ${resetsAt.toISOString().replace(/\.\d+Z$/, 'Z')}`,
  }),
  accountSuspended: (account: string): SmtpReply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Account ${oneLine(account, 100)} is suspended for unusual sending; your mail administrator can lift it`,
  }),
  limitsUnavailable: (): SmtpReply => ({ code: 451, enhanced: '4.3.0', text: 'Sending limits cannot be checked right now, try again later' }),
  authLockedOut: (who: string, seconds: number): SmtpReply => ({
    code: 454,
    enhanced: '4.7.0',
    text: `Too many failed logins for ${oneLine(who, 100)}; try again in ${seconds} s`,
  }),
  fromHeaderNotOwned: (address: string, user: string): SmtpReply => ({
    code: 553,
    enhanced: '5.7.1',
    text: `From header address ${oneLine(address)} is not owned by user ${oneLine(user, 64)}`,
  }),
  clientNotRelay: (ip: string): SmtpReply => ({
    code: 554,
    enhanced: '5.7.1',
    text: `Relay access denied: client [${oneLine(ip, 64)}] may not relay through this port`,
  }),
} as const;
