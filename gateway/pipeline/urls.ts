// URL checks at the edge: the hosts found in the bodies (gateway/pipeline/text-scan.ts) against
// the local bad-sites list and the configured domain blocklists (scanners/dnsbl.ts checkDomain, on
// the gateway's one resolver). What a hit means is rules/urls.ts.
//
// Each registrable domain is looked up once (DBL/SURBL/URIBL list registrable domains; a PSL
// library finds them). Lookups run in parallel, bounded by urls.maxHosts per message.
import { readFileSync } from 'node:fs';
import { createDnsblChecker, type DnsblChecker, type DnsblList } from '../../scanners/dnsbl.ts';
import type { DnsResolver } from '../../core/dns.ts';
import type { UrlsConfig } from '../config/policy.ts';
import { DEFAULT_BAD_SITES } from '../../rules/defaults/bad-sites.ts';
import { badSiteEntry, type UrlFacts } from '../../rules/urls.ts';

export interface UrlChecker {
  check(hosts: string[], truncated: boolean): Promise<UrlFacts>;
}

/** The bad-sites list: defaults, config entries and the optional file (one domain per line, # comments). */
export function loadBadSites(c: UrlsConfig): Set<string> {
  const fromFile = c.badSitesFile
    ? readFileSync(c.badSitesFile, 'utf8')
        .split(/\r?\n/)
        .map((l) => l.replace(/#.*/, '').trim().toLowerCase())
        .filter((l) => l !== '')
    : [];
  return new Set([...DEFAULT_BAD_SITES, ...c.badSites, ...fromFile].map((d) => d.replace(/\.$/, '')));
}

export function createUrlChecker(o: { config: UrlsConfig; resolver: DnsResolver | null; registrableDomain: (host: string) => string }): UrlChecker {
  const badSites = loadBadSites(o.config);
  const lists: (DnsblList & { retry: boolean })[] = o.config.lists.map((l) => ({
    zone: l.zone,
    kind: 'domain',
    type: 'block',
    action: 'score',
    weight: l.weight,
    codes: l.codes,
    refusedCodes: l.refusedCodes,
    txt: false,
    retry: l.onError === 'retry',
  }));
  const dnsbl: DnsblChecker | null = o.resolver && lists.length > 0 ? createDnsblChecker({ resolver: o.resolver, lists }) : null;
  return {
    async check(hosts, truncated) {
      const facts: UrlFacts = { hosts, truncated, badSites: [], listed: [], errors: [] };
      for (const host of hosts) {
        const entry = badSiteEntry(host, badSites);
        if (entry) facts.badSites.push({ host, entry });
      }
      if (!dnsbl) return facts;
      const domains = [...new Set(hosts.map((h) => o.registrableDomain(h)))];
      const results = await Promise.all(domains.map(async (d) => ({ domain: d, results: await dnsbl.checkDomain(d) })));
      for (const { domain, results: rs } of results) {
        for (const r of rs) {
          const list = lists.find((l) => l.zone === r.list.zone)!;
          if (r.status === 'listed') facts.listed.push({ host: domain, zone: list.zone, detail: r.meanings.join(', ') || 'listed', weight: list.weight ?? 0 });
          // A "refused" answer is the operator's problem (e.g. a public resolver), never a listing.
          if (r.status === 'error' || r.status === 'refused') {
            const error = r.status === 'error' ? r.error : `query refused (${r.codes.join(', ')})`;
            facts.errors.push({ host: domain, zone: list.zone, error, retry: list.retry && r.status === 'error' });
          }
        }
      }
      return facts;
    },
  };
}
