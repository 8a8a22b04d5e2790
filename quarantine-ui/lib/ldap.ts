// Checks a username and password against an LDAP/AD directory (ldapts) and reads the person's mail
// addresses and groups. Contract: 'ok' only after the directory accepted a simple bind as the
// person's own entry with a non-empty password; 'invalid' when it refused the password or knows
// no such person; 'unavailable' for everything else (connection refused, timeout, TLS failure, a
// refused service account, an answer we cannot use), so that an outage is never mistaken for a
// wrong password and never lets anyone in.
// Injection: the typed name goes into filters only through RFC 4515 escaping and into a DN only
// through RFC 4514 escaping; "*)(uid=*" is a name with odd characters, not a wildcard.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Client, Filter, InvalidCredentialsError, type Entry } from 'ldapts';
import type { LdapConfig } from '../../gateway/config/console-auth.ts';
import { readSecret } from './secrets.ts';

export type DirectoryAnswer =
  { kind: 'ok'; dn: string; groups: string[]; mail: string[] } | { kind: 'invalid'; detail: string } | { kind: 'unavailable'; detail: string };

/** RFC 4514 §2.4: a value as one attribute value of a DN. */
export function escapeDnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/\0/g, '\\00')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

const fill = (template: string, values: Record<string, string>) => template.replace(/\{(username|dn)\}/g, (_m, k: string) => Filter.escape(values[k] ?? ''));

const strings = (v: Entry[string] | undefined): string[] =>
  v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));

export interface Directory {
  authenticate(username: string, password: string): Promise<DirectoryAnswer>;
}

/** What an admin must hear at start: settings under which a directory password can be read or phished on the way. */
export function ldapTransportWarnings(cfg: LdapConfig): string[] {
  const tls = cfg.url.toLowerCase().startsWith('ldaps:') || cfg.startTls;
  if (!tls) return ['console.auth.ldap: plain ldap:// without startTls sends every console password to the directory in clear'];
  if (!cfg.tls.rejectUnauthorized)
    return [
      "console.auth.ldap.tls.rejectUnauthorized is false: the directory's certificate is not checked, so anyone on the path can pose as the directory and read console passwords",
    ];
  return [];
}

export function ldapDirectory(cfg: LdapConfig): Directory {
  // Read at start: a missing secret file is a start-up error, not a failed login at 3 a.m.
  const servicePassword = cfg.search ? readSecret(cfg.search.password, 'console.auth.ldap.search.password') : undefined;
  const tlsOptions = { rejectUnauthorized: cfg.tls.rejectUnauthorized, ...(cfg.tls.caFile ? { ca: readFileSync(cfg.tls.caFile) } : {}) };
  const attributes = [cfg.mailAttribute, cfg.groupAttribute];
  const urlHost = new URL(cfg.url).hostname.replace(/^\[(.*)\]$/, '$1');

  async function connect(): Promise<Client> {
    // ldapts speaks TLS from the first byte whenever tlsOptions are given, so only for ldaps://.
    const ldaps = cfg.url.toLowerCase().startsWith('ldaps:');
    const client = new Client({ url: cfg.url, timeout: cfg.timeoutMs, connectTimeout: cfg.connectTimeoutMs, ...(ldaps ? { tlsOptions } : {}) });
    // ldapts hands StartTLS no host name, so Node would check the certificate against "localhost":
    // a directory's own certificate fails and one for "localhost" passes. Name the url's host.
    if (cfg.startTls) await client.startTLS({ ...tlsOptions, host: urlHost, ...(isIP(urlHost) ? {} : { servername: urlHost }) });
    return client;
  }

  async function groupsOf(client: Client, dn: string, username: string, entry: Entry): Promise<string[]> {
    const groups = strings(entry[cfg.groupAttribute]);
    if (cfg.groupSearch) {
      const filter = fill(cfg.groupSearch.filter, { dn, username });
      const { searchEntries } = await client.search(cfg.groupSearch.baseDN ?? cfg.baseDN, { scope: 'sub', filter, attributes: ['dn'], sizeLimit: 1000 });
      groups.push(...searchEntries.map((g) => g.dn));
    }
    return groups;
  }

  return {
    async authenticate(username, password) {
      // An empty password is an "unauthenticated bind" (RFC 4513 §5.1.2): many servers answer it
      // with success. It must never count as a login.
      if (!username || !password) return { kind: 'invalid', detail: 'empty username or password' };
      let client: Client | undefined;
      let stage = 'connect';
      try {
        client = await connect();
        let dn: string;
        let entry: Entry;
        let groups: string[];
        if (cfg.search) {
          stage = 'service bind';
          await client.bind(cfg.search.bindDN, servicePassword);
          stage = 'user search';
          const { searchEntries } = await client.search(cfg.baseDN, { scope: 'sub', filter: fill(cfg.userFilter, { username }), attributes, sizeLimit: 2 });
          if (searchEntries.length === 0) return { kind: 'invalid', detail: 'no such user in the directory' };
          if (searchEntries.length > 1) return { kind: 'invalid', detail: 'the user filter matches several entries' };
          entry = searchEntries[0]!;
          dn = entry.dn;
          // Groups are read with the service account's rights, before the user's bind replaces them.
          stage = 'group search';
          groups = await groupsOf(client, dn, username, entry);
          stage = 'user bind';
          await client.bind(dn, password);
        } else {
          dn = cfg.bindDN!.replaceAll('{username}', escapeDnValue(username));
          stage = 'user bind';
          await client.bind(dn, password);
          stage = 'user entry';
          const { searchEntries } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes });
          entry = searchEntries[0] ?? { dn };
          stage = 'group search';
          groups = await groupsOf(client, dn, username, entry);
        }
        return { kind: 'ok', dn, groups, mail: strings(entry[cfg.mailAttribute]) };
      } catch (err) {
        if (err instanceof InvalidCredentialsError && stage === 'user bind') return { kind: 'invalid', detail: 'the directory refused the password' };
        return { kind: 'unavailable', detail: `${stage}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300) };
      } finally {
        await client?.unbind().catch(() => undefined);
      }
    },
  };
}
