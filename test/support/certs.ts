// A self-signed certificate for the TLS listeners of a test gateway.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A self-signed EC certificate for `names` (host names or IP addresses; the first is the CN), in a fresh temporary directory. */
export function makeCert(names: string[]): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-relay-tls-'));
  const cert = path.join(dir, 'c.crt');
  const key = path.join(dir, 'c.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      `/CN=${names[0]}`,
      '-addext',
      `subjectAltName=${names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
