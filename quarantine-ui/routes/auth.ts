// Login, logout and the user's own password. A login is rate-limited per client IP (HTTP 429)
// and per username and client address with back-off (rules/login-throttle.ts: failures elsewhere
// never lock the real user out; counted for unknown names too so the answer never tells whether a
// user exists); an unknown user costs the same scrypt time as a known one.
// A successful login throws away the old session contents (and its CSRF secret) and issues a new
// session id.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { hashPassword, verifyPassword } from '../../gateway/passwords.ts';
import { field } from '../lib/forms.ts';
import { loginThrottle } from '../../rules/login-throttle.ts';
import { authenticate } from '../lib/login.ts';
import { ldapDirectory, ldapTransportWarnings } from '../lib/ldap.ts';
import { askForSecondFactor } from './totp-hook.ts';

export const MIN_PASSWORD = 10;

/** Only a path on this console: "/x", never "//host" or "/\host" (open redirect). */
export function safeNext(next: string | undefined): string {
  return next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) && !next.startsWith('/login') ? next : '/';
}

export async function startSession(ctx: Ctx, req: FastifyRequest, accountId: number): Promise<void> {
  req.session.regenerate();
  const s = await ctx.deps.accounts.createSession(accountId, ctx.deps.config.console.sessionTtlMinutes * 60_000);
  req.session.set('sid', s.id);
}

export async function registerAuthRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { accounts } = ctx.deps;
  const cfg = ctx.deps.config.console.login;
  const windowMs = cfg.windowMinutes * 60_000;
  const ldap = ctx.deps.config.console.auth.ldap;
  const directory = ldap && ldapDirectory(ldap);
  for (const warning of ldap ? ldapTransportWarnings(ldap) : []) ctx.deps.logger.warn(warning);
  const oidcLabel = ctx.deps.config.console.auth.oidc?.label;

  app.get('/login', async (req, reply) => {
    if (req.user) return reply.redirect('/', 303);
    return ctx.render(req, reply, 'login', { title: 'Log in', next: safeNext((req.query as Record<string, string>).next), username: '', oidcLabel });
  });

  app.post(
    '/login',
    {
      config: {
        rateLimit: {
          max: cfg.maxPerIp,
          timeWindow: windowMs,
          // A synchronous callback: the audit write is not waited for, and a failure is logged.
          onExceeded: (req: FastifyRequest) => {
            ctx
              .audit(req, { action: 'login', outcome: 'denied', detail: 'rate limit per client address' })
              .catch((err: unknown) => req.log.error({ err }, 'could not write the audit log'));
          },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as Record<string, unknown>;
      const username = field(body, 'username', 100).trim().toLowerCase();
      const password = field(body, 'password', 1024);
      const next = safeNext(field(body, 'next', 2000));
      const refuse = async (message: string, detail: string) => {
        await ctx.audit(req, { action: 'login', target: username, outcome: 'denied', detail });
        return ctx.render(req, reply, 'login', { title: 'Log in', next, username, error: message, oidcLabel }, 401);
      };
      if (!username || !password) return refuse('Enter your username and password.', 'empty form');
      const now = ctx.deps.now();
      const throttle = loginThrottle({
        now,
        ...(await accounts.loginFailureStats(username, req.ip, now - windowMs)),
        maxFailures: cfg.maxFailuresPerUser,
        windowMs,
      });
      if (!throttle.allowed) return refuse(throttle.reason, `too many failures for this username (back-off ${Math.ceil(throttle.retryAfterMs / 1000)} s)`);
      // Local password first, then the LDAP directory (lib/login.ts); throttled alike.
      const result = await authenticate({ accounts, directory, auth: ctx.deps.config.console.auth }, username, password);
      if (!result.ok) {
        if (result.failure) await accounts.recordLoginFailure(username, req.ip);
        return refuse(result.message, result.detail);
      }
      const account = result.account;
      // With TOTP on: no session and no failures cleared before the code (routes/totp.ts).
      if (await askForSecondFactor(ctx, req, reply, account, next)) return reply;
      // Only this address's failures: a login elsewhere must not give an attacker fresh tries.
      await accounts.clearLoginFailures(username, req.ip);
      await startSession(ctx, req, account.id);
      req.user = null; // the audit entry below names the user explicitly
      await ctx.deps.audit.record({
        actor: account.username,
        action: 'login',
        messageId: null,
        target: null,
        ip: req.ip,
        outcome: 'ok',
        detail: result.detail,
      });
      return reply.redirect(next, 303);
    },
  );

  app.post('/logout', async (req, reply) => {
    const sid = req.session.get('sid');
    if (sid) await accounts.deleteSession(sid);
    if (req.user) await ctx.audit(req, { action: 'logout' });
    req.session.delete();
    return reply.redirect('/login', 303);
  });

  const requireUser = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.user) return reply.redirect('/login', 303);
  };

  app.get('/account', { onRequest: requireUser }, async (req, reply) => ctx.render(req, reply, 'account', { title: 'Your account' }));

  app.post('/account/password', { onRequest: requireUser }, async (req, reply) => {
    const user = ctx.user(req);
    const body = req.body as Record<string, unknown>;
    const current = field(body, 'current', 1024);
    const next = field(body, 'password', 1024);
    const again = field(body, 'confirm', 1024);
    const fail = async (error: string) => {
      await ctx.audit(req, { action: 'password-change', target: user.account.username, outcome: 'denied', detail: error });
      return ctx.render(req, reply, 'account', { title: 'Your account', error }, 400);
    };
    if (user.account.authSource !== 'local') return fail('Your password is kept by your directory or sign-on provider; change it there.');
    if (!(await verifyPassword(current, (await accounts.passwordHash(user.account.id)) ?? ''))) return fail('The current password is wrong.');
    if (next.length < MIN_PASSWORD) return fail(`The new password must have at least ${MIN_PASSWORD} characters.`);
    if (next !== again) return fail('The two new passwords differ.');
    await accounts.setPasswordHash(user.account.id, await hashPassword(next)); // ends every session of the account
    await startSession(ctx, req, user.account.id);
    await ctx.audit(req, { action: 'password-change', target: user.account.username });
    ctx.flash(req, 'ok', 'Your password has been changed; your other sessions have been logged out.');
    return reply.redirect('/account', 303);
  });
}
