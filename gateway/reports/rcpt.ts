// Who may send to a report address, decided at RCPT from what is known there (issue 8). Pure.
//
// Trusted: an authenticated submission user, a client in checks.trusted.networks, or a sender in
// the domain (or a subdomain) whose SPF passes. A sender in the domain without an SPF pass may
// still be one of ours if its DKIM signature passes: that is only known after DATA, so the report
// is accepted "pending DKIM" and the worker learns from it only if an aligned signature passes.
// Everybody else is refused with 550 5.7.1: nothing from an outsider is ever learned.
import type { Config } from '../config/schema.ts';
import type { SpfResultName } from '../../rules/frontline.ts';
import type { SmtpReply } from '../../rules/replies.ts';

export type ReportKind = 'spam' | 'ham';
export type ReportTrust = 'authenticated' | 'network' | 'spf' | 'dkim-pending';

export interface ReportTarget {
  kind: ReportKind;
  /** The hosted domain the address belongs to. */
  domain: string;
  address: string;
}

/** What the worker needs to know about a report (kept in the spooled envelope). */
export interface EnvelopeReport extends ReportTarget {
  trust: ReportTrust;
  /** Why it is trusted, for the message log ("network 127.0.0.0/8", "user alice"). */
  by: string;
}

/** The report address `recipient` is, if it is one. */
export function reportTarget(config: Config, recipient: string): ReportTarget | undefined {
  const at = recipient.lastIndexOf('@');
  if (at < 1) return undefined;
  const local = recipient.slice(0, at).toLowerCase();
  const domain = recipient.slice(at + 1).toLowerCase();
  const r = config.domains[domain]?.reports;
  if (!r?.enabled) return undefined;
  if (r.addresses.spam.includes(local)) return { kind: 'spam', domain, address: `${local}@${domain}` };
  if (r.addresses.ham.includes(local)) return { kind: 'ham', domain, address: `${local}@${domain}` };
  return undefined;
}

/** Whether `address` is in `domain` or one of its subdomains (relaxed alignment). */
export function inDomain(address: string, domain: string): boolean {
  const d = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return address.includes('@') && (d === domain || d.endsWith(`.${domain}`));
}

export interface ReporterFacts {
  sender: string;
  /** The authenticated submission user, if any. */
  user?: string;
  /** The trusted network the client is in, if any ("network 10.0.0.0/8"). */
  trustedNetwork?: string;
  spf?: SpfResultName;
}

export type ReporterDecision = { ok: true; trust: ReportTrust; by: string } | { ok: false; reply: SmtpReply; reason: string };

export function decideReporter(config: Config, target: ReportTarget, f: ReporterFacts): ReporterDecision {
  const trust = config.domains[target.domain]!.reports.trust;
  if (trust.authenticated && f.user) return { ok: true, trust: 'authenticated', by: `authenticated user ${f.user}` };
  if (trust.trustedNetworks && f.trustedNetwork) return { ok: true, trust: 'network', by: f.trustedNetwork };
  const ours = f.sender !== '' && inDomain(f.sender, target.domain);
  if (trust.alignedSenders && ours) {
    if (f.spf === 'pass') return { ok: true, trust: 'spf', by: `SPF pass for ${f.sender}` };
    return { ok: true, trust: 'dkim-pending', by: `sender ${f.sender} (SPF ${f.spf ?? 'not checked'}; needs a passing DKIM signature of ${target.domain})` };
  }
  const reason =
    f.sender === ''
      ? 'the null sender cannot report'
      : ours
        ? 'reports from senders of this domain are not trusted by config'
        : `${f.sender} is not a user of ${target.domain}`;
  return {
    ok: false,
    reason,
    reply: {
      code: 550,
      enhanced: '5.7.1',
      text: `<${target.address}>: Recipient address rejected: only users of ${target.domain} may report ${target.kind === 'spam' ? 'spam' : 'false positives'} here (send from your ${target.domain} address through your own mail server or authenticated submission)`,
    },
  };
}

/** A report address must be the only recipient of its transaction: it is never delivered, the others are. */
export function separateTransaction(): SmtpReply {
  return { code: 452, enhanced: '4.5.3', text: 'Report addresses take a message of their own: send the other recipients in another transaction' };
}
