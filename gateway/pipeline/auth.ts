// Mail authentication with mailauth 7: SPF, DKIM, DMARC and ARC on the gateway's one resolver,
// our Authentication-Results header (RFC 8601) with our authserv-id, and, when a key is
// configured, an ARC seal over the delivered copy (RFC 8617: sealed after our changes, so the next
// hop can trust what we saw even though the tags and disarming broke the sender's DKIM).
//
// An exception from mailauth is an error result (the scan is retried), never a pass; DNS trouble
// inside a check is mailauth's own `temperror` result, reported as such. mailauth reads the whole
// message into memory (its gatherer stream): bounded by smtp.maxMessageBytes.
import { readFile } from 'node:fs/promises';
import { openSpoolFile } from '../spool/read.ts';
import { authenticate, sealMessage } from './mailauth-core.ts';
import type { AuthenticateResult } from 'mailauth';
import type { MailauthResolver } from '../../core/dns.ts';
import type { Envelope } from '../spool/spool.ts';
import type { AuthScan } from '../../scanners/types.ts';

export interface AuthOutcome {
  scan: AuthScan;
  /** Headers to put on delivered copies (Authentication-Results, and ARC when sealing), in order. */
  headers: [string, string][];
  /** For an ARC seal after our changes: the chain status and the A-R payload. */
  arc: { cv: string; authResults: string } | null;
}

const unfold = (v: string) => v.replace(/\r?\n[ \t]+/g, ' ').trim();

function headerPairs(block: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of block.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push([line.slice(0, colon), unfold(line.slice(colon + 1))]);
  }
  return out;
}

/** Reads mailauth's result into our plain report. Exported for tests. */
export function toAuthScan(res: AuthenticateResult, header: string): AuthScan & { status: 'checked' } {
  const spf = res.spf
    ? { result: res.spf.status.result, domain: res.spf.domain ?? '', ...(res.spf.status.comment ? { comment: res.spf.status.comment } : {}) }
    : { result: 'none', domain: '' };
  const dkim = (res.dkim.results ?? []).map((r) => ({
    result: r.status.result,
    domain: r.signingDomain ?? '',
    selector: r.selector ?? '',
    aligned: Boolean(r.status.aligned),
    ...(r.status.comment ? { comment: r.status.comment } : {}),
  }));
  const dmarc = res.dmarc
    ? { result: res.dmarc.status.result, domain: res.dmarc.domain ?? '', policy: res.dmarc.policy ?? 'none', from: res.dmarc.status.header?.from ?? '' }
    : null;
  const arc = res.arc && res.arc.i ? { result: res.arc.status.result, instance: Number(res.arc.i) } : null;
  return { status: 'checked', spf, dkim, dmarc, arc, header };
}

export async function authenticateMessage(
  /** The spool file, or the message already read (mailauth takes a Buffer whole, as it gathers a stream). */
  message: string | Buffer,
  envelope: Envelope,
  o: { resolver: MailauthResolver; authservId: string },
): Promise<AuthOutcome> {
  try {
    const res = await authenticate(typeof message === 'string' ? await openSpoolFile(message) : message, {
      ip: envelope.clientIp,
      helo: envelope.helo,
      sender: envelope.mailFrom,
      mta: o.authservId,
      resolver: o.resolver,
      // BIMI would fetch logos over HTTP from the worker: never on the mail path.
      disableBimi: true,
    });
    // Received-SPF is written once, at SMTP time, by the front line that decided SPF
    // (gateway/smtp/spf.ts); the worker's own SPF result goes into Authentication-Results only.
    const headers = headerPairs(res.headers).filter(([k]) => k.toLowerCase() !== 'received-spf');
    const ar = headers.find(([k]) => k.toLowerCase() === 'authentication-results')?.[1] ?? `${o.authservId}; none`;
    const arcStatus = res.arc ? res.arc.status.result : 'none';
    const arc = ['none', 'pass'].includes(arcStatus) ? { cv: arcStatus, authResults: ar } : null;
    return { scan: toAuthScan(res, ar), headers, arc };
  } catch (err) {
    return { scan: { status: 'error', reason: `authentication failed: ${(err as Error).message}` }, headers: [], arc: null };
  }
}

/**
 * True for an Authentication-Results line that carries our authserv-id: a sender (or a hop
 * before us) must not be able to hand the mailbox server a result in our name (RFC 8601 §5).
 */
export function isOurAuthResults(key: string, line: string, authservId: string): boolean {
  if (key.toLowerCase() !== 'authentication-results') return false;
  const value = unfold(line.slice(line.indexOf(':') + 1));
  // authserv-id [version] ";" … — compared without case, as host names are.
  const id = value.split(';')[0].trim().split(/\s+/)[0] ?? '';
  return id.toLowerCase() === authservId.toLowerCase();
}

export interface ArcSealKey {
  domain: string;
  selector: string;
  privateKey: string;
}

/** The ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results) for a finished copy, as raw header lines. */
export async function arcSealHeaders(copyFile: string, key: ArcSealKey, arc: { cv: string; authResults: string }): Promise<Buffer> {
  return sealMessage(await readFile(copyFile), {
    signingDomain: key.domain,
    selector: key.selector,
    privateKey: key.privateKey,
    cv: arc.cv,
    authResults: arc.authResults,
  });
}
