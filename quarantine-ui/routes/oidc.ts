// Single sign-on with OpenID Connect (openid-client): the authorization code flow with PKCE,
// state and nonce. /auth/oidc/start keeps the three secrets in this browser's session cookie
// (encrypted, HttpOnly) and sends the browser to the provider; /auth/oidc/callback accepts the
// answer only in the same session, once, within ten minutes, with the state it was sent with —
// so a code obtained by someone else cannot be planted in a victim's browser (login CSRF), and
// a stolen code is useless without the verifier. The person's account comes from their groups
// claim (lib/login.ts provision, rules/role-mapping.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import type { OidcConfig } from '../../gateway/config/console-auth.ts';
import { consolePublicUrl, type Ctx } from '../ctx.ts';
import { readSecret } from '../lib/secrets.ts';
import { provision } from '../lib/login.ts';
import { safeNext, startSession } from './auth.ts';

declare module '@fastify/secure-session' {
  interface SessionData {
    oidc: { state: string; nonce: string; verifier: string; next: string; at: number };
  }
}

const PENDING_MS = 10 * 60_000;
export const PROVIDER_UNAVAILABLE = 'The single sign-on provider is unavailable. Try again in a few minutes, or log in with a password.';

/** The provider's discovered configuration, fetched at first use and again after a failure. */
function providerOf(cfg: OidcConfig): () => Promise<oidc.Configuration> {
  const secret = cfg.clientSecret && readSecret(cfg.clientSecret, 'console.auth.oidc.clientSecret');
  const issuer = new URL(cfg.issuer);
  let discovered: Promise<oidc.Configuration> | undefined;
  return () => {
    discovered ??= oidc
      .discovery(issuer, cfg.clientId, secret, secret ? oidc.ClientSecretPost(secret) : oidc.None(), {
        // The schema allows http:// only for a provider on loopback.
        execute: issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
        timeout: Math.ceil(cfg.timeoutMs / 1000),
      })
      .catch((err: unknown) => {
        discovered = undefined;
        throw err;
      });
    return discovered;
  };
}

const claimStrings = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export async function registerOidcRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const cfg = ctx.deps.config.console.auth.oidc;
  if (!cfg) return;
  const provider = providerOf(cfg);
  const base = consolePublicUrl(ctx.deps.config);
  const redirectUri = new URL('auth/oidc/callback', base).href;
  const login = ctx.deps.config.console.login;
  const rateLimit = { max: login.maxPerIp, timeWindow: login.windowMinutes * 60_000 };

  const refuse = async (req: FastifyRequest, reply: FastifyReply, o: { message: string; detail: string; target?: string; status?: number }) => {
    await ctx.audit(req, { action: 'login', target: o.target ?? null, outcome: 'denied', detail: o.detail.slice(0, 500) });
    return ctx.render(req, reply, 'login', { title: 'Log in', next: '/', username: '', error: o.message, oidcLabel: cfg.label }, o.status ?? 401);
  };

  app.get('/auth/oidc/start', { config: { rateLimit } }, async (req, reply) => {
    let config: oidc.Configuration;
    try {
      config = await provider();
    } catch (err) {
      req.log.warn({ err }, 'OIDC discovery failed');
      return refuse(req, reply, { message: PROVIDER_UNAVAILABLE, detail: `oidc unavailable: ${(err as Error).message}`, status: 503 });
    }
    const pending = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
      next: safeNext((req.query as Record<string, string>).next),
      at: ctx.deps.now(),
    };
    req.session.set('oidc', pending);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: cfg.scopes.join(' '),
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    });
    return reply.redirect(url.href, 303);
  });

  app.get('/auth/oidc/callback', { config: { rateLimit } }, async (req, reply) => {
    const pending = req.session.get('oidc');
    req.session.set('oidc', undefined); // one answer per start, whatever it is
    const query = req.query as Record<string, string | undefined>;
    if (!pending || ctx.deps.now() - pending.at > PENDING_MS) {
      return refuse(req, reply, {
        message: 'This sign-on was not started in this browser, or took too long. Start again.',
        detail: 'oidc: no sign-on pending in this session',
        status: 400,
      });
    }
    if (query.state !== pending.state) {
      return refuse(req, reply, {
        message: 'This sign-on answer does not belong to the sign-on started in this browser. Start again.',
        detail: 'oidc: state mismatch',
        status: 400,
      });
    }
    if (query.error) {
      return refuse(req, reply, {
        message: 'The sign-on provider did not log you in. Start again.',
        detail: `oidc: provider answered ${String(query.error).slice(0, 100)}`,
      });
    }
    let claims: Record<string, unknown>;
    try {
      const config = await provider();
      const callback = new URL(`auth/oidc/callback${req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''}`, base);
      const tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      claims = { ...tokens.claims() };
      // Providers often put groups and names in the userinfo answer only; its subject must match the ID token's.
      if (config.serverMetadata().userinfo_endpoint) claims = { ...(await oidc.fetchUserInfo(config, tokens.access_token, String(claims.sub))), ...claims };
    } catch (err) {
      // A provider that cannot be reached is an outage; any other error is a refused answer.
      const outage = err instanceof TypeError || (err as { name?: string }).name === 'TimeoutError' || (err as { code?: string }).code === 'OAUTH_TIMEOUT';
      req.log.warn({ err }, 'OIDC code exchange failed');
      return refuse(
        req,
        reply,
        outage
          ? { message: PROVIDER_UNAVAILABLE, detail: `oidc unavailable: ${(err as Error).message}`, status: 503 }
          : { message: 'The sign-on answer could not be verified. Start again.', detail: `oidc: ${(err as Error).message}`, status: 400 },
      );
    }
    const subject = String(claims.sub);
    const username = claimStrings(claims[cfg.usernameClaim])[0] ?? '';
    const vouched = claims.email_verified === true || (claims.email_verified === undefined && cfg.trustEmailWithoutVerifiedClaim);
    const mail = vouched ? claimStrings(claims.email) : [];
    const result = await provision(
      { accounts: ctx.deps.accounts, auth: ctx.deps.config.console.auth },
      { source: 'oidc', id: subject },
      username,
      claimStrings(claims[cfg.groupsClaim]),
      mail,
    );
    if (!result.ok) return refuse(req, reply, { message: result.message, detail: result.detail, target: username || subject });
    await startSession(ctx, req, result.account.id);
    req.user = null; // the audit entry below names the user explicitly
    await ctx.deps.audit.record({
      actor: result.account.username,
      action: 'login',
      messageId: null,
      target: null,
      ip: req.ip,
      outcome: 'ok',
      detail: result.detail,
    });
    return reply.redirect(pending.next, 303);
  });
}
