// The second factor's cryptography (quarantine-ui/lib/totp.ts): codes as RFC 6238 defines them
// (its Appendix B vectors, SHA-1, last six digits), the ±1 step window, the sealed secret bound to
// its account and key, recovery codes and how they may be typed.
import { describe, expect, it } from 'vitest';
import { groupSecret, matchStep, newRecoveryCodes, newTotpSecret, normalizeRecoveryCode, otpauthUri, totpKeys } from '../../quarantine-ui/lib/totp.ts';

/** RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890", in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP codes', () => {
  it.each([
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
    [20000000000, '353130'],
  ])('RFC 6238 vector at T=%i s: %s (the last six of its eight digits)', (t, code) => {
    expect(matchStep(RFC_SECRET, code, t * 1000)).toBe(Math.floor(t / 30));
  });

  it('accepts one step either side, not two, and nothing but six digits', () => {
    const t = 1234567890_000; // step 41152263, code 005924
    expect(matchStep(RFC_SECRET, '005924', t + 30_000)).toBe(41152263);
    expect(matchStep(RFC_SECRET, '005924', t - 30_000)).toBe(41152263);
    expect(matchStep(RFC_SECRET, '005924', t + 60_000)).toBeNull();
    expect(matchStep(RFC_SECRET, '005924', t - 60_000)).toBeNull();
    expect(matchStep(RFC_SECRET, '005 924', t)).toBe(41152263);
    for (const bad of ['', '5924', '0059240', '00592a', '005924\n1']) expect(matchStep(RFC_SECRET, bad, t), bad).toBeNull();
  });

  it('makes 160-bit secrets and an otpauth URI apps read', () => {
    const s = newTotpSecret();
    expect(s).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(s);
    expect(groupSecret('ABCDEFGHIJ')).toBe('ABCD EFGH IJ');
    expect(otpauthUri(RFC_SECRET, 'mailmoat mx.test', 'root')).toBe(
      `otpauth://totp/mailmoat%20mx.test:root?issuer=mailmoat%20mx.test&secret=${RFC_SECRET}&algorithm=SHA1&digits=6&period=30`,
    );
  });
});

describe('sealed secrets', () => {
  const keys = totpKeys(Buffer.alloc(32, 1));
  it('open with the same key and account only, and differ each time', () => {
    const a = keys.seal(7, RFC_SECRET);
    expect(a).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(a).not.toContain(RFC_SECRET);
    expect(keys.seal(7, RFC_SECRET)).not.toBe(a);
    expect(keys.open(7, a)).toBe(RFC_SECRET);
    expect(() => keys.open(8, a)).toThrow(/does not open/);
    expect(() => totpKeys(Buffer.alloc(32, 2)).open(7, a)).toThrow(/does not open/);
    const parts = a.split('.');
    const flipped = Buffer.from(parts[3]!, 'base64url');
    flipped[0]! ^= 1;
    expect(() => keys.open(7, [...parts.slice(0, 3), flipped.toString('base64url')].join('.'))).toThrow(/does not open/);
    expect(() => keys.open(7, 'JBSWY3DPEHPK3PXP')).toThrow(/not a sealed TOTP secret/);
  });
});

describe('recovery codes', () => {
  it('are ten different 16-character codes of an unambiguous alphabet', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/);
  });

  it('are read back however they are typed, and hashed per account', () => {
    expect(normalizeRecoveryCode(' AB1O-l0I9 ')).toBe('ab101019'); // O is 0, I and L are 1
    const keys = totpKeys(Buffer.alloc(32, 1));
    expect(keys.hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs')).toBe(keys.hashRecoveryCode(1, 'ABCD EFGH JKMN PQRS'));
    expect(keys.hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs')).not.toBe(keys.hashRecoveryCode(2, 'abcd-efgh-jkmn-pqrs'));
    expect(keys.hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs')).not.toBe(totpKeys(Buffer.alloc(32, 2)).hashRecoveryCode(1, 'abcd-efgh-jkmn-pqrs'));
  });
});
