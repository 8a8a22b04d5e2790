// Certificates for STARTTLS: several, chosen by SNI, reloadable without a restart.
//
// Contract: load() reads every configured cert/key pair and builds one secure context each; the
// first pair is the default (no SNI, or a name no certificate covers). A certificate serves the
// names given in config, else the DNS names of its subjectAltName (else its CN); "*.example.com"
// covers one label. reload() rebuilds everything from the files and swaps it in at once, so a
// handshake sees either the old set or the new one; if any file is unreadable or a key does not
// match its certificate, the old set stays and the error is reported. Renewals are picked up by
// an mtime poll (tls.reloadCheckSec) or at once by reload() (SIGHUP in the composition root).
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import tls, { type SecureContext } from 'node:tls';
import type { TlsConfig } from '../config/checks.ts';

export interface CertificateSet {
  /** Key and certificate of the default pair, for smtp-server's own default context. */
  key: Buffer;
  cert: Buffer;
  /** lower-case name or "*.suffix" → context. */
  byName: Map<string, SecureContext>;
  /** Mtimes of the files this set was read from, to notice renewals. */
  stamp: string;
}

export interface TlsStore {
  readonly current: CertificateSet;
  /** For the TLS server: the context for a client's SNI name, or undefined (smtp-server then uses the default). */
  contextFor(servername: string): SecureContext | undefined;
  /** Re-reads the files. Resolves true if the set changed; throws (keeping the old set) if the new files are bad. */
  reload(o?: { force?: boolean }): boolean;
  /** Called with the new set after each successful reload. */
  onReload(listener: (set: CertificateSet) => void): void;
  /** Starts the mtime poll (if configured); returns a stop function. */
  watch(onError: (err: unknown) => void): () => void;
}

function namesOf(certPem: Buffer): string[] {
  const x509 = new X509Certificate(certPem);
  const san = (x509.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4));
  if (san.length > 0) return san;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn ? [cn] : [];
}

function stampOf(config: TlsConfig): string {
  return config.certificates.map((c) => [c.cert, c.key].map((f) => `${f}@${statSync(f).mtimeMs}`).join(',')).join(';');
}

function loadSet(config: TlsConfig): CertificateSet {
  const stamp = stampOf(config);
  const byName = new Map<string, SecureContext>();
  let first: { key: Buffer; cert: Buffer } | undefined;
  for (const c of config.certificates) {
    const cert = readFileSync(c.cert);
    const key = readFileSync(c.key);
    // createSecureContext throws if the key does not belong to the certificate.
    const context = tls.createSecureContext({ key, cert, minVersion: config.minVersion });
    first ??= { key, cert };
    for (const name of c.names ?? namesOf(cert)) {
      const n = name.toLowerCase().replace(/\.$/, '');
      if (!byName.has(n)) byName.set(n, context);
    }
  }
  if (!first) throw new Error('no TLS certificates configured');
  return { ...first, byName, stamp };
}

export function createTlsStore(config: TlsConfig): TlsStore {
  let current = loadSet(config);
  const listeners: ((set: CertificateSet) => void)[] = [];
  const store: TlsStore = {
    get current() {
      return current;
    },
    contextFor(servername) {
      const name = servername.toLowerCase().replace(/\.$/, '');
      const exact = current.byName.get(name);
      if (exact) return exact;
      const dot = name.indexOf('.');
      return dot > 0 ? current.byName.get(`*${name.slice(dot)}`) : undefined;
    },
    reload(o = {}) {
      if (!o.force && stampOf(config) === current.stamp) return false;
      current = loadSet(config);
      for (const l of listeners) l(current);
      return true;
    },
    onReload(listener) {
      listeners.push(listener);
    },
    watch(onError) {
      if (config.reloadCheckSec === 0) return () => {};
      const timer = setInterval(() => {
        try {
          store.reload();
        } catch (err) {
          onError(err);
        }
      }, config.reloadCheckSec * 1000);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
  return store;
}
