// Password hashing for console accounts: scrypt from node:crypto (memory-hard, no native addon).
// The stored string carries its own parameters, so they can be raised later without breaking old
// hashes: "scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>".
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

// N = 2^15, r = 8: 32 MiB and roughly 50-100 ms per hash on a small server (OWASP's scrypt floor
// is N = 2^17 with r = 8 and p = 1 for a 128 MiB budget; 2^15 keeps a login under 0.1 s on the
// 2-core machines this runs on while making each guess cost 32 MiB of memory).
const DEFAULT = { logN: 15, r: 8, p: 1 };
const KEY_LEN = 32;
const MAX_PASSWORD = 1024;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LEN, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params = DEFAULT): Promise<string> {
  if (password.length === 0 || password.length > MAX_PASSWORD) throw new Error('password length out of range');
  const salt = randomBytes(16);
  const key = await derive(password, salt, params.logN, params.r, params.p);
  return ['scrypt', params.logN, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt' || password.length > MAX_PASSWORD) return false;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!(logN >= 10 && logN <= 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16)) return false;
  const expected = Buffer.from(parts[5]!, 'base64');
  const key = await derive(password, Buffer.from(parts[4]!, 'base64'), logN, r, p);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash no password matches, verified when a login names an unknown user (same time cost). */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}

/** A random password for a new account (printed once, never logged). 18 bytes = 24 base64url chars. */
export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}
