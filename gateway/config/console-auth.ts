// console.auth: logins from an LDAP/AD directory and an OpenID Connect provider, and how their
// groups map to console roles (quarantine-ui/lib/login.ts, rules/role-mapping.ts). Local password
// accounts always work alongside them, so a superadmin can still log in while the directory is down.
// Secrets (the LDAP service password, the OIDC client secret) are read from a file or an
// environment variable, never written in the config file, and never logged.
import path from 'node:path';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** A secret kept out of the config file: a file (relative to the config file's folder) or an environment variable. */
const secretSource = z
  .object({
    /** A file holding the secret (surrounding whitespace is ignored). Keep it mode 0600. */
    file: z.string().min(1).optional(),
    /** The name of an environment variable holding the secret. */
    env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
      .optional(),
  })
  .strict()
  .refine((s) => (s.file === undefined) !== (s.env === undefined), { message: 'set exactly one of file or env' });
export type SecretSource = z.infer<typeof secretSource>;

const ldapSchema = z
  .object({
    /** ldap://host:389 or ldaps://host:636. */
    url: z.string().regex(/^ldaps?:\/\/[^/?#]+\/?$/i, 'expected ldap://host[:port] or ldaps://host[:port]'),
    /** Upgrade an ldap:// connection with StartTLS before any password is sent. */
    startTls: z.boolean().default(false),
    tls: z
      .object({
        /** PEM file of the CA that signed the directory's certificate (default: the system's CAs). */
        caFile: z.string().min(1).optional(),
        /** Check the directory's certificate. Only turn off for a test directory. */
        rejectUnauthorized: z.boolean().default(true),
      })
      .strict()
      .default({ rejectUnauthorized: true }),
    /**
     * Direct bind: the user's DN with `{username}` (escaped as a DN value), e.g.
     * "uid={username},ou=people,dc=example,dc=com". Set this or `search`.
     */
    bindDN: z.string().includes('{username}', { message: 'must contain {username}' }).optional(),
    /**
     * Search, then bind: a service account finds the user's entry under baseDN with userFilter
     * (needed for Active Directory, where the DN is not built from the login name).
     */
    search: z
      .object({ bindDN: z.string().min(1), password: secretSource })
      .strict()
      .optional(),
    /** Where users (and, without groupSearch.baseDN, groups) are looked for. */
    baseDN: z.string().min(1),
    /** `{username}` is replaced by the typed name, escaped (RFC 4515). AD: "(sAMAccountName={username})". */
    userFilter: z.string().includes('{username}', { message: 'must contain {username}' }).default('(uid={username})'),
    /** The attribute of the user's entry with their mail addresses (for the "user" role). */
    mailAttribute: z.string().min(1).default('mail'),
    /** The attribute of the user's entry that lists their groups' DNs (AD and the memberOf overlay). */
    groupAttribute: z.string().min(1).default('memberOf'),
    /** Also look groups up: entries under baseDN matching filter (`{dn}`: the user's DN, `{username}`), e.g. groupOfNames. */
    groupSearch: z
      .object({ baseDN: z.string().min(1).optional(), filter: z.string().min(1).default('(member={dn})') })
      .strict()
      .optional(),
    /** Per LDAP operation; a slower directory counts as unavailable. */
    timeoutMs: positiveInt.default(5_000),
    connectTimeoutMs: positiveInt.default(3_000),
  })
  .strict()
  .refine((l) => (l.bindDN === undefined) !== (l.search === undefined), { message: 'set exactly one of bindDN (direct bind) or search (service account)' });
export type LdapConfig = z.infer<typeof ldapSchema>;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const oidcSchema = z
  .object({
    /** The provider's issuer URL (its /.well-known/openid-configuration is read). https, or http on loopback. */
    issuer: z
      .string()
      .url()
      .refine((u) => {
        const x = new URL(u);
        return x.protocol === 'https:' || (x.protocol === 'http:' && LOOPBACK.has(x.hostname));
      }, 'expected an https:// URL (http:// only on loopback)'),
    clientId: z.string().min(1),
    /** Absent: a public client (PKCE only). The redirect URL to register is <console.publicUrl>auth/oidc/callback. */
    clientSecret: secretSource.optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid', 'profile', 'email']),
    /** The claim (ID token or userinfo) with the person's groups, matched against roleMapping. */
    groupsClaim: z.string().min(1).default('groups'),
    /** The claim that names the console account (lower-cased); its subject links it. */
    usernameClaim: z.string().min(1).default('preferred_username'),
    /**
     * An end user sees the mail of the `email` claim's address, so by default only a provider that
     * says `email_verified: true` vouches for it (a provider letting people type any address would
     * otherwise open someone else's quarantine). true: also trust an `email` sent without
     * `email_verified` — for providers that never send it (Entra ID) and check addresses themselves.
     */
    trustEmailWithoutVerifiedClaim: z.boolean().default(false),
    /** The login page's button text. */
    label: z.string().min(1).max(60).default('Log in with single sign-on'),
    /** Per request to the provider; a slower one counts as unavailable. */
    timeoutMs: positiveInt.default(10_000),
  })
  .strict();
export type OidcConfig = z.infer<typeof oidcSchema>;

/** One directory group (LDAP group DN, or a value of the OIDC groups claim) and what it grants. */
const roleRule = z
  .object({
    /** Compared without regard to case (and to spaces around "," and "=" in a DN). */
    group: z.string().min(1),
    role: z.enum(['superadmin', 'domainadmin', 'user']),
    /** The domains a domainadmin manages. */
    domains: z
      .array(
        z
          .string()
          .min(1)
          .transform((d) => d.toLowerCase()),
      )
      .default([]),
  })
  .strict()
  .refine((r) => r.role !== 'domainadmin' || r.domains.length > 0, { message: 'a domainadmin rule needs domains' });

export const consoleAuthSchema = z
  .object({
    ldap: ldapSchema.optional(),
    oidc: oidcSchema.optional(),
    /**
     * Group → role. The highest role of a person's groups wins; a domain admin gets the domains
     * of all their domainadmin groups; a user gets their own mail addresses from the directory.
     * A person none of whose groups is listed cannot log in. The account is created or updated
     * at each login.
     */
    roleMapping: z.array(roleRule).default([]),
  })
  .strict();
export type ConsoleAuthConfig = z.infer<typeof consoleAuthSchema>;

/** The auth section with its file paths made absolute against the config file's folder. */
export function resolveConsoleAuthPaths(auth: ConsoleAuthConfig, base: string): ConsoleAuthConfig {
  const abs = (p: string | undefined) => p && path.resolve(base, p);
  const secret = (s: SecretSource | undefined) => s && (s.file ? { file: abs(s.file) } : s);
  return {
    ...auth,
    ldap: auth.ldap && {
      ...auth.ldap,
      tls: { ...auth.ldap.tls, caFile: abs(auth.ldap.tls.caFile) },
      search: auth.ldap.search && { ...auth.ldap.search, password: secret(auth.ldap.search.password)! },
    },
    oidc: auth.oidc && { ...auth.oidc, clientSecret: secret(auth.oidc.clientSecret) },
  };
}
