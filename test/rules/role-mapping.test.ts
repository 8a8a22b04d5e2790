// Group → role for external logins (rules/role-mapping.ts), as a table of cases.
import { describe, expect, it } from 'vitest';
import { grantFromGroups, normalizeGroup, type RoleRule } from '../../rules/role-mapping.ts';

const RULES: RoleRule[] = [
  { group: 'cn=mail-admins-a,ou=groups,dc=example,dc=test', role: 'domainadmin', domains: ['a.test'] },
  { group: 'CN=Mail Admins B, OU=Groups, DC=example, DC=test', role: 'domainadmin', domains: ['B.test', 'c.test'] },
  { group: 'mail-users', role: 'user', domains: [] },
  { group: 'mail-root', role: 'superadmin', domains: [] },
];

describe('grantFromGroups', () => {
  it.each([
    ['one admin group', ['cn=mail-admins-a,ou=groups,dc=example,dc=test'], [], { ok: true, role: 'domainadmin', domains: ['a.test'], addresses: [] }],
    [
      'two admin groups: the union of their domains, DN spacing and case ignored',
      ['cn=mail admins b,ou=groups,dc=example,dc=test', 'CN=MAIL-ADMINS-A,OU=GROUPS,DC=EXAMPLE,DC=TEST'],
      [],
      { ok: true, role: 'domainadmin', domains: ['a.test', 'b.test', 'c.test'] },
    ],
    [
      'the highest role wins',
      ['mail-users', 'mail-root', 'cn=mail-admins-a,ou=groups,dc=example,dc=test'],
      ['x@a.test'],
      { ok: true, role: 'superadmin', domains: [], addresses: [] },
    ],
    [
      'admin beats user',
      ['mail-users', 'cn=mail-admins-a,ou=groups,dc=example,dc=test'],
      ['x@a.test'],
      { ok: true, role: 'domainadmin', domains: ['a.test'], addresses: [] },
    ],
    [
      'a user gets their valid addresses, lower case',
      ['mail-users'],
      ['Alice@A.test', 'not an address', 'alice@a.test', 'b@b.test'],
      { ok: true, role: 'user', addresses: ['alice@a.test', 'b@b.test'] },
    ],
    ['a user without an address is refused', ['mail-users'], ['nonsense'], { ok: false, reason: 'your directory entry has no mail address' }],
    [
      'no mapped group',
      ['sales', 'cn=mail-admins-a,ou=other,dc=example,dc=test'],
      ['d@a.test'],
      { ok: false, reason: 'none of your groups gives access to this console' },
    ],
    ['no groups at all', [], [], { ok: false }],
    ['a substring of a mapped group is not the group', ['mail-user', 'mail-rootx'], ['d@a.test'], { ok: false }],
  ])('%s', (_name, groups, mail, expected) => {
    expect(grantFromGroups(groups, mail, RULES)).toMatchObject(expected);
  });

  it('normalizes a DN for comparison only', () => {
    expect(normalizeGroup(' CN=Mail Admins , OU=Groups ')).toBe('cn=mail admins,ou=groups');
  });
});
