// MTA-STS (RFC 8461) applied to the mail hosts of a domain reached by MX. Pure: the policy comes
// in as data (gateway/delivery/mta-sts.ts fetches and caches it).
//
// Why: without it, whoever can forge an MX answer or strip STARTTLS on the path reads the mail.
// A domain publishing `mode: enforce` asks senders to deliver only to the MX hosts its policy
// names, and only over TLS with a certificate that verifies for that name (§5.1); anything else
// is deferred, never sent in the clear. `testing` asks for reports only: delivery goes on as usual.

export interface StsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  /** MX patterns: a host name, or "*." and a name for exactly one left-most label (§4.1). */
  mx: string[];
}

/** RFC 8461 §4.1: does this MX host name match one of the policy's patterns? */
export function mxMatchesPolicy(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((raw) => {
    const p = raw.toLowerCase().replace(/\.$/, '');
    if (!p.startsWith('*.')) return p === name;
    const suffix = p.slice(1); // ".example.com"
    return name.endsWith(suffix) && name.length > suffix.length && !name.slice(0, -suffix.length).includes('.');
  });
}

export type StsDecision<H> =
  { ok: true; hops: H[]; /** Hosts a testing policy would refuse (for the log). */ wouldRefuse: string[] } | { ok: false; temporary: true; reason: string };

/**
 * The MX hops to try under a domain's policy. enforce: only matching hosts, each with TLS
 * `verified` (a verified certificate for the MX name, never plaintext); none left → deferred with
 * 4.7.5 (RFC 3463: cryptographic failure). testing / none: the hops unchanged.
 */
export function applyStsPolicy<H extends { host: string; tls: string }>(domain: string, policy: StsPolicy | undefined, hops: H[]): StsDecision<H> {
  if (!policy || policy.mode === 'none') return { ok: true, hops, wouldRefuse: [] };
  const matching = hops.filter((h) => mxMatchesPolicy(h.host, policy.mx));
  if (policy.mode === 'testing') return { ok: true, hops, wouldRefuse: hops.filter((h) => !matching.includes(h)).map((h) => h.host) };
  if (matching.length === 0) {
    const names = hops.map((h) => h.host).join(', ');
    return { ok: false, temporary: true, reason: `4.7.5 MTA-STS policy of ${domain} (enforce) names none of its MX hosts (${names}); not delivered` };
  }
  return { ok: true, hops: matching.map((h) => ({ ...h, tls: 'verified' })), wouldRefuse: [] };
}
