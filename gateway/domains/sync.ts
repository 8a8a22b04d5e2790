// Hosted domains from the database, live on every node: each process polls config_version
// (a one-row read, every database.domainsPollMs) and, when it changed, reads the domains, checks
// each with the file's schema and swaps the live config (gateway/config/live.ts) to the file's
// config with the database domains merged over it (gateway/config/hosted-domains.ts: the
// database wins for the domains it holds). New SMTP sessions, jobs and console requests see the
// change; nothing restarts. A config file reload (SIGHUP) becomes the new base, and the
// database domains are merged over it again at once.
//
// Failure: a database that cannot be read keeps the running config (logged once per outage); a
// stored domain the schema refuses (written by a newer or older version) is left out and logged
// with the key, the others apply.
import { checkHostedDomain, mergeDomains } from '../config/hosted-domains.ts';
import { onReload, type LiveConfig } from '../config/live.ts';
import type { Config, HostedDomain } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { DomainStore } from '../store/domains.ts';

export interface DomainSync {
  /** Reads the database now if its version changed; resolves true when the config was swapped. */
  refresh(): Promise<boolean>;
  /** The config file's domains (the base the database's are merged over). */
  fileDomains(): Record<string, HostedDomain>;
  stop(): void;
}

export async function startDomainSync(o: { store: DomainStore; live: LiveConfig; logger: Logger; intervalMs: number }): Promise<DomainSync> {
  const log = o.logger.child({ part: 'domain-sync' });
  const produced = new WeakSet<Config>();
  let base = o.live.current;
  let stored: Record<string, HostedDomain> = {};
  let seen: number | undefined;
  let failing = false;

  const apply = () => {
    const merged = mergeDomains(base, stored);
    produced.add(merged);
    o.live.swap(merged);
  };
  // A config swapped in by someone else (the file reloaded) is the new base.
  const unsubscribe = onReload(o.live.config, (next) => {
    if (produced.has(next)) return;
    base = next;
    if (Object.keys(stored).length > 0) apply();
  });

  async function read(): Promise<boolean> {
    const version = await o.store.version();
    if (version === seen) return false;
    const next: Record<string, HostedDomain> = {};
    for (const d of await o.store.list()) {
      const check = checkHostedDomain(d.name, d.settings);
      if (check.ok) next[check.name] = check.domain;
      else
        log.error({ domain: d.name, errors: check.errors }, `hosted domain ${d.name} in the database is not valid and is left out: ${check.errors.join('; ')}`);
    }
    seen = version;
    const nothingBefore = Object.keys(stored).length === 0;
    stored = next;
    // No database domains before or now (a gateway run from its file alone): nothing to swap.
    if (nothingBefore && Object.keys(next).length === 0) return false;
    apply();
    log.info({ version, domains: Object.keys(next) }, 'hosted domains from the database applied');
    return true;
  }

  // One read at a time, and a refresh asked for during a read reads again after it (the caller
  // may just have written).
  let queue: Promise<unknown> = Promise.resolve();
  let pending = 0;
  const refresh = (): Promise<boolean> => {
    pending++;
    const next = queue.then(() =>
      read()
        .then((swapped) => {
          if (failing) log.info('hosted domains can be read from the database again');
          failing = false;
          return swapped;
        })
        .catch((err: unknown) => {
          if (!failing) log.warn({ err }, 'cannot read hosted domains from the database; the running ones stay in use');
          failing = true;
          return false;
        })
        .finally(() => pending--),
    );
    queue = next;
    return next;
  };

  await refresh();
  // A stuck database must not pile up polls: a tick while a read is pending is skipped.
  const timer = setInterval(() => pending === 0 && void refresh(), o.intervalMs);
  timer.unref();
  return {
    refresh,
    fileDomains: () => base.domains,
    stop() {
      clearInterval(timer);
      unsubscribe();
    },
  };
}
