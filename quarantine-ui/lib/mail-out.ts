// Mail the console writes itself (quarantine digests and notices; reusable for any report mail):
// composed by nodemailer's MailComposer (MIME structure, encodings, header folding), then handed
// to the gateway's generated-message path (`submit`: spool + delivery queue, quarantine-ui/server.ts
// submitGenerated). That path never scans, so a digest is never quarantined; the null sender
// (RFC 5321 §4.5.5) and Auto-Submitted (RFC 3834) mean a failure or an autoresponder cannot
// start a loop.
import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Config } from '../../gateway/config/schema.ts';

/** Hands a generated message to the gateway for delivery; resolves to its message id. */
export type Submit = (envelope: { from: string; to: string[] }, raw: Buffer, subject: string) => Promise<string>;

export interface GeneratedMail {
  to: string;
  subject: string;
  /** The text/plain part (always sent: some readers show only that). */
  text: string;
  /** An HTML alternative, already escaped by its author. */
  html?: string;
}

/** The sender shown in the From header of console mail. */
export function consoleSender(config: Config): string {
  return config.console.digest.from ?? `quarantine@${config.hostname}`;
}

/** One message: text/plain, or multipart/alternative with the text part first (RFC 2046 §5.1.4: last is preferred). */
export function composeGenerated(config: Config, m: GeneratedMail, now = Date.now()): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: 'mailmoat quarantine', address: consoleSender(config) },
    to: m.to,
    subject: m.subject,
    text: m.text,
    ...(m.html !== undefined ? { html: m.html } : {}),
    date: new Date(now),
    messageId: `<console.${randomBytes(8).toString('hex')}@${config.hostname}>`,
    headers: { 'Auto-Submitted': 'auto-generated' },
  });
  return mail.compile().build();
}

/** Composes and submits one console mail from the null sender; resolves to the gateway's message id. */
export async function sendGenerated(deps: { config: Config; submit: Submit; now?: () => number }, m: GeneratedMail): Promise<string> {
  const raw = await composeGenerated(deps.config, m, deps.now?.() ?? Date.now());
  return deps.submit({ from: '', to: [m.to] }, raw, m.subject);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content and quoted attribute values. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
