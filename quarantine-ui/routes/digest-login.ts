// The "open your quarantine" link of a digest: a recipient logs in without a password. Accounts
// are created on first use, not by hand: the end-user account named after the address, seeing
// that one address. It has no password (an unusable hash: verifyPassword refuses it), so the
// link (or an administrator setting a password) is the only way in.
//
// Only a local end-user account named exactly after the address, and seeing that address only, is
// ever logged into: a link must not open an administrator's account, a hand-made account that sees
// other addresses too, nor an LDAP/OIDC account (its provider's policy, e.g. its MFA, decides who
// gets in). An account with TOTP on still asks for the code (routes/totp-hook.ts): a digest in a
// mailbox is the first factor only.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { LINK_ONLY_PASSWORD, type Account } from '../../gateway/store/accounts.ts';
import type { ReleaseToken } from '../../gateway/store/digests.ts';
import { loginLinkPossible } from '../lib/digest-links.ts';
import { startSession } from './auth.ts';
import { askForSecondFactor } from './totp-hook.ts';

async function accountFor(ctx: Ctx, address: string): Promise<{ account: Account; created: boolean } | { error: string }> {
  const { accounts } = ctx.deps;
  if (!loginLinkPossible(address)) return { error: 'This address cannot have a console account of its own; ask your administrator to release your mail.' };
  let account = await accounts.byName(address);
  let created = false;
  if (!account) {
    try {
      account = await accounts.create({ username: address, role: 'user', addresses: [address], passwordHash: LINK_ONLY_PASSWORD });
      created = true;
    } catch {
      // Another link for the same address won the race: use what it created.
      account = await accounts.byName(address);
    }
  }
  if (!account) return { error: 'Your account could not be created; try again.' };
  if (account.disabled) return { error: 'Your account has been disabled; ask your administrator.' };
  if (account.role !== 'user' || account.addresses.length !== 1 || account.addresses[0] !== address)
    return { error: 'This address belongs to an account that sees more than this mailbox: log in with its password.' };
  if (account.authSource !== 'local') return { error: 'This address belongs to an account of your directory or sign-on provider: log in through it.' };
  return { account, created };
}

export async function loginByLink(ctx: Ctx, req: FastifyRequest, reply: FastifyReply, token: ReleaseToken): Promise<FastifyReply> {
  const actor = `digest:${token.recipient}`;
  if (!(await ctx.deps.digests.useToken(token.id))) {
    return ctx.render(
      req,
      reply,
      'digest',
      { title: 'Open your quarantine', action: 'login', m: null, value: null, error: 'This link has been used already.' },
      410,
    );
  }
  const found = await accountFor(ctx, token.recipient);
  if ('error' in found) {
    await ctx.deps.audit.record({
      actor,
      action: 'login',
      messageId: null,
      target: token.recipient,
      ip: req.ip,
      outcome: 'denied',
      detail: `digest link: ${found.error}`,
    });
    return ctx.render(req, reply, 'digest', { title: 'Open your quarantine', action: 'login', m: null, value: null, error: found.error }, 403);
  }
  if (found.created)
    await ctx.deps.audit.record({
      actor,
      action: 'user-create',
      messageId: null,
      target: token.recipient,
      ip: req.ip,
      outcome: 'ok',
      detail: 'end-user account created on first use of a digest link',
    });
  if (await askForSecondFactor(ctx, req, reply, found.account, '/quarantine')) return reply;
  await startSession(ctx, req, found.account.id);
  await ctx.deps.audit.record({
    actor: found.account.username,
    action: 'login',
    messageId: null,
    target: null,
    ip: req.ip,
    outcome: 'ok',
    detail: 'digest link',
  });
  return reply.redirect('/quarantine', 303);
}
