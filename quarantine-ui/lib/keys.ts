// The console's secret: one random 32-byte master key in a file (mode 0600), created on first
// start. Every console node of a cluster must share the file. The session-cookie key, the
// digest-link key and the keys of the second factor (TOTP secrets sealed at rest, recovery-code
// hashes) are derived from it (HKDF), so one secret can never be used for two purposes.
import { hkdfSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function loadOrCreateSecret(file: string): Buffer {
  try {
    return parseSecret(readFileSync(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    // 'wx': two processes starting at once must not each write a different key.
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return parseSecret(readFileSync(file, 'utf8'), file);
}

function parseSecret(text: string, file: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`${file}: expected 64 hex characters (a 32-byte key)`);
  return Buffer.from(hex, 'hex');
}

export function deriveKey(master: Buffer, purpose: 'session-cookie' | 'digest-links' | 'totp-secrets' | 'recovery-codes'): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `mailmoat console ${purpose}`, 32));
}
