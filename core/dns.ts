// THE one DNS port of the gateway: HELO checks, reverse DNS, DNSBLs, SPF/DKIM/DMARC (through
// mailauth) and anything else that asks DNS goes through a DnsResolver. The port lives here, on the
// bottom floor, so that rules/ (which decide on DNS answers) and scanners/ (the DNSBL client, which
// asks through it) need nothing from gateway/; gateway/dns/resolver.ts is the one implementation
// (node:dns, deadline, cache) and test/support/fake-dns.ts the fake its tests run against.
//
// Contract:
// - Methods never reject. Every outcome is a DnsResult: records, or one of three failures.
//   "nxdomain" (the name does not exist) and "nodata" (it exists, without records of that type)
//   are answers; "temperror" (timeout, SERVFAIL, REFUSED, unreachable server, bad name…) means
//   we do not know, and callers must never read it as "not listed" or "fine" (fail closed).
// - A lookup answers within timeoutMs: a guard timer enforces that deadline (temperror, code
//   ETIMEOUT) because c-ares' own timing is not predictable (since 1.32 it adapts per-try timeouts
//   to measured server latency, so timeout × tries is only a hint to it).
// - Answers are cached: positive ones for their TTL (capped), negative ones briefly, temperrors
//   never (only concurrent identical lookups share one in-flight query).
// What it leaves out: DNSSEC validation, TCP-only answers beyond what c-ares does itself, and the
// real TTL of TXT/MX/PTR/CNAME answers (node:dns only reports TTLs for A and AAAA, so those are
// cached for `unknownTtlSec`).

export type DnsFailureKind = 'nxdomain' | 'nodata' | 'temperror';
export type DnsResult<T> =
  | { ok: true; records: T[]; ttl: number }
  /** `code` is the node/c-ares error code (ENOTFOUND, ENODATA, ETIMEOUT, ESERVFAIL, …). */
  | { ok: false; kind: DnsFailureKind; error: string; code: string };

export interface MxRecord {
  exchange: string;
  priority: number;
}

/**
 * mailauth's `resolver` option as its types declare it. At run time MX answers are node's
 * { exchange, priority } objects, which is what mailauth reads.
 */
export type MailauthResolver = (name: string, rrtype: string) => Promise<string[][] | string[]>;

export interface DnsResolver {
  a(name: string): Promise<DnsResult<string>>;
  aaaa(name: string): Promise<DnsResult<string>>;
  /** One string per TXT record, its character-strings joined without separator (RFC 7208 §3.3). */
  txt(name: string): Promise<DnsResult<string>>;
  /** Reverse lookup of an IPv4/IPv6 address (a mapped ::ffff:a.b.c.d is looked up as IPv4). */
  ptr(ip: string): Promise<DnsResult<string>>;
  mx(name: string): Promise<DnsResult<MxRecord>>;
  /**
   * Adapter for mailauth's `resolver` option. It resolves A, AAAA, TXT (as chunk arrays), MX,
   * PTR (given the in-addr.arpa/ip6.arpa name, as mailauth passes it) and CNAME, and rejects
   * with an Error whose `code` is ENOTFOUND / ENODATA (void lookups for SPF) or the original
   * temporary code (ETIMEOUT, ESERVFAIL, EREFUSED, ECONNREFUSED… → SPF/DKIM temperror).
   */
  forMailauth(): MailauthResolver;
}
