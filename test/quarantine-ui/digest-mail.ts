// Reading a digest as a mail reader would: the MIME parsed by mailparser, then the text part's
// block for one message and the links it offers ("Release it: https://…/d/<token>").
import { simpleParser } from 'mailparser';

export interface ReadDigest {
  subject: string;
  contentType: string;
  text: string;
  html: string;
}

export async function readDigest(raw: string | Buffer): Promise<ReadDigest> {
  const p = await simpleParser(raw);
  const ct = p.headers.get('content-type') as { value?: string } | undefined;
  return { subject: p.subject ?? '', contentType: ct?.value ?? '', text: p.text ?? '', html: typeof p.html === 'string' ? p.html : '' };
}

/** The text part's lines about the message with this subject (up to the blank line after it). */
export function block(d: ReadDigest, subject: string): string {
  const at = d.text.indexOf(`Subject: ${subject}`);
  if (at < 0) throw new Error(`no message "${subject}" in the digest:\n${d.text}`);
  return d.text.slice(at).split('\n\n')[0]!;
}

/** The URL of the link with this label in a block of text, or undefined. */
export function linkIn(text: string, label: string): string | undefined {
  const line = text.split('\n').find((l) => l.trim().startsWith(`${label}: `));
  const m = line && /https?:\/\/[^/\s]+\/d\/\S+/.exec(line);
  return m ? m[0] : undefined;
}

/** The path ("/d/<token>") of the link with this label. */
export function pathIn(text: string, label: string): string | undefined {
  const u = linkIn(text, label);
  return u === undefined ? undefined : new URL(u).pathname;
}

/** The digests in a list of delivered messages (the demo mailbox's files), parsed. */
export async function digestsIn(raws: Buffer[]): Promise<ReadDigest[]> {
  const all = await Promise.all(raws.map((r) => readDigest(r)));
  return all.filter((d) => /^Quarantine (digest|notice):/.test(d.subject));
}
