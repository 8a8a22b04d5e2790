// The second factor of local accounts (TOTP, RFC 6238) at login, and the gate that keeps a user
// whose role requires it (console.requireTotpFor) on the enrolment page until it is set up.
// Decisions (rules/second-factor.ts says when a second factor is due):
//   - After the right password an account with TOTP on gets NO session: only a note in the
//     encrypted cookie ("this browser gave the password of account N", valid PENDING_MS; set by
//     routes/totp-hook.ts, the password login's hook). Every
//     page and the API see an anonymous visitor until the code is right; then a new session id.
//   - Codes: ±1 time step; each step accepted once per account (replay: the newest step used is
//     kept, store/totp.ts). A recovery code works once.
//   - Wrong codes count as failed logins of the username from that address, under the same
//     throttle as passwords (rules/login-throttle.ts), and the failures are not cleared by the
//     right password: only by the right code (else a stolen password would buy endless guesses).
//   - Audited: every failed code, a recovery code used, and (routes/totp-account.ts) enrolment,
//     disabling, new recovery codes, a superadmin's reset.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { secondStep } from '../../rules/second-factor.ts';
import { loginThrottle } from '../../rules/login-throttle.ts';
import { field } from '../lib/forms.ts';
import { asTotpCode, matchStep, totpKeys } from '../lib/totp.ts';
import { startSession } from './auth.ts';
import { registerTotpAccountRoutes, type TotpCtx } from './totp-account.ts';

/**
 * The routes a user who must set TOTP up may still reach (and logout, static files, and digest
 * links: their token is their authority, the session adds nothing, and they work without one).
 */
const DURING_ENROLMENT = new Set(['/account/totp', '/account/totp/begin', '/account/totp/confirm', '/logout', '/static/:file', '/favicon.ico', '/d/:token']);

function totpCtx(ctx: Ctx): TotpCtx {
  const { accounts, totp } = ctx.deps;
  const keys = totpKeys(ctx.deps.secret);
  const login = ctx.deps.config.console.login;
  const windowMs = login.windowMinutes * 60_000;
  return {
    keys,
    async throttled(username, ip) {
      const now = ctx.deps.now();
      const t = loginThrottle({ now, ...(await accounts.loginFailureStats(username, ip, now - windowMs)), maxFailures: login.maxFailuresPerUser, windowMs });
      return t.allowed ? null : t.reason;
    },
    async use(account, text) {
      const rec = await totp.get(account.id);
      if (!rec || rec.enabledAt === null) return { ok: false, detail: 'TOTP is not on for this account' };
      const code = asTotpCode(text);
      if (code) {
        const step = matchStep(keys.open(account.id, rec.sealed), code, ctx.deps.now());
        if (step === null) return { ok: false, detail: 'wrong code' };
        if (!(await totp.useStep(account.id, step))) return { ok: false, detail: 'code used before (or older than the last one used)' };
        return { ok: true, kind: 'code' };
      }
      if (text.trim() && (await totp.useRecoveryCode(account.id, keys.hashRecoveryCode(account.id, text)))) return { ok: true, kind: 'recovery code' };
      return { ok: false, detail: 'wrong or used recovery code' };
    },
    auditAs(req, actor, action, outcome, target, detail = '') {
      return ctx.deps.audit.record({ actor, action, messageId: null, target, ip: req.ip, outcome, detail });
    },
    async mustEnrol(req) {
      const user = req.user;
      const requiredFor = ctx.deps.config.console.requireTotpFor;
      if (!user || !requiredFor.includes(user.account.role)) return false;
      const rec = await totp.get(user.account.id);
      return (
        secondStep({
          role: user.account.role,
          requiredFor,
          enrolled: Boolean(rec && rec.enabledAt !== null),
          external: user.account.authSource !== 'local',
        }) === 'enrol'
      );
    },
  };
}

export async function registerTotpRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const t = totpCtx(ctx);
  const { accounts } = ctx.deps;
  const login = ctx.deps.config.console.login;

  // Runs after app.ts has resolved the user: a user who must set TOTP up reaches nothing else.
  app.addHook('onRequest', async (req, reply) => {
    if (!req.user || DURING_ENROLMENT.has(req.routeOptions.url ?? '') || req.url.startsWith('/api/')) return;
    if (!(await t.mustEnrol(req))) return;
    if (req.method === 'GET' || req.method === 'HEAD') return reply.redirect('/account/totp', 303);
    await ctx.audit(req, { action: 'totp-required', outcome: 'denied', target: req.url.split('?')[0], detail: 'two-step login not set up yet' });
    return ctx.render(
      req,
      reply,
      'error',
      { title: 'Set up two-step login first', message: 'Your role requires two-step login. Set it up on your account page before doing anything else.' },
      403,
    );
  });

  /** The pending login of this browser, if it has not expired and its account can still log in. */
  const pendingLogin = async (req: FastifyRequest) => {
    const p = req.session.get('totpPending');
    if (!p || p.until <= ctx.deps.now()) return undefined;
    const account = await accounts.get(p.accountId);
    return account && !account.disabled ? { ...p, account } : undefined;
  };
  const startAgain = (req: FastifyRequest, reply: FastifyReply) => {
    req.session.set('totpPending', undefined);
    ctx.flash(req, 'error', 'Your login took too long or has ended. Log in again.');
    return reply.redirect('/login', 303);
  };

  app.get('/login/totp', async (req, reply) => {
    const p = await pendingLogin(req);
    if (!p) return startAgain(req, reply);
    return ctx.render(req, reply, 'login-totp', { title: 'Two-step login', username: p.account.username });
  });

  app.post(
    '/login/totp',
    {
      config: {
        rateLimit: {
          max: login.maxPerIp,
          timeWindow: login.windowMinutes * 60_000,
          onExceeded: (req: FastifyRequest) => {
            ctx
              .audit(req, { action: 'totp-code', outcome: 'denied', detail: 'rate limit per client address' })
              .catch((err: unknown) => req.log.error({ err }, 'could not write the audit log'));
          },
        },
      },
    },
    async (req, reply) => {
      const p = await pendingLogin(req);
      if (!p) return startAgain(req, reply);
      const { account } = p;
      const refuse = async (error: string, detail: string) => {
        await t.auditAs(req, account.username, 'totp-code', 'denied', account.username, detail);
        return ctx.render(req, reply, 'login-totp', { title: 'Two-step login', username: account.username, error }, 401);
      };
      const wait = await t.throttled(account.username, req.ip);
      if (wait) return refuse(wait, 'too many failures for this username');
      const used = await t.use(account, field(req.body as Record<string, unknown>, 'code', 100));
      if (!used.ok) {
        await accounts.recordLoginFailure(account.username, req.ip);
        return refuse('That code is not right, or it was used already. Enter the code your app shows now, or a recovery code.', used.detail);
      }
      await accounts.clearLoginFailures(account.username, req.ip);
      await startSession(ctx, req, account.id); // a new session id; the pending note goes with the old contents
      if (used.kind === 'recovery code') {
        const left = await ctx.deps.totp.recoveryCodesLeft(account.id);
        await t.auditAs(req, account.username, 'totp-recovery', 'ok', account.username, `recovery code used; ${left} left`);
        ctx.flash(req, left > 2 ? 'ok' : 'error', `You logged in with a recovery code; ${left} left. New ones: Your account → Two-step login.`);
      }
      await t.auditAs(req, account.username, 'login', 'ok', null, `password and ${used.kind}`);
      return reply.redirect(p.next, 303);
    },
  );

  await registerTotpAccountRoutes(app, ctx, t);
}
