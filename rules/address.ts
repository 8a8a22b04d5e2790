// MAIL FROM / RCPT TO strictness beyond what smtp-server already enforces. smtp-server 3.21 refuses
// (501 5.1.7 / 5.1.3) a missing <…> ("MAIL FROM: user@x"), more than one "@", dots at the edges of
// the local part or doubled, bad domain characters, invalid address literals, paths over 256
// octets, control characters and duplicate or value-less parameters. It lets through what is
// checked here: local parts over 64 octets and outside RFC 5321 Dot-string/Quoted-string syntax,
// labels over 63 octets, numeric top-level domains, single-label domains ("user@x"), and ESMTP
// parameters nobody advertised (RFC 5321 §4.1.1.11 → 555). Pure functions; the adapter calls them
// from onMailFrom/onRcptTo with the address smtp-server parsed.
import { domainToASCII } from 'node:url';
import { replies } from './replies.ts';
import type { Decision } from './connection.ts';

export interface AddressPolicy {
  /** Refuse "user@localhost"-style single-label domains (553). Default true. */
  requireFqdn: boolean;
}
export const DEFAULT_ADDRESS_POLICY: AddressPolicy = { requireFqdn: true };

// RFC 5322 atext; any non-ASCII character is allowed as well (RFC 6531 SMTPUTF8).
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;
// RFC 5321 Quoted-string: qtextSMTP or a backslash-quoted printable character.
const QUOTED = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const octets = (s: string): number => new TextEncoder().encode(s).length;

function localPartProblem(local: string): string | undefined {
  if (octets(local) > 64) return 'local part longer than 64 octets (RFC 5321 §4.5.3.1.1)';
  if (local.startsWith('"') ? !QUOTED.test(local) : !local.split('.').every((atom) => ATOM.test(atom))) {
    return 'local part is not a valid dot-atom or quoted string (RFC 5321 §4.1.2)';
  }
  return undefined;
}

function domainProblem(domain: string): string | undefined {
  if (domain.startsWith('[')) return undefined; // address literals: smtp-server validated them
  // before domainToASCII, which reads a numeric last label as an IPv4 address and gives up
  if (/(^|\.)\d+$/.test(domain)) return 'top-level domain is numeric';
  const ascii = domainToASCII(domain);
  if (ascii === '') return 'domain is not a valid host name';
  if (ascii.length > 255) return 'domain longer than 255 octets (RFC 5321 §4.5.3.1.2)';
  const labels = ascii.split('.');
  if (!labels.every((l) => LABEL.test(l))) return 'domain has an empty, overlong or malformed label';
  return undefined;
}

/**
 * `address` as smtp-server hands it over (without <>, IDN domains possibly in Unicode). The null
 * sender "" and the domainless recipient "postmaster" (RFC 5321 §4.1.1.3) are always accepted.
 */
export function checkAddress(role: 'sender' | 'recipient', address: string, policy: AddressPolicy = DEFAULT_ADDRESS_POLICY): Decision {
  if ((role === 'sender' && address === '') || (role === 'recipient' && address.toLowerCase() === 'postmaster')) {
    return { action: 'accept' };
  }
  const at = address.lastIndexOf('@');
  const local = address.slice(0, Math.max(at, 0));
  const domain = address.slice(at + 1);
  const check = `address.${role}`;
  const problem = at <= 0 ? 'missing local part or domain' : (localPartProblem(local) ?? domainProblem(domain));
  if (problem !== undefined) {
    return { action: 'reject', reply: replies.addressSyntax(role, address, problem), reason: `<${address}>: ${problem}`, check };
  }
  if (policy.requireFqdn && !domain.startsWith('[') && !domain.includes('.')) {
    return { action: 'reject', reply: replies.addressNotFqdn(role, address), reason: `<${address}>: single-label domain`, check };
  }
  return { action: 'accept' };
}

/** Parameters this gateway advertises and handles; smtp-server parses these itself. */
export const KNOWN_MAIL_PARAMETERS = ['SIZE', 'BODY', 'SMTPUTF8', 'REQUIRETLS', 'RET', 'ENVID', 'AUTH'];
export const KNOWN_RCPT_PARAMETERS = ['NOTIFY', 'ORCPT'];

/** RFC 5321 §4.1.1.11: a MAIL/RCPT parameter we do not implement is refused with 555 5.5.4. */
export function checkParameters(args: Record<string, unknown> | false | undefined, known: string[]): Decision {
  const unknown = Object.keys(args || {}).find((k) => !known.includes(k.toUpperCase()));
  if (unknown === undefined) return { action: 'accept' };
  return {
    action: 'reject',
    reply: replies.unsupportedParameter(unknown),
    reason: `unsupported ESMTP parameter ${unknown}`,
    check: 'address.parameter',
  };
}
