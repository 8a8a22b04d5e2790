// The quarantine web console as a Fastify instance: server-rendered Eta pages that work without
// JavaScript. This file wires the security plumbing shared by every page; the pages live in
// routes/. Decisions made here, for every route:
//   - Sessions: an encrypted cookie (@fastify/secure-session) that carries only a random session
//     id; the session row in the database is what makes it valid (logout/disable revoke at once).
//     A new session id at every login. Cookie: HttpOnly, SameSite=Lax, Path=/; when the console's
//     public URL is https it is "__Host-mailmoat" with Secure. On a plain-HTTP loopback console
//     (the demo) a Secure cookie would not be sent back, so it is "mailmoat" without Secure.
//   - CSRF: every POST route gets the token check at preValidation (after the body is parsed;
//     at onRequest a form-field token would always be missing, dependencies.md §9). State only
//     changes on POST.
//   - CSP: no inline script or style anywhere (script-src/style-src 'self'); frames only from
//     ourselves (the sandboxed preview); nothing may frame the console.
//   - Authentication by encapsulation: the logged-in routes are registered in a plugin whose
//     onRequest hook refuses anonymous requests before their bodies are read.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fastifySecureSession from '@fastify/secure-session';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyHelmet from '@fastify/helmet';
import fastifyFormbody from '@fastify/formbody';
import fastifyMultipart from '@fastify/multipart';
import fastifyRateLimit from '@fastify/rate-limit';
import { Eta } from 'eta';
import type { ConsoleDeps } from './deps.ts';
import { consolePublicUrl, type Ctx } from './ctx.ts';
import { deriveKey } from './lib/keys.ts';
import { displayText, formatBytes, formatTime } from './lib/text.ts';
import { scopeOf } from './scope.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerOidcRoutes } from './routes/oidc.ts';
import { registerQuarantineRoutes } from './routes/quarantine.ts';
import { registerListRoutes } from './routes/lists.ts';
import { registerLogRoutes } from './routes/log.ts';
import { registerPoisonRoutes } from './routes/poison.ts';
import { registerLearnerRoutes } from './routes/learner.ts';
import { registerReportRoutes } from './routes/report.ts';
import { registerDomainRoutes } from './routes/domains.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerMonitoringRoutes } from './routes/monitoring.ts';
import { registerDigestRoutes } from './routes/digest.ts';
import { registerRequestRoutes } from './routes/requests.ts';
import { registerDomainAdminRoutes } from './routes/domain-admin.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerApi } from './api/index.ts';
import { registerStatsRoutes } from './routes/stats.ts';
import { registerQueueRoutes } from './routes/queue.ts';
import { registerTotpRoutes } from './routes/totp.ts';

declare module '@fastify/secure-session' {
  interface SessionData {
    sid: string;
    flash: { kind: 'ok' | 'error'; text: string }[];
    _csrf: string;
  }
}

const VIEWS = path.join(import.meta.dirname, 'views');
const STATIC = path.join(import.meta.dirname, 'static');
const STATIC_FILES: Record<string, string> = { 'console.css': 'text/css; charset=utf-8', 'console.js': 'text/javascript; charset=utf-8' };

export const CONSOLE_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  frameSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  connectSrc: ["'self'"],
};

export function cookieSettings(publicUrl: string): { name: string; secure: boolean } {
  const https = new URL(publicUrl).protocol === 'https:';
  return https ? { name: '__Host-mailmoat', secure: true } : { name: 'mailmoat', secure: false };
}

