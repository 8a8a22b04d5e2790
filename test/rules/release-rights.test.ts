// The release rights as a table: every class × role × right under the defaults, then the global and
// per-domain patches, several classes and several recipient domains (rules/release-rights.ts).
import { describe, expect, it } from 'vitest';
import { decideRight, RIGHTS, RIGHTS_CLASSES, type ConsoleRole, type RightsPatch } from '../../rules/release-rights.ts';

const ADMIN_ONLY = ['virus', 'banned', 'malformed', 'unscannable', 'spoofed'];
const ROLES: ConsoleRole[] = ['superadmin', 'domainadmin', 'user'];
const may = (
  role: ConsoleRole,
  classes: (string | null)[],
  o: { global?: RightsPatch; domains?: RightsPatch[] } = {},
  right: (typeof RIGHTS)[number] = 'release',
) => decideRight(right, { role, classes, global: o.global ?? {}, domains: o.domains ?? [{}] }).allowed;

describe('decideRight', () => {
  it.each(RIGHTS_CLASSES.flatMap((cls) => ROLES.flatMap((role) => RIGHTS.map((right) => [cls, role, right] as const))))(
    'default: %s, %s, %s',
    (cls, role, right) => {
      const expected = role !== 'user' || !ADMIN_ONLY.includes(cls);
      expect(may(role, [cls], {}, right)).toBe(expected);
    },
  );

  it('fails closed on an unknown or missing class', () => {
    expect(may('user', ['poison'])).toBe(false);
    expect(may('user', [null])).toBe(false);
    expect(may('user', [])).toBe(false);
    expect(may('domainadmin', ['poison'])).toBe(true);
  });

  it('takes the strictest class and the strictest recipient domain', () => {
    expect(may('user', ['spam', 'virus'])).toBe(false);
    expect(may('user', ['spam'], { domains: [{}, { spam: { release: 'admin' } }] })).toBe(false);
    expect(decideRight('release', { role: 'user', classes: ['spam', 'banned'], global: {}, domains: [{}] })).toEqual({
      allowed: false,
      level: 'admin',
      reason: 'Only an administrator may release a message held as banned.',
    });
  });

  it('a domain patch overrides the global one, which overrides the built-in table', () => {
    const global: RightsPatch = { virus: { release: 'superadmin' }, spam: { release: 'admin' } };
    expect(may('domainadmin', ['virus'], { global })).toBe(false);
    expect(may('superadmin', ['virus'], { global })).toBe(true);
    expect(may('user', ['spam'], { global })).toBe(false);
    expect(may('user', ['spam'], { global, domains: [{ spam: { release: 'recipient' } }] })).toBe(true);
    expect(may('user', ['virus'], { global: { virus: { preview: 'recipient' } } }, 'preview')).toBe(true);
    expect(may('user', ['virus'], { global: { virus: { preview: 'recipient' } } }, 'download')).toBe(false);
    expect(decideRight('release', { role: 'domainadmin', classes: ['virus'], global, domains: [{}] })).toMatchObject({
      reason: 'Only the superadmin may release a message held as virus.',
    });
  });
});
