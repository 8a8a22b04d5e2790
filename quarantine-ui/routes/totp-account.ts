// Setting the second factor up, and taking it away, on the user's own account page (/account/totp),
// and a superadmin's reset of another user's. Rules:
//   - Enrolment is switched on only by a current code from the new secret (so a mistyped or
//     unscanned secret never locks anyone out); the recovery codes are shown once, on that answer.
//   - Turning it off, or making new recovery codes, needs a current code (or recovery code); turning
//     it off may also be confirmed with the password (the phone is lost). Wrong answers count as
//     failed logins under the login throttle.
//   - Enrolment, disabling and a reset end the account's other sessions (a session opened before
//     with the password alone must not outlive the change).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { verifyPassword } from '../../gateway/passwords.ts';
import { field } from '../lib/forms.ts';
import { groupSecret, matchStep, newRecoveryCodes, newTotpSecret, otpauthUri, qrDataUrl, type TotpKeys } from '../lib/totp.ts';
import type { Account } from '../../gateway/store/accounts.ts';
import type { AuditOutcome } from '../../gateway/store/audit.ts';
import { startSession } from './auth.ts';

export type SecondFactorUse = { ok: true; kind: 'code' | 'recovery code' } | { ok: false; detail: string };

/** What the second-factor routes share: the keys, the throttle, checking (and using up) a code. */
export interface TotpCtx {
  keys: TotpKeys;
  /** The throttle's refusal for this username from this address, or null when it may try. */
  throttled(username: string, ip: string): Promise<string | null>;
  /** Checks a current code or a recovery code of an account with TOTP on, and uses it up. */
  use(account: Account, text: string): Promise<SecondFactorUse>;
  auditAs(req: FastifyRequest, actor: string, action: string, outcome: AuditOutcome, target: string | null, detail?: string): Promise<void>;
  /** Whether this logged-in user may only set TOTP up. */
  mustEnrol(req: FastifyRequest): Promise<boolean>;
}

