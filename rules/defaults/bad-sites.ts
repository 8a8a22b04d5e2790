// Default local bad-sites list: domains whose mention in a message body adds
// policy.urls.badSiteScore to its score (per host; a subdomain of an entry matches too).
//
// A static list in the source goes stale within days, so the real list is the operator's:
// `urls.badSites` in the config and `urls.badSitesFile` (one domain per line, e.g. fed from a
// phishing feed). The default holds only a test entry, like EICAR and GTUBE for the scanners:
// a link to http://badsite-test.mailmoat.invalid/ scores as a bad site, and the `.invalid`
// top-level domain (RFC 2606) can never be a real site.
export const DEFAULT_BAD_SITES: readonly string[] = ['badsite-test.mailmoat.invalid'];
