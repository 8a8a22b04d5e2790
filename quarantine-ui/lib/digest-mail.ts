// The text of a digest or notice: a text/plain part and an HTML part with the same content.
// Subjects, senders and reasons come from the held mail and are hostile: the text part shows them
// through displayText (encoded words decoded, control and bidi characters made visible) and the
// HTML part escapes them as well; no value from the message reaches a header or an attribute.
import type { MessageRecord } from '../../gateway/store/metadata.ts';
import { linksFor } from '../../rules/digest.ts';
import type { Config } from '../../gateway/config/schema.ts';
import type { DigestStore } from '../../gateway/store/digests.ts';
import { issueToken, loginLinkPossible } from './digest-links.ts';
import { escapeHtml, type GeneratedMail } from './mail-out.ts';
import { decide } from './rights.ts';
import { displayText, formatTime } from './text.ts';

interface Link {
  label: string;
  url: string;
}

interface Entry {
  m: MessageRecord;
  from: string;
  subject: string;
  reason: string;
  links: Link[];
  note: string | null;
}

interface TokenDeps {
  digests: DigestStore;
  secret: Buffer;
  config: Config;
  now(): number;
  publicUrl: string;
}

async function entryFor(deps: TokenDeps, recipient: string, m: MessageRecord): Promise<Entry> {
  const url = async (action: Parameters<typeof issueToken>[3]) => `${deps.publicUrl}d/${await issueToken(deps, m.id, recipient, action)}`;
  const choice = linksFor({ recipient, rcptTo: m.rcptTo, mailFrom: m.mailFrom, userMayRelease: decide(deps.config, m, 'user', 'release').allowed });
  const links: Link[] = [];
  if (choice.release === 'release') links.push({ label: 'Release it', url: await url('release') });
  if (choice.release === 'request') links.push({ label: 'Request release (an administrator decides)', url: await url('release') });
  if (choice.senderLists) {
    links.push({ label: 'Always allow this sender', url: await url('allow') });
    links.push({ label: 'Block this sender', url: await url('block') });
  }
  if (choice.notSpam) links.push({ label: choice.release === 'release' ? 'Not spam (learn and release)' : 'Not spam (learn)', url: await url('notspam') });
  return {
    m,
    from: displayText(m.mailFrom || '<>', 120),
    subject: displayText(m.subject ?? '(none)', 150),
    reason: displayText(m.reason ?? m.verdict ?? 'unknown', 300),
    links,
    note: choice.release === 'none' ? 'Also addressed to other people: ask your administrator to release it.' : null,
  };
}

/** The digest (daily) or notice (soon after the hold) for one recipient, its links issued. */
export async function composeDigest(deps: TokenDeps, kind: 'digest' | 'notice', recipient: string, rows: MessageRecord[]): Promise<GeneratedMail> {
  const entries: Entry[] = [];
  for (const m of rows) entries.push(await entryFor(deps, recipient, m));
  const login = loginLinkPossible(recipient) ? `${deps.publicUrl}d/${await issueToken(deps, '', recipient, 'login')}` : null;
  const host = deps.config.hostname;
  const ttl = deps.config.console.digest.linkTtlHours;
  const title = kind === 'digest' ? 'Quarantine digest' : 'Quarantine notice';
  const subject = `${title}: ${rows.length} message(s) held for ${recipient}`;
  const intro = `Messages for ${recipient} held in quarantine by ${host}:`;
  const outro = `Each link works once and expires after ${ttl} hours.`;
  const loginLabel = 'Open your quarantine (no password needed)';

  const text = [intro, ''];
  for (const e of entries) {
    text.push(`* ${formatTime(e.m.receivedAt)}  from ${e.from}`, `  Subject: ${e.subject}`, `  Held because: ${e.reason}`);
    if (e.note) text.push(`  (${e.note})`);
    for (const l of e.links) text.push(`  ${l.label}: ${l.url}`);
    text.push('');
  }
  text.push(outro, ...(login ? [`${loginLabel}: ${login}`] : []));

  const x = escapeHtml;
  const items = entries.map(
    (e) => `<li>
<p><strong>${x(e.subject)}</strong><br>from ${x(e.from)}, ${x(formatTime(e.m.receivedAt))}<br>Held because: ${x(e.reason)}</p>
${e.note ? `<p><em>${x(e.note)}</em></p>\n` : ''}<p>${e.links.map((l) => `<a href="${x(l.url)}">${x(l.label)}</a>`).join(' · ')}</p>
</li>`,
  );
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${x(title)}</title></head>
<body>
<h1>${x(title)}</h1>
<p>${x(intro)}</p>
<ul>
${items.join('\n')}
</ul>
<p>${x(outro)}</p>
${login ? `<p><a href="${x(login)}">${x(loginLabel)}</a></p>\n` : ''}</body></html>`;
  return { to: recipient, subject, text: text.join('\n'), html };
}