export async function registerTotpAccountRoutes(app: FastifyInstance, ctx: Ctx, t: TotpCtx): Promise<void> {
  const { accounts, totp } = ctx.deps;
  const issuer = `mailmoat ${ctx.deps.config.hostname}`;

  const requireUser = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.user) return;
    if (req.method === 'GET') return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    return ctx.render(req, reply, 'error', { title: 'Logged out', message: 'Your session has ended. Log in again.' }, 401);
  };

  /** The page for the user's current state: TOTP on, an enrolment waiting for its code, or neither. */
  const page = async (req: FastifyRequest, reply: FastifyReply, data: Record<string, unknown> = {}, status = 200) => {
    const { account } = ctx.user(req);
    const rec = await totp.get(account.id);
    const base = { title: 'Two-step login', required: await t.mustEnrol(req), error: null, ...data };
    if (rec && rec.enabledAt !== null)
      return ctx.render(req, reply, 'account-totp', { ...base, state: 'on', since: rec.enabledAt, left: await totp.recoveryCodesLeft(account.id) }, status);
    if (!rec) return ctx.render(req, reply, 'account-totp', { ...base, state: account.authSource === 'local' ? 'off' : 'external' }, status);
    const secret = t.keys.open(account.id, rec.sealed);
    const uri = otpauthUri(secret, issuer, account.username);
    return ctx.render(req, reply, 'account-totp', { ...base, state: 'pending', secret: groupSecret(secret), qr: await qrDataUrl(uri) }, status);
  };

  /** New recovery codes for the account: stored hashed, returned in clear to be shown once. */
  const recoveryCodes = (accountId: number) => {
    const codes = newRecoveryCodes();
    return { codes, hashes: codes.map((c) => t.keys.hashRecoveryCode(accountId, c)) };
  };

  app.get('/account/totp', { onRequest: requireUser }, async (req, reply) => page(req, reply));

  // A new secret (again: "start over" replaces one not yet confirmed). A POST, so that no link can
  // change what the user is about to scan.
  app.post('/account/totp/begin', { onRequest: requireUser }, async (req, reply) => {
    const { account } = ctx.user(req);
    // Logins through a directory or sign-on provider never ask for a code here (rules/second-factor.ts):
    // a second factor set up for them would only look like protection.
    if (account.authSource !== 'local') {
      await ctx.audit(req, {
        action: 'totp-enrol',
        target: account.username,
        outcome: 'denied',
        detail: `${account.authSource} account: its provider's second factor applies`,
      });
      ctx.flash(req, 'error', 'Your logins go through your directory or sign-on provider: set up two-step login there.');
      return reply.redirect('/account/totp', 303);
    }
    if (!(await totp.begin(account.id, t.keys.seal(account.id, newTotpSecret())))) ctx.flash(req, 'error', 'Two-step login is on already.');
    return reply.redirect('/account/totp', 303);
  });

  app.post('/account/totp/confirm', { onRequest: requireUser }, async (req, reply) => {
    const { account } = ctx.user(req);
    const rec = await totp.get(account.id);
    if (!rec || rec.enabledAt !== null) return reply.redirect('/account/totp', 303);
    const step = matchStep(t.keys.open(account.id, rec.sealed), field(req.body as Record<string, unknown>, 'code', 100), ctx.deps.now());
    if (step === null) {
      await ctx.audit(req, { action: 'totp-enrol', target: account.username, outcome: 'denied', detail: 'wrong code' });
      return page(req, reply, { error: 'That code does not match. Check the time on your phone and enter the code the app shows now.' }, 400);
    }
    const { codes, hashes } = recoveryCodes(account.id);
    if (!(await totp.enable(account.id, step, hashes))) return reply.redirect('/account/totp', 303);
    await accounts.deleteSessionsOf(account.id);
    await startSession(ctx, req, account.id);
    await ctx.audit(req, { action: 'totp-enrol', target: account.username });
    return ctx.render(req, reply, 'account-totp', { title: 'Two-step login', state: 'codes', codes, enrolled: true, required: false, error: null });
  });

  /** Checks the answer to "prove it is you" on the disable and new-codes forms; audits a failure. */
  const confirmed = async (
    req: FastifyRequest,
    action: string,
    o: { password: boolean },
  ): Promise<{ ok: true; how: string } | { ok: false; error: string }> => {
    const { account } = ctx.user(req);
    const body = req.body as Record<string, unknown>;
    const code = field(body, 'code', 100);
    const password = o.password ? field(body, 'password', 1024) : '';
    const deny = async (error: string, detail: string) => {
      await ctx.audit(req, { action, target: account.username, outcome: 'denied', detail });
      return { ok: false as const, error };
    };
    const wait = await t.throttled(account.username, req.ip);
    if (wait) return deny(wait, 'too many failures for this username');
    if (password && (await verifyPassword(password, (await accounts.passwordHash(account.id)) ?? ''))) return { ok: true, how: 'password' };
    if (code) {
      const used = await t.use(account, code);
      if (used.ok) return { ok: true, how: used.kind };
      await accounts.recordLoginFailure(account.username, req.ip);
      return deny('That code is not right, or it was used already.', used.detail);
    }
    if (password) await accounts.recordLoginFailure(account.username, req.ip);
    return deny(o.password ? 'Enter a current code, or your password.' : 'Enter a current code.', password ? 'wrong password' : 'no code given');
  };

  app.post('/account/totp/disable', { onRequest: requireUser }, async (req, reply) => {
    const { account } = ctx.user(req);
    const c = await confirmed(req, 'totp-disable', { password: true });
    if (!c.ok) return page(req, reply, { error: c.error }, 400);
    await totp.remove(account.id);
    await accounts.deleteSessionsOf(account.id);
    await startSession(ctx, req, account.id);
    await ctx.audit(req, { action: 'totp-disable', target: account.username, detail: `confirmed with ${c.how}` });
    ctx.flash(req, 'ok', 'Two-step login is off; your other sessions have been logged out.');
    return reply.redirect('/account/totp', 303);
  });

  app.post('/account/totp/recovery-codes', { onRequest: requireUser }, async (req, reply) => {
    const { account } = ctx.user(req);
    const c = await confirmed(req, 'totp-recovery-codes', { password: false });
    if (!c.ok) return page(req, reply, { error: c.error }, 400);
    const { codes, hashes } = recoveryCodes(account.id);
    await totp.replaceRecoveryCodes(account.id, hashes);
    await ctx.audit(req, { action: 'totp-recovery-codes', target: account.username, detail: `confirmed with ${c.how}` });
    return ctx.render(req, reply, 'account-totp', { title: 'Two-step login', state: 'codes', codes, enrolled: false, required: false, error: null });
  });

  // A superadmin takes another user's second factor away (a lost phone and no recovery codes):
  // that user's sessions end, and their next login asks for the password only (or sends them to
  // set TOTP up again, when their role requires it).
  app.post('/users/:id/totp-reset', { onRequest: requireUser }, async (req, reply) => {
    const me = ctx.user(req).account;
    if (me.role !== 'superadmin') {
      await ctx.audit(req, { action: 'admin-page', target: req.url.split('?')[0], outcome: 'denied', detail: 'not a superadmin' });
      return ctx.notFound(req, reply);
    }
    const account = await accounts.get(Number((req.params as { id: string }).id));
    if (!account) return ctx.notFound(req, reply);
    const removed = await totp.remove(account.id);
    if (account.id !== me.id) await accounts.deleteSessionsOf(account.id);
    await ctx.audit(req, {
      action: 'totp-reset',
      target: account.username,
      outcome: removed ? 'ok' : 'failed',
      detail: removed ? 'second factor removed; sessions ended' : 'had no second factor',
    });
    ctx.flash(
      req,
      removed ? 'ok' : 'error',
      removed ? `Two-step login of ${account.username} removed; their sessions were ended.` : `${account.username} had no two-step login.`,
    );
    return reply.redirect('/users', 303);
  });
}
