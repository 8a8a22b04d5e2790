// `queue show` and `quarantine show` for a person: local time, sizes in kB/MB, the scan report as
// text, the event trail and each recipient's delivery. `--json` gives the raw record for scripts.
// Mail content (subject, addresses, replies, file names) is untrusted: control characters are
// shown escaped, so that a crafted subject cannot rewrite the administrator's terminal.
import type { DeliveryRecord, MessageEvent, MessageRecord } from '../store/metadata.ts';
import type { ScanReport } from '../../scanners/types.ts';

/** Local time with its offset, e.g. "2026-12-04 23:12:01 +01:00". */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${off < 0 ? '-' : '+'}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Untrusted text, one line, no terminal escapes. */
export function safe(text: string | null | undefined): string {
  return String(text ?? '').replace(/[\x00-\x1f\x7f\x9b]/g, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? ' ' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

type Entry = { status: string; reason?: string };

/** One line per scanner: its status and what it found. */
export function reportLines(report: ScanReport): string[] {
  const lines: string[] = [];
  const add = (name: string, text: string) => lines.push(`  ${name.padEnd(12)} ${text}`);
  const reasonOf = (e: Entry) => (e.reason ? `${e.status}: ${safe(e.reason)}` : e.status);
  const v = report.virus;
  add('virus', v.status === 'infected' ? `infected: ${v.viruses.map(safe).join(', ')}` : reasonOf(v));
  const s = report.spam;
  add('spam', s.status === 'scored' ? `score ${s.score} (threshold ${s.threshold})${s.rules.length ? `: ${s.rules.map(safe).join(', ')}` : ''}` : reasonOf(s));
  const a = report.attachments;
  if (a) {
    if (a.status !== 'checked') add('attachments', reasonOf(a));
    else {
      const structure = a.structure.status === 'ok' ? '' : `, ${a.structure.status}: ${safe(a.structure.reason)}`;
      add('attachments', `${a.parts} part(s), ${a.files.length} file(s)${structure}${a.findings.length ? '' : ', nothing found'}`);
      for (const f of a.files)
        lines.push(`    ${safe(f.filename ?? `(part ${f.part})`)}  ${safe(f.contentType)}  ${humanSize(f.size)}${f.detected ? `  (${safe(f.detected)})` : ''}`);
      for (const f of a.findings) lines.push(`    ! ${safe(f.archivePath?.join(' > ') ?? f.filename ?? `part ${f.part}`)}: ${f.class} (${safe(f.reason)})`);
      if (a.stripped?.length) lines.push(`    removed from the delivered copy: parts ${a.stripped.join(', ')}`);
    }
  }
  const h = report.html;
  if (h) {
    if (h.status !== 'checked') add('html', reasonOf(h));
    else {
      add(
        'html',
        `${h.parts} part(s)${h.dangerous ? ', dangerous' : ''}${h.changed ? ', disarmed' : ''}${h.findings.length + h.phishing.length ? '' : ', nothing found'}`,
      );
      for (const f of h.findings) lines.push(`    ! ${f.kind}: ${safe(f.detail)}`);
      for (const p of h.phishing) lines.push(`    ! phishing link: shows ${safe(p.shown)}, goes to ${safe(p.real)}`);
    }
  }
  const au = report.auth;
  if (au) {
    if (au.status !== 'checked') add('auth', reasonOf(au));
    else {
      const dkim = au.dkim.length ? au.dkim.map((d) => (d.domain ? `${d.result} (${safe(d.domain)})` : d.result)).join(', ') : 'none';
      add(
        'auth',
        `spf=${au.spf.result} dkim=${dkim} dmarc=${au.dmarc ? `${au.dmarc.result} (${safe(au.dmarc.domain)})` : 'none'}${au.arc ? ` arc=${au.arc.result}` : ''}`,
      );
    }
  }
  const u = report.urls;
  if (u) {
    if (u.status !== 'checked') add('urls', reasonOf(u));
    else {
      add('urls', `${u.hosts} host(s), score ${u.score}${u.hits.length ? '' : ', none listed'}${u.truncated ? ' (truncated)' : ''}`);
      for (const hit of u.hits) lines.push(`    ! ${safe(hit.host)} on ${safe(hit.list)} (${hit.score}): ${safe(hit.detail)}`);
    }
  }
  if (report.list) add('list', `${report.list.kind} (${report.list.scope}): ${safe(report.list.entry)}`);
  if (report.score) {
    const sc = report.score;
    add('score', `${sc.total} (spam ${sc.spam ?? '-'}, urls ${sc.urls}, auth ${sc.auth}; threshold ${sc.threshold}, high ${sc.highThreshold})`);
  }
  if (report.outcome) {
    add(
      'outcome',
      `${report.outcome.class}: ${safe(report.outcome.action)}${report.outcome.rules.length ? ` (rules: ${report.outcome.rules.map(safe).join(', ')})` : ''}`,
    );
    for (const r of report.outcome.reasons) lines.push(`    ${safe(r)}`);
  }
  return lines;
}

export interface ShowFacts {
  record: MessageRecord;
  events: MessageEvent[];
  deliveries: DeliveryRecord[];
  /** Queue entries add where the job is and when it is tried again. */
  queue?: { job: string; nextAttempt: string | null };
}

export function showMessage(f: ShowFacts): string {
  const r = f.record;
  const byRecipient = new Map(f.deliveries.map((d) => [d.recipient, d]));
  const out = [
    `Message ${r.id}`,
    `  Status:     ${r.status}${r.lastReply ? ` (${safe(r.lastReply)})` : ''}`,
    `  Received:   ${localTime(r.receivedAt)} from ${r.clientIp} (HELO ${safe(r.helo) || '-'})`,
    `  Sender:     <${safe(r.mailFrom)}>`,
    `  Recipients:`,
    ...r.rcptTo.map((to) => {
      const d = byRecipient.get(to);
      return `    ${safe(to)}${d ? `  ${d.outcome} at ${localTime(d.at)}: ${safe(d.reply)}` : ''}`;
    }),
    `  Subject:    ${safe(r.subject ?? '(none)')}`,
    `  Size:       ${humanSize(r.size)}`,
    `  Verdict:    ${r.verdict ?? '(not scanned yet)'}${r.reason ? `: ${safe(r.reason)}` : ''}`,
  ];
  if (f.queue) out.push(`  Queue:      ${f.queue.job}${f.queue.nextAttempt ? `, next attempt ${localTime(Date.parse(f.queue.nextAttempt))}` : ''}`);
  if (r.report) out.push('Scan report:', ...reportLines(r.report));
  out.push('Events:', ...f.events.map((e) => `  ${localTime(e.at)}  ${e.kind.padEnd(14)} ${safe(e.detail)}`));
  return out.join('\n');
}
