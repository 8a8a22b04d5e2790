// The REST API under /api/v1: what the console's pages do, for a provider's own customer panel
// and scripts. Decisions, for every route:
//   - Bearer tokens only (routes/tokens.ts makes them): the session cookie is ignored here, so a
//     browser cannot be made to call the API for its user and there is no CSRF check to make.
//   - A token acts as a console user of its role and domains, never beyond what its maker may do
//     now (a disabled maker, or a domain taken from them, takes the token's rights with it).
//   - Tenant isolation as on the pages: another tenant's object is the same 404 as a missing
//     one, and the attempt is in the audit log (actor "<maker>/token:<name>").
//   - OpenAPI is generated from the route schemas (@fastify/swagger): /api/docs/json, and
//     /api/docs to read it in a browser.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Ctx, ConsoleUser } from '../ctx.ts';
import type { Account } from '../../gateway/store/accounts.ts';
import type { ApiToken } from '../../gateway/store/api-tokens.ts';
import { scopeOf } from '../scope.ts';
import { registerMessageApi } from './messages.ts';
import { registerSettingsApi } from './settings.ts';
import { registerNumbersApi } from './numbers.ts';
import { ApiError } from './errors.ts';

/** The console user a token acts as, or undefined when its maker can no longer give it rights. */
export function tokenUser(token: ApiToken, maker: Account | undefined): ConsoleUser | undefined {
  if (!maker || maker.disabled || maker.role === 'user') return undefined;
  if (token.role === 'superadmin' && maker.role !== 'superadmin') return undefined;
  const domains = token.role === 'superadmin' ? [] : maker.role === 'superadmin' ? token.domains : token.domains.filter((d) => maker.domains.includes(d));
  if (token.role === 'domainadmin' && domains.length === 0) return undefined;
  const account: Account = { ...maker, username: `${maker.username}/token:${token.name}`, role: token.role, domains, addresses: [] };
  return { account, scope: scopeOf(account), sessionId: '' };
}

export async function registerApi(app: FastifyInstance, ctx: Ctx): Promise<void> {
  await app.register(async (api) => {
    await api.register(fastifySwagger, {
      openapi: {
        info: {
          title: 'mailmoat API',
          version: '1',
          description:
            'Quarantine, lists, domains, policy, message log, numbers over time and the queue of a mailmoat gateway. Authenticate with an API token made in the console (API tokens page): Authorization: Bearer mmt_…',
        },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
      },
    });
    await api.register(fastifySwaggerUi, { routePrefix: '/api/docs' });
    await api.register(
      async (v1) => {
        v1.addHook('onRequest', async (req, reply) => authenticate(ctx, req, reply));
        v1.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
          if (err instanceof ApiError) return reply.code(err.statusCode).send({ error: err.message, ...(err.details ? { details: err.details } : {}) });
          const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
          if (status === 500) req.log.error({ err }, 'API error');
          return reply.code(status).send({ error: status === 500 ? 'internal error; it has been logged' : err.message });
        });
        v1.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not found' }));
        await registerMessageApi(v1, ctx);
        await registerSettingsApi(v1, ctx);
        await registerNumbersApi(v1, ctx);
      },
      { prefix: '/api/v1' },
    );
  });
}

async function authenticate(ctx: Ctx, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  req.user = null; // a console session cookie means nothing here
  const m = /^Bearer ([\x21-\x7e]{1,200})$/i.exec(req.headers.authorization ?? '');
  const token = m ? await ctx.deps.tokens.verify(m[1]!) : undefined;
  const user = token && tokenUser(token, await ctx.deps.accounts.get(token.createdBy));
  if (!user) {
    await ctx.audit(req, {
      action: 'api-auth',
      target: `${req.method} ${req.url.split('?')[0]}`,
      outcome: 'denied',
      detail: !m ? 'no bearer token' : token ? 'the token’s maker has no such rights any more' : 'unknown or revoked token',
    });
    return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid API token is required (Authorization: Bearer …)' });
  }
  req.user = user;
  return undefined;
}
