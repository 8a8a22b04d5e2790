// Release links from quarantine digests: no login, the signed single-use token is the authority,
// and only for the one message and recipient it was issued for. GET shows what would be released
// (safe for link scanners); POST (with a CSRF token) releases — or, for a class the recipient may
// not release (lib/rights.ts), asks the domain's administrators to (routes/requests.ts). A release
// post for such a class (a forged form) is refused with 403 and audited.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../app.ts';
import { checkToken } from '../lib/digest.ts';
import { field } from '../lib/forms.ts';
import { decide } from '../lib/rights.ts';
import { requestRelease } from './requests.ts';

const TITLE = 'Release from quarantine';

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
      void ctx.render(req, reply, 'digest', { title: TITLE, error: c.ok ? 'This message cannot be released with this link.' : c.reason, value: null, m: null }, c.ok ? 404 : 410);
      return undefined;
    }
    return { token: c.token, m, value, right: decide(ctx.deps.config, m, 'user', 'release') };
  };

  app.get('/d/:token', async (req, reply) => {
    const r = await check(req, reply);
    if (!r) return reply;
    return ctx.render(req, reply, 'digest', {
      title: TITLE,
      m: r.m,
      value: r.value,
      requestOnly: !r.right.allowed,
      refusal: r.right.allowed ? null : r.right.reason,
      error: r.m.status === 'quarantined' ? null : `This message is no longer in quarantine (${r.m.status}).`,
    });
  });

  app.post('/d/:token', { config: { rateLimit: { max: 30, timeWindow: 60_000 } } }, async (req, reply) => {
    const r = await check(req, reply);
    if (!r) return reply;
    const actor = `digest:${r.token.recipient}`;
    const audit = (action: string, outcome: 'ok' | 'denied' | 'failed', detail: string) =>
      ctx.deps.audit.record({ actor, action, messageId: r.m.id, target: null, ip: req.ip, outcome, detail });
    const asking = field(req.body as Record<string, unknown>, 'action', 20) === 'request';
    if (!asking && !r.right.allowed) {
      await audit('digest-release', 'denied', r.right.reason);
      return ctx.render(req, reply, 'digest', { title: TITLE, m: r.m, value: null, error: `${r.right.reason} Use the link to ask for its release instead.` }, 403);
    }
    if (asking && r.right.allowed) {
      return ctx.render(req, reply, 'digest', { title: TITLE, m: r.m, value: r.value, error: 'You may release this message yourself; there is nothing to ask.' }, 409);
    }
    if (r.m.status !== 'quarantined' || !(await ctx.deps.digests.useToken(r.token.id))) {
      await audit(asking ? 'release-request' : 'digest-release', 'denied', 'not quarantined or link used');
      return ctx.render(req, reply, 'digest', { title: TITLE, m: r.m, value: null, error: 'This message is no longer in quarantine, or the link has been used.' }, 409);
    }
    if (asking) {
      const note = field(req.body as Record<string, unknown>, 'note', 500).trim();
      const asked = await requestRelease(ctx, { requester: actor, recipient: r.token.recipient, m: r.m, note, audit: (outcome, detail) => audit('release-request', outcome, detail) });
      return ctx.render(req, reply, 'digest', { title: TITLE, m: r.m, value: null, asked: asked.ok ? asked.text : null, error: asked.ok ? null : asked.text }, asked.ok ? 200 : asked.status);
    }
    const result = await ctx.deps.release(r.m.id, actor);
    await audit('digest-release', result.ok ? 'ok' : 'failed', result.ok ? '' : result.reason);
    return ctx.render(req, reply, 'digest', {
      title: TITLE,
      m: r.m,
      value: null,
      done: result.ok,
      error: result.ok ? null : `The message could not be released: ${result.reason}`,
    });
  });
}
