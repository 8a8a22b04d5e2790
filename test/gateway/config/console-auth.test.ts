// console.auth in the config schema: what a careful admin can and cannot write.
import { describe, expect, it } from 'vitest';
import { consoleAuthSchema, resolveConsoleAuthPaths } from '../../../gateway/config/console-auth.ts';

const LDAP = { url: 'ldaps://ldap.example.com', baseDN: 'dc=example,dc=com' };
const errorOf = (v: unknown) => {
  const r = consoleAuthSchema.safeParse(v);
  return r.success ? 'accepted' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
};

describe('console.auth', () => {
  it('takes a search-mode directory with defaults, and a direct-bind one', () => {
    const a = consoleAuthSchema.parse({ ldap: { ...LDAP, search: { bindDN: 'cn=svc,dc=example,dc=com', password: { env: 'LDAP_PW' } } } });
    expect(a.ldap).toMatchObject({
      userFilter: '(uid={username})',
      groupAttribute: 'memberOf',
      mailAttribute: 'mail',
      startTls: false,
      tls: { rejectUnauthorized: true },
      timeoutMs: 5000,
    });
    expect(errorOf({ ldap: { ...LDAP, bindDN: 'uid={username},ou=people,dc=example,dc=com' } })).toBe('accepted');
  });

  it.each([
    ['neither bind mode', { ldap: LDAP }, 'set exactly one of bindDN'],
    [
      'both bind modes',
      { ldap: { ...LDAP, bindDN: 'uid={username},dc=x', search: { bindDN: 'cn=svc', password: { env: 'X' } } } },
      'set exactly one of bindDN',
    ],
    ['a DN template without the name', { ldap: { ...LDAP, bindDN: 'uid=admin,dc=x' } }, 'must contain {username}'],
    [
      'a service password in both a file and the environment',
      { ldap: { ...LDAP, search: { bindDN: 'cn=svc', password: { env: 'X', file: '/x' } } } },
      'set exactly one of file or env',
    ],
    ['a password written in the config file', { ldap: { ...LDAP, search: { bindDN: 'cn=svc', password: 'secret' } } }, 'search.password'],
    ['an http directory URL', { ldap: { ...LDAP, url: 'http://ldap.example.com', bindDN: 'uid={username}' } }, 'expected ldap://'],
    ['an http issuer off loopback', { oidc: { issuer: 'http://sso.example.com', clientId: 'x' } }, 'expected an https:// URL'],
    ['a domainadmin rule without domains', { roleMapping: [{ group: 'g', role: 'domainadmin' }] }, 'a domainadmin rule needs domains'],
    ['an unknown role', { roleMapping: [{ group: 'g', role: 'root' }] }, 'roleMapping.0.role'],
  ])('refuses %s', (_name, value, message) => {
    expect(errorOf(value)).toContain(message);
  });

  it('accepts an http issuer on loopback and resolves secret files against the config folder', () => {
    const a = consoleAuthSchema.parse({ oidc: { issuer: 'http://127.0.0.1:9000', clientId: 'x', clientSecret: { file: 'oidc.secret' } } });
    expect(resolveConsoleAuthPaths(a, '/etc/mailmoat').oidc!.clientSecret).toEqual({ file: '/etc/mailmoat/oidc.secret' });
  });
});
