// Delivery status notifications (RFC 3464 multipart/report) to the envelope sender: "failed" when
// recipients bounced or the message expired, "delayed" once when it has waited long. Only the
// original headers are returned (RET=FULL asks for the whole message): a filtering gateway should
// not send possibly hostile content back out, and bounces to forged senders stay small.
import { randomBytes } from 'node:crypto';

export interface DsnRecipient {
  recipient: string;
  /** ORCPT as received, "rfc822;addr", if any. */
  originalRecipient?: string;
  /** Our record of the last reply, e.g. "10.0.0.5:25: 550 5.1.1 <x@y>: no such user". */
  reply: string;
}

export interface DsnFacts {
  kind: 'failed' | 'delayed';
  reportingMta: string;
  messageId: string;
  sender: string;
  arrivalDate: number;
  now: number;
  recipients: DsnRecipient[];
  /** Header block of the original message (without the blank line). */
  originalHeaders: Buffer;
  /** Whole original message, only when the sender asked for RET=FULL and it is small enough. */
  originalMessage?: Buffer;
  envid?: string;
  willRetryUntil?: number;
}

const rfc5322Date = (ms: number) => new Date(ms).toUTCString().replace('GMT', '+0000');

/** Status code from a reply: its enhanced code if it has one, else derived from the basic code. */
export function statusOf(reply: string, kind: DsnFacts['kind']): string {
  const enhanced = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1];
  if (enhanced) return enhanced;
  const basic = /\b([245])\d\d\b/.exec(reply)?.[1];
  if (basic) return `${basic}.0.0`;
  return kind === 'delayed' ? '4.0.0' : '5.0.0';
}

/** Which remote host gave the reply, if our record names it ("name[address]:port: …" gives the name, RFC 3464 §2.3.5). */
function remoteMta(reply: string): string | undefined {
  return /^([A-Za-z0-9.\-[\]:]+):\d+: /.exec(reply)?.[1]?.replace(/^([^[]+)\[.*\]$/, '$1');
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
}

export function buildDsn(f: DsnFacts): Buffer {
  const boundary = `dsn-${randomBytes(8).toString('hex')}`;
  const failed = f.kind === 'failed';
  const subject = failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)';
  const intro = failed
    ? 'Your message could not be delivered to the recipients below. This is a permanent error; the message will not be retried.'
    : `Your message has not yet been delivered to the recipients below. Delivery will be retried until ${rfc5322Date(f.willRetryUntil ?? f.now)}; you do not need to send it again.`;
  const human = [
    `This is the mail gateway at ${f.reportingMta}.`,
    '',
    intro,
    '',
    ...f.recipients.map((r) => `<${r.recipient}>: ${oneLine(r.reply)}`),
    '',
    `Message id at this gateway: ${f.messageId}`,
  ].join('\r\n');
  const perMessage = [
    `Reporting-MTA: dns; ${f.reportingMta}`,
    ...(f.envid ? [`Original-Envelope-Id: ${oneLine(f.envid)}`] : []),
    `X-Mailmoat-ID: ${f.messageId}`,
    `Arrival-Date: ${rfc5322Date(f.arrivalDate)}`,
  ];
  const perRecipient = f.recipients.map((r) => {
    const remote = remoteMta(r.reply);
    return [
      ...(r.originalRecipient ? [`Original-Recipient: ${oneLine(r.originalRecipient)}`] : []),
      `Final-Recipient: rfc822; ${r.recipient}`,
      `Action: ${f.kind}`,
      `Status: ${statusOf(r.reply, f.kind)}`,
      ...(remote ? [`Remote-MTA: dns; ${remote}`] : []),
      `Diagnostic-Code: smtp; ${oneLine(r.reply.replace(/^[^ ]+:\d+: /, ''))}`,
      `Last-Attempt-Date: ${rfc5322Date(f.now)}`,
      ...(f.kind === 'delayed' && f.willRetryUntil ? [`Will-Retry-Until: ${rfc5322Date(f.willRetryUntil)}`] : []),
    ].join('\r\n');
  });
  const returned = f.originalMessage
    ? ['Content-Type: message/rfc822', 'Content-Description: Undelivered Message', '', ''].join('\r\n')
    : ['Content-Type: text/rfc822-headers', 'Content-Description: Undelivered Message Headers', '', ''].join('\r\n');
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${f.reportingMta}>`,
    `To: <${f.sender}>`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(f.now)}`,
    `Message-ID: <${f.messageId}.${f.kind}.${f.now}@${f.reportingMta}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
  ].join('\r\n');
  return Buffer.concat([
    Buffer.from(head),
    Buffer.from(`\r\n--${boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Description: Notification\r\n\r\n${human}\r\n`),
    Buffer.from(`\r\n--${boundary}\r\nContent-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n`),
    Buffer.from(`${perMessage.join('\r\n')}\r\n\r\n${perRecipient.join('\r\n\r\n')}\r\n`),
    Buffer.from(`\r\n--${boundary}\r\n${returned}`),
    f.originalMessage ?? f.originalHeaders,
    Buffer.from(`\r\n\r\n--${boundary}--\r\n`),
  ]);
}
