// Hosted domains kept in the metadata database (console, API, `mailmoat domain`) next to those
// of the config file. Both are validated by the one schema of the file (schema.ts
// hostedDomainSchema), with messages that name the key as the file's would
// (domains["a.test"].downstream[0].port: …), so a domain refused in the file is refused here too.
//
// Which wins: the database, for each domain it holds. The file stays the bootstrap (a gateway
// needs at least one domain before anyone can log in); a file domain edited in the console is
// copied into the database and from then on the database copy is used; removing it from the
// database brings the file's version back.
import { z } from 'zod';
import { describeIssue } from './load.ts';
import { domainNameSchema, hostedDomainSchema, type Config, type HostedDomain } from './schema.ts';

const oneDomain = z.object({ domains: z.record(domainNameSchema, hostedDomainSchema) }).strict();

export type DomainCheck = { ok: true; name: string; domain: HostedDomain } | { ok: false; errors: string[] };

/** Validates one domain's settings (as written in the file's `domains.<name>`), naming the key of each error. */
export function checkHostedDomain(name: string, settings: unknown): DomainCheck {
  const r = oneDomain.safeParse({ domains: { [name]: settings ?? {} } });
  if (!r.success) return { ok: false, errors: r.error.issues.map((i) => describeIssue(i)) };
  const [entry] = Object.entries(r.data.domains);
  return { ok: true, name: entry![0], domain: entry![1] };
}

/** The running config: the file's, with each database domain in place of (or next to) the file's. */
export function mergeDomains(file: Config, stored: Record<string, HostedDomain>): Config {
  if (Object.keys(stored).length === 0) return file;
  return { ...file, domains: { ...file.domains, ...stored } };
}
