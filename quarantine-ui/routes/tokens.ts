// API tokens (quarantine-ui/api/): made in the console by a superadmin (any role and domains) or
// a domain admin (a domain admin token for some of their own domains), shown once, revocable.
// A token acts with at most its maker's rights at the time of each request (api/auth.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx, ConsoleUser } from '../ctx.ts';
import type { ApiToken, TokenRole } from '../../gateway/store/api-tokens.ts';
import { field } from '../lib/forms.ts';

const mayManage = (user: ConsoleUser, t: ApiToken) => user.account.role === 'superadmin' || t.createdBy === user.account.id;

export async function registerTokenRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const page = async (req: FastifyRequest, reply: FastifyReply, extra: { created?: { name: string; secret: string }; error?: string } = {}, status = 200) => {
    const user = ctx.user(req);
    const tokens = (await ctx.deps.tokens.list()).filter((t) => mayManage(user, t));
    const own = user.account.role === 'superadmin' ? Object.keys(ctx.deps.config.domains).sort() : user.account.domains;
    return ctx.render(req, reply, 'tokens', { title: 'API tokens', tokens, own, superadmin: user.account.role === 'superadmin', ...extra }, status);
  };
  const adminsOnly = async (req: FastifyRequest, reply: FastifyReply) => {
    if (ctx.user(req).account.role !== 'user') return false;
    await ctx.audit(req, { action: 'token', target: req.url.split('?')[0]!, outcome: 'denied', detail: 'end users have no API tokens' });
    void ctx.notFound(req, reply);
    return true;
  };

  app.get('/tokens', async (req, reply) => ((await adminsOnly(req, reply)) ? reply : page(req, reply)));

  app.post('/tokens', async (req, reply) => {
    if (await adminsOnly(req, reply)) return reply;
    const user = ctx.user(req);
    const body = req.body as Record<string, unknown>;
    const name = field(body, 'name', 100).trim();
    const role: TokenRole = user.account.role === 'superadmin' && field(body, 'role', 20) === 'superadmin' ? 'superadmin' : 'domainadmin';
    const asked = [
      ...new Set(
        field(body, 'domains', 2000)
          .toLowerCase()
          .split(/[\s,]+/)
          .filter(Boolean),
      ),
    ];
    const allowed = user.account.role === 'superadmin' ? Object.keys(ctx.deps.config.domains) : user.account.domains;
    const domains = role === 'superadmin' ? [] : asked.length ? asked : user.account.role === 'domainadmin' ? [...allowed] : [];
    const outside = domains.filter((d) => !allowed.includes(d));
    const error = !name
      ? 'Give the token a name (what uses it).'
      : outside.length
        ? `Not your domain${outside.length > 1 ? 's' : ''}: ${outside.join(', ')}`
        : role === 'domainadmin' && domains.length === 0
          ? 'Name at least one domain.'
          : undefined;
    if (error) {
      await ctx.audit(req, { action: 'token-create', target: name || '(no name)', outcome: outside.length ? 'denied' : 'failed', detail: error });
      return page(req, reply, { error }, 400);
    }
    const { token, secret } = await ctx.deps.tokens.create({ name, role, domains, createdBy: user.account.id, createdByName: user.account.username });
    await ctx.audit(req, {
      action: 'token-create',
      target: `${token.id}: ${name}`,
      detail: role === 'superadmin' ? 'superadmin token' : `domain admin token for ${domains.join(', ')}`,
    });
    return page(req, reply, { created: { name, secret } });
  });

  app.post('/tokens/:id/revoke', async (req, reply) => {
    if (await adminsOnly(req, reply)) return reply;
    const id = Number.parseInt((req.params as { id: string }).id, 10);
    const token = Number.isSafeInteger(id) ? await ctx.deps.tokens.get(id) : undefined;
    if (!token || !mayManage(ctx.user(req), token)) {
      await ctx.audit(req, { action: 'token-revoke', target: String(id), outcome: 'denied', detail: token ? 'token of another user' : 'no such token' });
      return ctx.notFound(req, reply);
    }
    await ctx.deps.tokens.revoke(id);
    await ctx.audit(req, { action: 'token-revoke', target: `${id}: ${token.name}` });
    ctx.flash(req, 'ok', `Token “${token.name}” revoked.`);
    return reply.redirect('/tokens', 303);
  });
}
