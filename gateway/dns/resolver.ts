// The DnsResolver of core/dns.ts on node:dns: one set of servers, one timeout policy, one cache,
// shared by every lookup of a process. The contract (never rejects, deadline, what is cached) is
// written down with the port in core/dns.ts.
import { Resolver } from 'node:dns/promises';
import { ptrName } from '../../core/ip.ts';
import type { DnsFailureKind, DnsResolver, DnsResult, MailauthResolver, MxRecord } from '../../core/dns.ts';

export interface ResolverOptions {
  /** "ip" or "ip:port" (IPv6 as "[::1]:53"). Must be resolvers the operator trusts; DNSBLs refuse public ones. */
  servers: string[];
  /** Deadline of one lookup in ms, all tries and servers included. */
  timeoutMs: number;
  /** Tries per server within that deadline (c-ares retransmits over UDP). */
  tries: number;
  /** Cache size in entries; least recently used entries go first. 0 turns the cache off. Default 10000. */
  cacheMaxEntries?: number;
  /** Seconds a NXDOMAIN/NODATA answer is kept (no SOA minimum is visible through node:dns). Default 60. */
  negativeTtlSec?: number;
  /** Upper bound on any cached TTL, so a bad record cannot pin an answer for days. Default 3600. */
  maxTtlSec?: number;
  /** Cache time for answers whose TTL node:dns does not report (TXT, MX, PTR, CNAME). Default 60. */
  unknownTtlSec?: number;
  /** Clock in ms, for tests of expiry. Default Date.now. */
  now?: () => number;
}

type RrType = 'A' | 'AAAA' | 'TXT' | 'PTR' | 'MX' | 'CNAME';

interface CacheEntry {
  expiresAt: number;
  result: DnsResult<unknown>;
}

/** What a raw lookup gives before caching: the records and their TTL, undefined when node hides it. */
type Raw = { records: unknown[]; ttl: number | undefined };

export const RESOLVER_DEFAULTS = { cacheMaxEntries: 10_000, negativeTtlSec: 60, maxTtlSec: 3600, unknownTtlSec: 60 };
const MIN_TRY_MS = 50;

function query(r: Resolver, type: RrType, name: string): Promise<Raw> {
  const minTtl = (list: { ttl: number }[]) => Math.min(...list.map((x) => x.ttl));
  switch (type) {
    case 'A':
      return r.resolve4(name, { ttl: true }).then((l) => ({ records: l.map((x) => x.address), ttl: minTtl(l) }));
    case 'AAAA':
      return r.resolve6(name, { ttl: true }).then((l) => ({ records: l.map((x) => x.address), ttl: minTtl(l) }));
    case 'TXT':
      return r.resolveTxt(name).then((l) => ({ records: l.map((chunks) => chunks.join('')), ttl: undefined }));
    case 'PTR':
      return r.resolvePtr(name).then((l) => ({ records: l, ttl: undefined }));
    case 'MX':
      return r.resolveMx(name).then((l) => ({
        records: l.map((x): MxRecord => ({ exchange: x.exchange, priority: x.priority })),
        ttl: undefined,
      }));
    case 'CNAME':
      return r.resolveCname(name).then((l) => ({ records: l, ttl: undefined }));
  }
}

/** Maps a node:dns error to our three kinds. Anything we cannot read as an answer is a temperror. */
export function classifyDnsError(err: unknown): { ok: false; kind: DnsFailureKind; error: string; code: string } {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'EUNKNOWN';
  const error = err instanceof Error ? err.message : String(err);
  const kind: DnsFailureKind = code === 'ENOTFOUND' ? 'nxdomain' : code === 'ENODATA' ? 'nodata' : 'temperror';
  return { ok: false, kind, error, code };
}

const normName = (name: string): string => name.trim().toLowerCase().replace(/\.$/, '');

/** A TTL cache with least-recently-used eviction (a Map iterates in insertion order). */
class TtlCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max: number, now: () => number) {
    this.#max = max;
    this.#now = now;
  }

  /** The cached result, with a positive answer's TTL counted down to what is left. */
  get(key: string): DnsResult<unknown> | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    const left = entry.expiresAt - this.#now();
    this.#entries.delete(key);
    if (left <= 0) return undefined;
    this.#entries.set(key, entry); // re-inserted: now the most recently used
    return entry.result.ok ? { ...entry.result, ttl: Math.ceil(left / 1000) } : entry.result;
  }

  set(key: string, result: DnsResult<unknown>, ttlSec: number): void {
    if (this.#max <= 0 || ttlSec <= 0) return;
    this.#entries.set(key, { expiresAt: this.#now() + ttlSec * 1000, result });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#max) break;
      this.#entries.delete(oldest);
    }
  }
}

