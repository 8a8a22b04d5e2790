// The facts one SMTP session's checks need, gathered through the ports (the one resolver, the
// DNSBL checker, SPF) and memoised per session: each lookup is started once, as early as its
// input is known (PTR and client DNSBL at connect, SPF at MAIL FROM), and awaited only where a
// decision needs it (RCPT). Lookups never reject (the resolver's contract), so a started promise
// that nobody awaits (the client left) costs nothing but the query.
import type { DnsResolver, DnsResult } from '../../core/dns.ts';
import type { DnsblChecker } from '../../scanners/dnsbl.ts';
import { confirmedPtrName, parseHelo, rdnsForwardLookups, type DnsblFacts, type HeloFacts, type RdnsFacts, type RdnsPolicy } from '../../rules/connection.ts';
import type { SpfCheck, SpfChecker } from './spf.ts';

export interface FactSources {
  resolver: DnsResolver;
  /** Null when no DNSBL is configured. */
  dnsbl: DnsblChecker | null;
  /** Whether any configured list is a domain list (DBL style). */
  hasDomainLists: boolean;
  spf: SpfChecker;
  /** Our names, for the HELO forged-self check. */
  ourHostnames: string[];
  maxPtrNames: number;
}

export class SessionFacts {
  readonly #src: FactSources;
  readonly #clientIp: string;
  readonly #localIp: string;
  readonly #memo = new Map<string, Promise<unknown>>();

  constructor(src: FactSources, clientIp: string, localIp: string) {
    this.#src = src;
    this.#clientIp = clientIp;
    this.#localIp = localIp;
  }

  #once<T>(key: string, start: () => Promise<T>): Promise<T> {
    let p = this.#memo.get(key) as Promise<T> | undefined;
    if (!p) {
      p = start();
      this.#memo.set(key, p);
    }
    return p;
  }

  /** PTR of the client, then each PTR name forward (A for IPv4 clients, AAAA for IPv6). */
  rdns(): Promise<RdnsFacts> {
    return this.#once('rdns', async () => {
      const { resolver } = this.#src;
      const ptr = await resolver.ptr(this.#clientIp);
      const policy = { maxPtrNames: this.#src.maxPtrNames } as RdnsPolicy;
      const lookups = rdnsForwardLookups(this.#clientIp, ptr, policy);
      const answers = await Promise.all(lookups.map((l) => (l.type === 'a' ? resolver.a(l.name) : resolver.aaaa(l.name))));
      const forward: Record<string, DnsResult<string>> = {};
      lookups.forEach((l, i) => (forward[l.name] = answers[i]!));
      return { clientIp: this.#clientIp, ptr, forward };
    });
  }

  /** The first PTR name that resolves back to the client, once rdns() is known. */
  async verifiedHostname(): Promise<string | undefined> {
    if (!this.#memo.has('rdns')) return undefined;
    return confirmedPtrName(await this.rdns(), { maxPtrNames: this.#src.maxPtrNames } as RdnsPolicy);
  }

  /** HELO facts: the name is looked up (A, AAAA, MX) only when it is a syntactically valid host name. */
  helo(helo: string): Promise<HeloFacts> {
    return this.#once(`helo ${helo}`, async () => {
      const base = { helo, clientIp: this.#clientIp, ourHostnames: this.#src.ourHostnames, ourIps: [this.#localIp] };
      const parsed = parseHelo(helo);
      if (parsed.kind !== 'name') return base;
      const { resolver } = this.#src;
      const [a, aaaa, mx] = await Promise.all([resolver.a(parsed.name), resolver.aaaa(parsed.name), resolver.mx(parsed.name)]);
      return { ...base, dns: { a, aaaa, mx } };
    });
  }

  clientDnsbl(): Promise<DnsblFacts | undefined> {
    return this.#once('dnsbl client', async () => {
      if (!this.#src.dnsbl) return undefined;
      return { subject: this.#clientIp, role: 'client' as const, results: await this.#src.dnsbl.checkIp(this.#clientIp) };
    });
  }

  /** A HELO name or sender domain in the domain lists (nothing for address literals or bad names). */
  domainDnsbl(domain: string, role: 'helo' | 'sender'): Promise<DnsblFacts | undefined> {
    return this.#once(`dnsbl ${role} ${domain}`, async () => {
      if (!this.#src.dnsbl || !this.#src.hasDomainLists) return undefined;
      const parsed = parseHelo(domain);
      if (parsed.kind !== 'name') return undefined;
      const results = (await this.#src.dnsbl.checkDomain(parsed.name)).filter((r) => r.query !== '');
      return results.length > 0 ? { subject: parsed.name, role, results } : undefined;
    });
  }

  spf(sender: string, helo: string): Promise<SpfCheck> {
    return this.#once(`spf ${sender} ${helo}`, () => this.#src.spf({ sender, ip: this.#clientIp, helo }));
  }
}
