// DNSBL / DNSWL client (RFC 5782) on the gateway's one resolver. Not the `dnsbl` npm package: it
// reports Spamhaus's "refused" answers as listed, turns every DNS error into "not listed" and
// cancels all lists when one times out (docs/dependencies.md §5).
//
// Contract: one result per configured list, in config order, each exactly one of
//   listed      an answer in 127.0.0.0/8 that the list's `codes` (if any) recognise;
//   not-listed  NXDOMAIN/NODATA, or only answers the `codes` map does not name;
//   refused     the list refused to answer us (127.255.255.x, or the list's refusedCodes) — an
//               operator problem (e.g. querying Spamhaus through a public resolver), never a listing;
//   error       we do not know: DNS temperror, or an answer outside 127.0.0.0/8 (a broken list, a
//               wildcarding or hijacked resolver) — never read as "not listed".
// Lists are queried in parallel; each lookup has its own deadline in the resolver, so a slow list
// only makes its own result an error. What to do with any of this is decided in rules/connection.ts.
import { domainToASCII } from 'node:url';
import type { DnsResolver } from '../core/dns.ts';
import { parseIp, reversedLabels } from '../core/ip.ts';

export interface DnsblList {
  /** e.g. "zen.spamhaus.org", "dbl.spamhaus.org", "list.dnswl.org". */
  zone: string;
  /** 'ip': reversed address labels (IPv4 octets, IPv6 nibbles); 'domain': "<domain>.<zone>" (DBL/URIBL). */
  kind: 'ip' | 'domain';
  /** 'block' lists name bad senders; 'allow' lists (DNSWL) name good ones. */
  type: 'block' | 'allow';
  /** Answer → meaning, e.g. { '127.0.0.2': 'SBL' }. When given, only these answers count as a listing. */
  codes?: Record<string, string>;
  /** Answers that mean "query refused" for this list besides 127.255.255.0/24 (URIBL: 127.0.0.1). */
  refusedCodes?: string[];
  /** Score added per hit when action is 'score'. Default 1. */
  weight?: number;
  /** What a hit on a block list does: refuse the mail, or add `weight` to the score. Default 'reject'. */
  action?: 'reject' | 'score';
  /** What a lookup error does (see rules/connection.ts for the default and why). */
  onError?: 'ignore' | 'tempfail';
  /** Fetch the list's TXT reason when listed (only then). Default true. */
  txt?: boolean;
}

export type DnsblOutcome =
  | { status: 'listed'; codes: string[]; meanings: string[]; reason?: string }
  | { status: 'not-listed'; ignoredCodes?: string[] }
  | { status: 'refused'; codes: string[] }
  | { status: 'error'; error: string };

/** One list's verdict on one subject; `query` is the DNS name asked, for logs. */
export type DnsblResult = DnsblOutcome & { list: DnsblList; query: string };

export interface DnsblChecker {
  /** Every 'ip' list, in config order. A mapped ::ffff:a.b.c.d is checked as IPv4. */
  checkIp(ip: string): Promise<DnsblResult[]>;
  /** Every 'domain' list, in config order (HELO names, sender domains, later URL hosts). */
  checkDomain(domain: string): Promise<DnsblResult[]>;
}

const REASON_MAX = 300;

/** The name to ask, or undefined when the subject is not an address / a domain name. */
export function dnsblQueryName(subject: string, list: Pick<DnsblList, 'zone' | 'kind'>): string | undefined {
  const zone = list.zone.toLowerCase().replace(/^\.|\.$/g, '');
  if (list.kind === 'ip') {
    const labels = reversedLabels(subject);
    return labels === undefined ? undefined : `${labels}.${zone}`;
  }
  const domain = normaliseDomain(subject);
  return domain === undefined ? undefined : `${domain}.${zone}`;
}

