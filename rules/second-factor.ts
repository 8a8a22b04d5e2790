// What a console login needs besides the password: the second factor (TOTP) of local accounts.
//
// A password alone is what phishing and password reuse take; a superadmin's login reaches every
// tenant's mail. So an account with TOTP on gets no session at all until a code is given, and the
// roles listed in console.requireTotpFor cannot do anything but set TOTP up until they have.
// Logins through an identity provider (LDAP, OpenID Connect) are left to that provider's own
// policy: TOTP here is for the console's local accounts.

export type SecondStep =
  /** No second factor: a full session. */
  | 'none'
  /** Ask for a code (or a recovery code) before there is any session. */
  | 'code'
  /** A session that can only set TOTP up (and log out) until it has. */
  | 'enrol';

export interface SecondFactorFacts {
  role: string;
  /** console.requireTotpFor: the roles that must have TOTP. */
  requiredFor: readonly string[];
  /** TOTP is on for the account (enrolment confirmed with a code). */
  enrolled: boolean;
  /** The session came from an identity provider, not from the local password. */
  external: boolean;
}

export function secondStep(f: SecondFactorFacts): SecondStep {
  if (f.external) return 'none';
  if (f.enrolled) return 'code';
  return f.requiredFor.includes(f.role) ? 'enrol' : 'none';
}
