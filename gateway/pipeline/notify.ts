// Messages the scan worker sends of its own accord: a notice to a recipient, a report to an
// administrator, a copy forwarded to an address (actions notifyRecipient, notifyAdmin, forwardTo).
// Each is a message of its own — committed to the spool and delivered by the delivery worker like
// any other, so it is as durable as the mail it is about — with an id derived from the message's
// ("<id>-N1", "<id>-A1", "<id>-F1"), so that a scan job run twice after a crash sends it once.
// The null sender is used (RFC 5321 §4.5.5, RFC 3834): a notice never bounces, never loops.
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Config } from '../config/schema.ts';
import type { Envelope } from '../spool/spool.ts';
import type { VerdictClass } from '../../rules/policy.ts';
import { OWN_HEADER_PREFIXES, stampMessage } from './stamp.ts';
import { receivedHeader } from './trace.ts';
import { commitGenerated, type NotifyDeps } from '../delivery/generated.ts';

export { commitGenerated, type NotifyDeps };

export interface NoticeFacts {
  /** The message the notice is about. */
  about: Envelope;
  subject: string | null;
  class: VerdictClass;
  /** What happened: quarantined, refused, delivered with attachments removed, delivered tagged. */
  outcome: string;
  reasons: string[];
  /** The recipients the notice is about (for the admin report; a recipient notice names only them). */
  recipients: string[];
}

/** Bidi and control characters in untrusted text would reorder or hide what the notice says. */
const visible = (s: string) =>
  s.replace(/[\u0000-\u001f\u007f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export function composeNotice(config: Config, o: { id: string; to: string; subject: string; text: string }): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: 'mailmoat', address: `postmaster@${config.hostname}` },
    to: o.to,
    subject: o.subject,
    text: o.text,
    messageId: `<${o.id}@${config.hostname}>`,
    date: new Date(),
    // RFC 3834: an automatic message; well-behaved autoresponders do not answer it.
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Mailmoat-ID': o.id },
  });
  return mail.compile().build();
}

/**
 * A notice from the gateway to an administrator, committed like any generated message. The SMTP
 * front's NoticeSender (gateway/smtp/ports.ts), wired in gateway/roles.ts.
 */
export async function sendNotice(deps: NotifyDeps, id: string, n: { to: string; subject: string; text: string; reason: string; about: string }): Promise<void> {
  const body = await composeNotice(deps.config, { id, to: n.to, subject: n.subject, text: n.text });
  await commitGenerated(deps, {
    id,
    rcptTo: [n.to],
    verdict: 'notice',
    reason: n.reason,
    subject: n.subject,
    about: n.about,
    size: body.length,
    produce: async (out) => void out.write(body),
  });
}

function describe(f: NoticeFacts, admin: boolean, hostname: string): string {
  const lines = [
    `This is the mail gateway at ${hostname}.`,
    '',
    `A message ${admin ? `to ${f.recipients.join(', ')}` : 'to you'} was ${f.outcome}.`,
    '',
    `  From:     ${visible(f.about.mailFrom || '<>')}`,
    `  Subject:  ${visible(f.subject ?? '(none)')}`,
    `  Received: ${new Date(f.about.receivedAt).toUTCString()}`,
    `  Verdict:  ${f.class}`,
    ...f.reasons.slice(0, 10).map((r, i) => `  ${i === 0 ? 'Reason:  ' : '         '} ${visible(r)}`),
    `  Message id: ${f.about.id}`,
  ];
  if (admin) lines.push(`  Client:   ${f.about.clientIp} (HELO ${visible(f.about.helo || 'none')})`);
  lines.push('', f.outcome.startsWith('quarantined') ? 'It can be released from the quarantine if it is wanted.' : 'No action is needed.');
  return lines.join('\n');
}

/** Notice to each recipient, report to each admin address, copy to each forward address; returns the ids sent. */
export async function sendNotices(deps: NotifyDeps, f: NoticeFacts, to: { recipients: string[]; admins: string[]; forwards: string[] }): Promise<string[]> {
  const { config, spool } = deps;
  const sent: string[] = [];
  const subjectLine = `[mailmoat] ${f.outcome}: ${visible(f.subject ?? '(no subject)').slice(0, 120)}`;
  const each = async (prefix: string, list: string[], make: (id: string, addr: string) => Parameters<typeof commitGenerated>[1]) => {
    for (const [i, addr] of [...new Set(list)].entries()) {
      const id = `${f.about.id}-${prefix}${i + 1}`;
      if (await commitGenerated(deps, make(id, addr))) sent.push(id);
    }
  };
  const notice = (kind: string, admin: boolean) => (id: string, addr: string) => ({
    id,
    rcptTo: [addr],
    verdict: kind,
    reason: `${f.class} notice about ${f.about.id}`,
    subject: subjectLine,
    about: f.about.id,
    produce: async (out: Writable) => {
      out.write(await composeNotice(config, { id, to: addr, subject: subjectLine, text: describe(f, admin, config.hostname) }));
    },
  });
  await each('N', to.recipients, notice('notice', false));
  await each('A', to.admins, notice('admin-notice', true));
  await each('F', to.forwards, (id, addr) => ({
    id,
    rcptTo: [addr],
    verdict: 'forwarded-copy',
    reason: `copy of ${f.about.id} (${f.class})`,
    subject: f.subject ?? '',
    about: f.about.id,
    produce: async (out: Writable) => {
      await stampMessage(createReadStream(spool.messagePath(f.about.id)), out, {
        prepend: [
          ['Received', receivedHeader(f.about, config.hostname)],
          ['X-Mailmoat-ID', id],
          ['X-Mailmoat-Forwarded', `copy of ${f.about.id}: ${f.class}; ${visible(f.reasons[0] ?? '')}`],
        ],
        removePrefixes: OWN_HEADER_PREFIXES,
        subjectTag: null,
      });
    },
  }));
  return sent;
}