/** One query under a hard deadline. c-ares cannot cancel a single query, so on the deadline its late answer is dropped. */
async function queryWithDeadline(r: Resolver, type: RrType, name: string, deadlineMs: number): Promise<Raw> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(Object.assign(new Error(`query${type} ETIMEOUT ${name} (deadline ${deadlineMs} ms)`), { code: 'ETIMEOUT' }));
    }, deadlineMs);
  });
  try {
    return await Promise.race([query(r, type, name), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function newNodeResolver(o: ResolverOptions): Resolver {
  // Share the deadline between the tries so that retransmissions happen before it passes;
  // maxTimeout stops c-ares from growing the per-try timeout past that share.
  const perTry = Math.max(MIN_TRY_MS, Math.floor(o.timeoutMs / (o.tries * Math.max(1, o.servers.length))));
  const resolver = new Resolver({ timeout: perTry, tries: o.tries, maxTimeout: perTry });
  resolver.setServers(o.servers);
  return resolver;
}

function mailauthAdapter(lookup: (type: RrType, name: string) => Promise<DnsResult<unknown>>): MailauthResolver {
  return async (name, rrtype) => {
    const type = rrtype.toUpperCase();
    if (!['A', 'AAAA', 'TXT', 'PTR', 'MX', 'CNAME'].includes(type)) {
      throw Object.assign(new Error(`query${type} ENOTIMP ${name}`), { code: 'ENOTIMP' });
    }
    const result = await lookup(type as RrType, name);
    if (!result.ok) throw Object.assign(new Error(result.error), { code: result.code });
    // mailauth joins TXT chunks itself; ours are joined already, so each record is one chunk.
    return (type === 'TXT' ? result.records.map((r) => [r]) : result.records) as string[][] | string[];
  };
}

export function createResolver(o: ResolverOptions): DnsResolver {
  const opts = { ...RESOLVER_DEFAULTS, ...o };
  const resolver = newNodeResolver(opts);
  const cache = new TtlCache(opts.cacheMaxEntries, o.now ?? Date.now);
  const inFlight = new Map<string, Promise<DnsResult<unknown>>>();

  async function fetch(type: RrType, name: string, key: string): Promise<DnsResult<unknown>> {
    try {
      const raw = await queryWithDeadline(resolver, type, name, opts.timeoutMs);
      const ttl = Math.min(raw.ttl ?? opts.unknownTtlSec, opts.maxTtlSec);
      cache.set(key, { ok: true, records: raw.records, ttl }, ttl);
      return { ok: true, records: raw.records, ttl };
    } catch (err) {
      const failure = classifyDnsError(err);
      if (failure.kind !== 'temperror') cache.set(key, failure, opts.negativeTtlSec);
      return failure;
    } finally {
      inFlight.delete(key);
    }
  }

  // Concurrent identical lookups share one query: a burst of connections from one client
  // costs one PTR lookup, and a hung server is waited for once per name, not once per session.
  function lookup<T>(type: RrType, rawName: string): Promise<DnsResult<T>> {
    const name = normName(rawName);
    const key = `${type} ${name}`;
    const cached = cache.get(key);
    if (cached) return Promise.resolve(cached as DnsResult<T>);
    let pending = inFlight.get(key);
    if (!pending) {
      pending = fetch(type, name, key);
      inFlight.set(key, pending);
    }
    return pending as Promise<DnsResult<T>>;
  }

  return {
    a: (name) => lookup<string>('A', name),
    aaaa: (name) => lookup<string>('AAAA', name),
    txt: (name) => lookup<string>('TXT', name),
    mx: (name) => lookup<MxRecord>('MX', name),
    ptr: (ip) => {
      const name = ptrName(ip);
      if (name === undefined) {
        return Promise.resolve({ ok: false, kind: 'temperror', code: 'EBADIP', error: `not an IP address: ${ip}` });
      }
      return lookup<string>('PTR', name);
    },
    forMailauth: () => mailauthAdapter(lookup),
  };
}
