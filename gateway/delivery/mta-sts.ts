// Fetches and caches a destination's MTA-STS policy (RFC 8461 §3): the `_mta-sts.<domain>` TXT
// record through the gateway's one resolver, then https://mta-sts.<domain>/.well-known/mta-sts.txt
// on the address our resolver gives, with the certificate verified for that name (no redirects,
// 64 KB at most). Parsing is mailauth's. The decision is rules/mta-sts.ts.
//
// Cache: a policy is kept for its max_age and re-fetched when the TXT id changes (§3.3). A fetch
// that fails while a cached policy is still valid keeps that policy (§5.1: an attacker blocking the
// policy host must not switch enforcement off); with none, the domain is treated as having no policy
// and the failure is remembered for `failureRetrySec`.
import https from 'node:https';
import { parsePolicy } from 'mailauth/lib/mta-sts.js';
import type { DnsResolver } from '../../core/dns.ts';
import type { StsPolicy } from '../../rules/mta-sts.ts';

export interface MtaStsOptions {
  enabled: boolean;
  timeoutMs: number;
  /** 443 in RFC 8461; another port only for tests (a local HTTPS server). */
  policyPort: number;
  failureRetrySec: number;
}

interface Cached {
  id: string;
  policy: StsPolicy | undefined;
  expiresAt: number;
}

const MAX_POLICY_BYTES = 64 * 1024;
const MAX_AGE_LIMIT_SEC = 31_557_600;
const cache = new Map<string, Cached>();

/** The policy in force for `domain`, or undefined (none published, or none could be had). */
export async function stsPolicyFor(domain: string, resolver: DnsResolver, o: MtaStsOptions, now = Date.now()): Promise<{ policy?: StsPolicy; note?: string }> {
  if (!o.enabled) return {};
  const key = domain.toLowerCase();
  const cached = cache.get(key);
  const valid = cached && cached.expiresAt > now ? cached : undefined;
  const txt = await resolver.txt(`_mta-sts.${key}`);
  const records = txt.ok ? txt.records.filter((r) => /^v=STSv1\s*;/i.test(r.trim())) : [];
  const id = records.length === 1 ? /(?:^|;)\s*id\s*=\s*([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(records[0]!)?.[1] : undefined;
  if (!id) {
    // No record (or a broken one): a still-valid cached policy stays in force (§5.1).
    return valid ? { policy: valid.policy, note: 'TXT record gone or unreadable; cached policy kept' } : {};
  }
  if (valid && valid.id === id) return { policy: valid.policy };
  try {
    const text = await fetchPolicyText(key, resolver, o);
    const parsed = parsePolicy(text) as { mode?: string; mx?: string[]; maxAge?: number; version?: string };
    if (parsed.version !== 'STSv1' || !['enforce', 'testing', 'none'].includes(parsed.mode ?? '') || typeof parsed.maxAge !== 'number') {
      throw new Error('policy file is not a valid STSv1 policy');
    }
    const policy: StsPolicy = { mode: parsed.mode as StsPolicy['mode'], mx: parsed.mx ?? [] };
    cache.set(key, { id, policy, expiresAt: now + Math.min(parsed.maxAge, MAX_AGE_LIMIT_SEC) * 1000 });
    return { policy };
  } catch (err) {
    const note = `MTA-STS policy of ${key} could not be fetched: ${(err as Error).message}`;
    if (valid) return { policy: valid.policy, note: `${note}; cached policy kept` };
    cache.set(key, { id, policy: undefined, expiresAt: now + o.failureRetrySec * 1000 });
    return { note };
  }
}

/** Forgets every cached policy (tests). */
export function clearStsCache(): void {
  cache.clear();
}

async function fetchPolicyText(domain: string, resolver: DnsResolver, o: MtaStsOptions): Promise<string> {
  const host = `mta-sts.${domain}`;
  const a = await resolver.a(host);
  const aaaa = a.ok ? undefined : await resolver.aaaa(host);
  const address = a.ok ? a.records[0] : aaaa?.ok ? aaaa.records[0] : undefined;
  if (!address) throw new Error(`${host} has no address`);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: address,
        port: o.policyPort,
        servername: host,
        headers: { host },
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        rejectUnauthorized: true,
        agent: false,
        timeout: o.timeoutMs,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`HTTP ${res.statusCode} from https://${host}/.well-known/mta-sts.txt`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_POLICY_BYTES) req.destroy(new Error(`policy larger than ${MAX_POLICY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error(`no policy within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error(`no policy within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
