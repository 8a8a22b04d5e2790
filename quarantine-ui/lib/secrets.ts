// Secrets of the console's external logins (LDAP service password, OIDC client secret): read from a
// file or an environment variable at start, so that a missing one stops the console with a message
// naming the config key, instead of failing every login later. The value never reaches a log.
import { readFileSync } from 'node:fs';
import type { SecretSource } from '../../gateway/config/console-auth.ts';

/** A secret from its file or environment variable; throws naming where it looked (not the secret). */
export function readSecret(source: SecretSource, key: string): string {
  const where = source.file ? `file ${source.file}` : `environment variable ${source.env}`;
  let value: string;
  try {
    value = (source.file ? readFileSync(source.file, 'utf8') : (process.env[source.env!] ?? '')).trim();
  } catch (err) {
    throw new Error(`${key}: cannot read the secret's ${where} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  if (!value) throw new Error(`${key}: the secret's ${where} is empty or missing`);
  return value;
}
