// URL checks: the hosts named in a message's bodies against the local bad-sites list and domain
// blocklists. Pure: the look-ups are done at the edge (gateway/pipeline/urls.ts) and come in as
// facts; this file says what they mean for the report and the score.
import type { UrlScan } from '../scanners/types.ts';

/** The bad-sites entry a host falls under (the host itself or a parent domain), or null. */
export function badSiteEntry(host: string, sites: ReadonlySet<string>): string | null {
  const labels = host.toLowerCase().replace(/\.$/, '').split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.');
    if (sites.has(candidate)) return candidate;
  }
  return null;
}

/** What the look-ups found, message-wide (before any policy weighs it). */
export interface UrlFacts {
  hosts: string[];
  truncated: boolean;
  badSites: { host: string; entry: string }[];
  listed: { host: string; zone: string; detail: string; weight: number }[];
  errors: { host: string; zone: string; error: string; retry: boolean }[];
}

/** The report entry for one recipient's policy: bad-site hits weigh `badSiteScore` each. */
export function urlScan(f: UrlFacts, badSiteScore: number): UrlScan {
  const retry = f.errors.find((e) => e.retry);
  if (retry) return { status: 'error', reason: `${retry.zone} lookup of ${retry.host} failed: ${retry.error}` };
  const hits = [
    ...f.badSites.map((b) => ({ host: b.host, list: 'bad-sites', detail: `on the bad-sites list (${b.entry})`, score: badSiteScore })),
    ...f.listed.map((l) => ({ host: l.host, list: l.zone, detail: l.detail, score: l.weight })),
  ];
  return {
    status: 'checked',
    hosts: f.hosts.length,
    truncated: f.truncated,
    hits,
    errors: f.errors.map((e) => ({ host: e.host, list: e.zone, error: e.error })),
    score: hits.reduce((s, h) => s + h.score, 0),
  };
}
