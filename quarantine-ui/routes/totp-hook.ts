// What the login paths need from the second factor, apart from its routes (routes/totp.ts), so that
// routes/auth.ts can call it without an import cycle:
//   - askForSecondFactor: the password login's hook, after the password was found right.
// Accounts of an identity provider (LDAP, OIDC: account.authSource) follow its policy, not ours.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import type { Account } from '../../gateway/store/accounts.ts';
import { secondStep } from '../../rules/second-factor.ts';

declare module '@fastify/secure-session' {
  interface SessionData {
    /** A login that passed the password and waits for the second factor (no session yet). */
    totpPending: { accountId: number; until: number; next: string };
  }
}

/** Long enough to open an authenticator app; short, because the password alone was given. */
export const PENDING_MS = 5 * 60_000;

/**
 * The hook after a correct local password (routes/auth.ts): with TOTP on, the login waits for the
 * code, this has answered (a redirect to /login/totp) and says true; false: the login goes on.
 * (A boolean, not the reply: a reply is a thenable, and an async function would await it.)
 */
export async function askForSecondFactor(ctx: Ctx, req: FastifyRequest, reply: FastifyReply, account: Account, next: string): Promise<boolean> {
  const rec = await ctx.deps.totp.get(account.id);
  const step = secondStep({
    role: account.role,
    requiredFor: ctx.deps.config.console.requireTotpFor,
    enrolled: Boolean(rec && rec.enabledAt !== null),
    external: account.authSource !== 'local',
  });
  if (step !== 'code') return false;
  req.session.regenerate();
  req.session.set('totpPending', { accountId: account.id, until: ctx.deps.now() + PENDING_MS, next });
  void reply.redirect('/login/totp', 303);
  return true;
}