/** Lower-case A-label form of a host name, or undefined for IP addresses and malformed names. */
function normaliseDomain(subject: string): string | undefined {
  const trimmed = subject.trim().replace(/\.$/, '');
  if (trimmed === '' || parseIp(trimmed.replace(/^\[(ipv6:)?|\]$/gi, '')) !== undefined) return undefined;
  const ascii = domainToASCII(trimmed).toLowerCase();
  const label = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
  if (ascii === '' || ascii.length > 253 || !ascii.split('.').every((l) => label.test(l))) return undefined;
  return ascii;
}

const isLoopbackV4 = (a: string): boolean => {
  const p = parseIp(a);
  return p?.version === 4 && p.bytes[0] === 127 && !a.includes(':');
};

/** Pure reading of the A answers of one list lookup (RFC 5782 §2.1, §5). */
export function classifyAnswers(answers: string[], list: DnsblList): DnsblOutcome {
  const foreign = answers.filter((a) => !isLoopbackV4(a));
  if (foreign.length > 0) {
    return { status: 'error', error: `answer ${foreign.join(', ')} outside 127.0.0.0/8: broken list or hijacked DNS` };
  }
  const refused = answers.filter((a) => a.startsWith('127.255.255.') || (list.refusedCodes ?? []).includes(a));
  if (refused.length > 0) return { status: 'refused', codes: refused };
  const known = list.codes ? answers.filter((a) => list.codes?.[a] !== undefined) : answers;
  if (known.length === 0) return { status: 'not-listed', ignoredCodes: answers };
  return { status: 'listed', codes: known, meanings: known.map((a) => list.codes?.[a] ?? 'listed') };
}

/** TXT records are the list's own words; keep them to one printable line of bounded size. */
function cleanReason(records: string[]): string | undefined {
  const text = records
    .join(' / ')
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .trim();
  if (text === '') return undefined;
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text;
}

async function checkOne(resolver: DnsResolver, list: DnsblList, subject: string): Promise<DnsblResult> {
  const query = dnsblQueryName(subject, list);
  if (query === undefined) {
    return { status: 'error', error: `not a valid ${list.kind === 'ip' ? 'IP address' : 'domain name'}: ${subject}`, list, query: '' };
  }
  try {
    const answer = await resolver.a(query);
    if (!answer.ok) {
      if (answer.kind !== 'temperror') return { status: 'not-listed', list, query };
      return { status: 'error', error: `${answer.code}: ${answer.error}`, list, query };
    }
    const outcome = classifyAnswers(answer.records, list);
    if (outcome.status !== 'listed' || list.txt === false) return { ...outcome, list, query };
    const txt = await resolver.txt(query);
    const reason = txt.ok ? cleanReason(txt.records) : undefined;
    return { ...outcome, ...(reason === undefined ? {} : { reason }), list, query };
  } catch (err) {
    // The resolver never rejects by contract; if it does anyway, that is an error, not a pass.
    return { status: 'error', error: err instanceof Error ? err.message : String(err), list, query };
  }
}

function validateList(list: DnsblList): void {
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)+\.?$/i.test(list.zone)) throw new Error(`DNSBL zone is not a domain name: "${list.zone}"`);
  if (list.weight !== undefined && !Number.isFinite(list.weight)) throw new Error(`DNSBL ${list.zone}: weight must be a number`);
  for (const code of [...Object.keys(list.codes ?? {}), ...(list.refusedCodes ?? [])]) {
    if (!isLoopbackV4(code)) throw new Error(`DNSBL ${list.zone}: code ${code} is not in 127.0.0.0/8`);
  }
}

export function createDnsblChecker(o: { resolver: DnsResolver; lists: DnsblList[] }): DnsblChecker {
  o.lists.forEach(validateList);
  const run = (kind: DnsblList['kind'], subject: string) => Promise.all(o.lists.filter((l) => l.kind === kind).map((l) => checkOne(o.resolver, l, subject)));
  return {
    checkIp: (ip) => run('ip', ip),
    checkDomain: (domain) => run('domain', domain),
  };
}
