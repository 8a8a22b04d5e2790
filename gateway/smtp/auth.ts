// AUTH on the submission listener: the console's local accounts (gateway/store/accounts.ts) with
// their scrypt hashes. An unknown or disabled user costs the same hash time as a wrong password,
// so timing does not tell which usernames exist.
import type { AccountStore } from '../store/accounts.ts';
import { dummyHash, verifyPassword } from '../passwords.ts';
import type { SubmissionUser } from '../../rules/frontline.ts';

export interface SubmissionAuth {
  /** The account if the credentials are right and it is enabled, else undefined. */
  authenticate(username: string, password: string): Promise<SubmissionUser | undefined>;
}

export function accountAuthenticator(accounts: AccountStore): SubmissionAuth {
  return {
    async authenticate(username, password) {
      const account = await accounts.byName(username);
      const hash = (account && !account.disabled && (await accounts.passwordHash(account.id))) || (await dummyHash());
      const ok = await verifyPassword(password, hash);
      if (!ok || !account || account.disabled) return undefined;
      return { username: account.username, role: account.role, domains: account.domains, addresses: account.addresses };
    },
  };
}