export async function buildConsole(deps: ConsoleDeps): Promise<FastifyInstance> {
  const cfg = deps.config.console;
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    // Request URLs can carry digest tokens: no automatic request logging (see onResponse below).
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: cfg.trustProxy,
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.decorateRequest('user', null);
  app.decorateRequest('pendingRequests', 0);

  const eta = new Eta({ views: VIEWS, cache: true, autoEscape: true, autoTrim: false });
  const cookie = cookieSettings(consolePublicUrl(deps.config));

  await app.register(fastifyHelmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CONSOLE_CSP },
    crossOriginEmbedderPolicy: false,
    hsts: cookie.secure ? { maxAge: 31536000 } : false,
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'sameorigin' },
  });
  await app.register(fastifySecureSession, {
    key: deriveKey(deps.secret, 'session-cookie'),
    cookieName: cookie.name,
    expiry: cfg.sessionTtlMinutes * 60,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: cookie.secure },
  });
  await app.register(fastifyCsrf, {
    sessionPlugin: '@fastify/secure-session',
    // Multipart fields arrive as { value } objects (attachFieldsToBody: true).
    getToken: (req) => {
      const b = req.body as Record<string, unknown> | undefined;
      const t = b?._csrf as { value?: unknown } | string | undefined;
      const v = typeof t === 'object' && t !== null ? t.value : t;
      return typeof v === 'string' ? v : ((req.headers['x-csrf-token'] as string | undefined) ?? '');
    },
  });
  await app.register(fastifyFormbody, { bodyLimit: cfg.upload.maxFileBytes + 64 * 1024 });
  await app.register(fastifyMultipart, {
    attachFieldsToBody: true,
    // An oversized file is reported as such on the results page instead of failing the whole upload.
    throwFileSizeLimit: false,
    limits: { fileSize: cfg.upload.maxFileBytes, files: cfg.upload.maxFiles, fields: 20, fieldSize: cfg.upload.maxFileBytes, parts: cfg.upload.maxFiles + 20 },
  });
  await app.register(fastifyRateLimit, { global: false });

  const routes: string[] = [];
  app.decorate('consoleRoutes', routes);
  // Every POST route, wherever it is registered, checks the CSRF token once its body is parsed.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) if (m !== 'HEAD') routes.push(`${m} ${route.url}`);
    // The API authenticates by bearer token only, never by cookie: no CSRF to guard against there.
    if (!methods.includes('POST') || route.url.startsWith('/api/')) return;
    const existing = route.preValidation ? (Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation]) : [];
    route.preValidation = [app.csrfProtection, ...existing];
  });

  // Who is logged in: the session id in the cookie must name a live session of an enabled account.
  app.addHook('onRequest', async (req) => {
    const sid = req.session.get('sid');
    if (!sid) return;
    const session = await deps.accounts.getSession(sid);
    const account = session && (await deps.accounts.get(session.accountId));
    if (!session || !account || account.disabled) {
      req.session.set('sid', undefined);
      return;
    }
    req.user = { account, scope: scopeOf(account), sessionId: sid };
  });

  app.addHook('onSend', async (req, reply, payload) => {
    // Pages show mail; nothing of it should sit in a shared browser cache.
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    req.log.debug(
      { method: req.method, route: req.routeOptions.url, status: reply.statusCode, user: req.user?.account.username, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });

  const ctx: Ctx = {
    deps,
    render(req, reply, view, data = {}, status = 200) {
      const flash = req.session.get('flash') ?? [];
      if (flash.length) req.session.set('flash', undefined);
      const html = eta.render(view, {
        ...data,
        user: req.user,
        pendingRequests: req.pendingRequests,
        csrf: reply.generateCsrf(),
        flash,
        path: req.routeOptions.url ?? '',
        h: helpers,
        learner: Boolean(deps.learner),
        productName: 'mailmoat',
      });
      return reply.code(status).type('text/html; charset=utf-8').send(html);
    },
    audit(req, e) {
      return deps.audit.record({
        actor: req.user?.account.username ?? '-',
        action: e.action,
        messageId: e.messageId ?? null,
        target: e.target ?? null,
        ip: req.ip,
        outcome: e.outcome ?? 'ok',
        detail: e.detail ?? '',
      });
    },
    flash(req, kind, text) {
      req.session.set('flash', [...(req.session.get('flash') ?? []), { kind, text: text.slice(0, 1000) }]);
    },
    notFound(req, reply) {
      return ctx.render(req, reply, 'error', { title: 'Not found', message: 'There is no such page or message, or it is not yours to see.' }, 404);
    },
    user(req) {
      if (!req.user) throw new Error('route without the auth hook');
      return req.user;
    },
  };

  app.setErrorHandler(async (err: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (err.code === 'FST_CSRF_INVALID_TOKEN' || err.code === 'FST_CSRF_MISSING_SECRET') {
      await ctx.audit(req, { action: 'csrf', outcome: 'denied', target: `${req.method} ${req.url.split('?')[0]}`, detail: err.code });
      return ctx.render(
        req,
        reply,
        'error',
        {
          title: 'Form expired',
          message: 'This form was not sent from a current console page (its security token is missing or out of date). Go back, reload the page and try again.',
        },
        403,
      );
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'console error');
    const message =
      status === 429
        ? 'Too many attempts. Wait a few minutes and try again.'
        : status === 413
          ? 'The upload is larger than allowed.'
          : status === 500
            ? 'Something went wrong on the server; it has been logged.'
            : 'The request could not be handled.';
    return ctx.render(req, reply, 'error', { title: status === 429 ? 'Slow down' : 'Error', message }, status);
  });
  app.setNotFoundHandler((req, reply) => ctx.notFound(req, reply));

  app.get('/favicon.ico', (_req, reply) => reply.code(204).send());
  app.get('/static/:file', (req, reply) => {
    const file = (req.params as { file: string }).file;
    const type = STATIC_FILES[file];
    if (!type) return ctx.notFound(req, reply);
    return reply
      .type(type)
      .header('cache-control', 'public, max-age=3600')
      .send(readFileSync(path.join(STATIC, file)));
  });

  // Public: login, digest links, monitoring (IP-restricted).
  await registerAuthRoutes(app, ctx);
  await registerOidcRoutes(app, ctx);
  // The second factor at login, the account pages that set it up, and the gate for required roles.
  await registerTotpRoutes(app, ctx);
  await registerDigestRoutes(app, ctx);
  await registerMonitoringRoutes(app, ctx);
  // Token-authenticated REST API and its OpenAPI document (api/index.ts).
  await registerApi(app, ctx);

  // Logged in.
  await app.register(async (scoped) => {
    scoped.addHook('onRequest', async (req, reply) => {
      if (req.user) return;
      if (req.method === 'GET') return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      await ctx.audit(req, { action: 'anonymous-post', outcome: 'denied', target: req.url.split('?')[0] });
      return ctx.render(req, reply, 'error', { title: 'Logged out', message: 'Your session has ended. Log in again.' }, 401);
    });
    scoped.addHook('onRequest', async (req) => {
      if (req.method === 'GET' && req.user && req.user.account.role !== 'user') req.pendingRequests = await deps.requests.countPending(req.user.scope);
    });
    scoped.get('/', async (req, reply) => reply.redirect(ctx.user(req).account.role === 'user' ? '/quarantine' : '/dashboard', 303));
    await registerQuarantineRoutes(scoped, ctx);
    await registerRequestRoutes(scoped, ctx);
    await registerListRoutes(scoped, ctx);
    await registerLogRoutes(scoped, ctx);
    await registerPoisonRoutes(scoped, ctx);
    await registerReportRoutes(scoped, ctx);
    await registerDashboardRoutes(scoped, ctx);
    await registerDomainRoutes(scoped, ctx);
    await registerDomainAdminRoutes(scoped, ctx);
    await registerTokenRoutes(scoped, ctx);
    await registerAdminRoutes(scoped, ctx);
    await registerLearnerRoutes(scoped, ctx);
    await registerStatsRoutes(scoped, ctx);
    await registerQueueRoutes(scoped, ctx);
  });

  return app;
}

/** Helpers for templates: everything shown from mail goes through h.text (bidi/control-safe). */
export const helpers = {
  text: displayText,
  time: formatTime,
  bytes: formatBytes,
  score(report: unknown): string {
    const s = (report as { spam?: { status?: string; score?: number } } | null)?.spam;
    return s?.status === 'scored' && typeof s.score === 'number' ? s.score.toFixed(1) : '–';
  },
  /** A query string from the current filters with one value changed (for paging links). */
  query(filters: Record<string, string | undefined>, change: Record<string, string | number | undefined>): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, ...change })) if (v !== undefined && v !== '') q.set(k, String(v));
    const s = q.toString();
    return s ? `?${s}` : '';
  },
};
