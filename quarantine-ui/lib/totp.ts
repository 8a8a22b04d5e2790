// The second factor's cryptography: TOTP codes (RFC 6238, through the otpauth package), the
// secret sealed at rest, recovery codes, and the enrolment QR code.
//   - The secret is sealed with AES-256-GCM under a key derived from the console's secret file
//     (lib/keys.ts), with the account id as associated data: a copy of the database alone yields no
//     secret, and a sealed secret copied onto another account's row does not open.
//   - Recovery codes are stored as HMAC-SHA256 under another derived key: 80 random bits each, so
//     a keyed hash is enough (no scrypt), and a database copy alone cannot even test a guess.
//   - Codes: SHA-1, 6 digits, 30 s — what every authenticator app understands (RFC 6238 §4, the
//     Key URI format's defaults). One step either side is accepted (RFC 6238 §5.2: allow for
//     clock drift and the seconds it takes to type).
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { deriveKey } from './keys.ts';

const PERIOD_S = 30;
const DIGITS = 6;
const WINDOW = 1;
/** RFC 4226 §4 asks for at least 128 bits and recommends 160. */
const SECRET_BYTES = 20;
export const RECOVERY_CODES = 10;
/** Crockford's base32: no I, L, O, U, so a code copied by hand is read back the same. */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export interface TotpKeys {
  seal(accountId: number, secret: string): string;
  /** Throws when the sealed secret was altered or sealed under another console secret. */
  open(accountId: number, sealed: string): string;
  hashRecoveryCode(accountId: number, code: string): string;
}

const aad = (accountId: number) => Buffer.from(`mailmoat totp account ${accountId}`);

export function totpKeys(master: Buffer): TotpKeys {
  const sealKey = deriveKey(master, 'totp-secrets');
  const codeKey = deriveKey(master, 'recovery-codes');
  return {
    seal(accountId, secret) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', sealKey, iv);
      c.setAAD(aad(accountId));
      const data = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
      return ['v1', iv, c.getAuthTag(), data].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    },
    open(accountId, sealed) {
      const [version, iv, tag, data] = sealed.split('.');
      if (version !== 'v1' || !iv || !tag || !data) throw new Error('not a sealed TOTP secret');
      const d = createDecipheriv('aes-256-gcm', sealKey, Buffer.from(iv, 'base64url'));
      d.setAAD(aad(accountId));
      d.setAuthTag(Buffer.from(tag, 'base64url'));
      try {
        return Buffer.concat([d.update(Buffer.from(data, 'base64url')), d.final()]).toString('utf8');
      } catch {
        throw new Error(`the TOTP secret of account ${accountId} does not open with this console's key (another key file, or an altered row)`);
      }
    },
    hashRecoveryCode(accountId, code) {
      return createHmac('sha256', codeKey)
        .update(`${accountId}:${normalizeRecoveryCode(code)}`)
        .digest('hex');
    },
  };
}

/** A new random secret, base32 (what authenticator apps are given). */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

/** Only the six digits of a code, or null when the text cannot be one (spaces are allowed: "123 456"). */
export function asTotpCode(text: string): string | null {
  const compact = text.replace(/\s+/g, '');
  return /^\d{6}$/.test(compact) ? compact : null;
}

/** The time step whose code this is (within one step of `now`), or null. */
export function matchStep(secret: string, code: string, now: number): number | null {
  const token = asTotpCode(code);
  if (!token) return null;
  const delta = TOTP.validate({ token, secret: Secret.fromBase32(secret), digits: DIGITS, period: PERIOD_S, timestamp: now, window: WINDOW });
  return delta === null ? null : TOTP.counter({ period: PERIOD_S, timestamp: now }) + delta;
}

/** The otpauth:// URI an authenticator app reads from the QR code (Key URI format). */
export function otpauthUri(secret: string, issuer: string, label: string): string {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secret), digits: DIGITS, period: PERIOD_S, algorithm: 'SHA1' }).toString();
}

/** The QR code of `uri` as an SVG data: URL for an <img> (the console's CSP allows data: images, no inline markup needed). */
export async function qrDataUrl(uri: string): Promise<string> {
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}

/** The secret in groups of four, easier to type into an app by hand. */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, '$1 ');
}

/** New recovery codes, "xxxx-xxxx-xxxx-xxxx" (80 random bits each). */
export function newRecoveryCodes(n = RECOVERY_CODES): string[] {
  return Array.from({ length: n }, () => {
    const chars = Array.from({ length: 16 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('');
    return chars.replace(/(.{4})(?=.)/g, '$1-');
  });
}

/** A recovery code as typed: case, spaces and dashes do not matter, and I/L read as 1, O as 0 (Crockford). */
export function normalizeRecoveryCode(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\s-]+/g, '')
    .replace(/[il]/g, '1')
    .replace(/o/g, '0');
}
