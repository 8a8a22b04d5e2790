// Release links from quarantine digests: no login, the signed single-use token is the authority,
// and only for the one message and recipient it was issued for. GET shows what would be released
// (safe for link scanners); POST (with a CSRF token) releases.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../app.ts';
import { checkToken } from '../lib/digest.ts';

export async function registerDigestRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const deps = { digests: ctx.deps.digests, secret: ctx.deps.secret, now: ctx.deps.now };

  const check = async (req: FastifyRequest, reply: FastifyReply) => {
    const value = (req.params as { token: string }).token;
    const c = await checkToken(deps, value);
    const m = c.ok ? await ctx.deps.store.get(c.token.messageId) : undefined;
    // The link is bound to one recipient: it only works while every recipient is that one.
    const bound = c.ok && m && m.rcptTo.every((r) => r.toLowerCase() === c.token.recipient);
    if (!c.ok || !m || !bound) {
      await ctx.deps.audit.record({ actor: 'digest-link', action: 'digest-release', messageId: c.ok ? c.token.messageId : null, target: null, ip: req.ip, outcome: 'denied', detail: c.ok ? 'message gone or not bound to the recipient' : c.reason });
      void ctx.render(req, reply, 'digest', { title: 'Release from quarantine', error: c.ok ? 'This message cannot be released with this link.' : c.reason, value: null, m: null }, c.ok ? 404 : 410);
      return undefined;
    }
    return { token: c.token, m, value };
  };

  app.get('/d/:token', async (req, reply) => {
    const r = await check(req, reply);
    if (!r) return reply;
    return ctx.render(req, reply, 'digest', { title: 'Release from quarantine', m: r.m, value: r.value, error: r.m.status === 'quarantined' ? null : `This message is no longer in quarantine (${r.m.status}).` });
  });

  app.post('/d/:token', { config: { rateLimit: { max: 30, timeWindow: 60_000 } } }, async (req, reply) => {
    const r = await check(req, reply);
    if (!r) return reply;
    const actor = `digest:${r.token.recipient}`;
    if (r.m.status !== 'quarantined' || !(await ctx.deps.digests.useToken(r.token.id))) {
      await ctx.deps.audit.record({ actor, action: 'digest-release', messageId: r.m.id, target: null, ip: req.ip, outcome: 'denied', detail: 'not quarantined or link used' });
      return ctx.render(req, reply, 'digest', { title: 'Release from quarantine', m: r.m, value: null, error: 'This message is no longer in quarantine, or the link has been used.' }, 409);
    }
    const result = await ctx.deps.release(r.m.id, actor);
    await ctx.deps.audit.record({ actor, action: 'digest-release', messageId: r.m.id, target: null, ip: req.ip, outcome: result.ok ? 'ok' : 'failed', detail: result.ok ? '' : result.reason });
    return ctx.render(req, reply, 'digest', {
      title: 'Release from quarantine',
      m: r.m,
      value: null,
      done: result.ok,
      error: result.ok ? null : `The message could not be released: ${result.reason}`,
    });
  });
}
