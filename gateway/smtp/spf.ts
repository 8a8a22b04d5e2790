// SPF at MAIL FROM: mailauth's evaluator on the gateway's one resolver (resolver.forMailauth()),
// under a deadline of its own (mailauth keeps none). Every failure mode ends in an SPF result:
// a DNS problem or an exception is "temperror", never "pass" or "none".
import { spf } from 'mailauth/lib/spf/index.js';
import type { DnsResolver } from '../../core/dns.ts';
import type { SpfFacts, SpfResultName } from '../../rules/frontline.ts';

export interface SpfCheck extends SpfFacts {
  /** The Received-SPF header line (RFC 7208 §9.1), without CRLF, possibly folded. */
  header?: string;
}

export type SpfChecker = (o: { sender: string; ip: string; helo: string }) => Promise<SpfCheck>;

const RESULTS: ReadonlySet<string> = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror']);

export function createSpfChecker(o: { resolver: DnsResolver; hostname: string; timeoutMs: number }): SpfChecker {
  const resolver = o.resolver.forMailauth();
  return async ({ sender, ip, helo }) => {
    const domain = sender ? sender.slice(sender.lastIndexOf('@') + 1).toLowerCase() : helo.toLowerCase();
    try {
      const r = await spf({ sender, ip, helo, mta: o.hostname, resolver, maxElapsedTime: o.timeoutMs });
      const result = (RESULTS.has(r.status.result) ? r.status.result : 'temperror') as SpfResultName;
      return {
        result,
        domain: r.domain || domain,
        clientIp: ip,
        ...(r.explanation ? { explanation: r.explanation } : {}),
        ...(typeof r.status.comment === 'string' ? { comment: r.status.comment } : {}),
        header: r.header,
      };
    } catch (err) {
      return { result: 'temperror', domain, clientIp: ip, comment: err instanceof Error ? err.message : String(err) };
    }
  };
}
