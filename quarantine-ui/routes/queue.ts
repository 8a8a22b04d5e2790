// The queue page: mail still in the gateway's hands, by state, the oldest, and the deferred
// messages grouped by destination domain with their last error; "retry now" for one message and
// "flush" (every deferred message, or one destination's) through the same operations as
// `mailmoat queue retry|flush` (gateway/delivery/queue-ops.ts). What a user sees and may do is
// decided in lib/queue-view.ts, shared with the API; another domain's message or domain is a 404,
// audited.
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { field } from '../lib/forms.ts';
import { flushQueue, mayFlushDomain, readQueue, retryQueued } from '../lib/queue-view.ts';

export async function registerQueueRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.get('/queue', async (req, reply) => {
    const user = ctx.user(req);
    const view = await readQueue(ctx.deps, user);
    if ('denied' in view) {
      await ctx.audit(req, view.denied);
      return ctx.notFound(req, reply);
    }
    return ctx.render(req, reply, 'queue', { title: 'Queue', ...view, mayFlushDomain: (d: string) => mayFlushDomain(user.account, d) });
  });

  app.post('/queue/:id/retry', async (req, reply) => {
    const r = await retryQueued(ctx.deps, ctx.user(req), (req.params as { id: string }).id);
    await ctx.audit(req, r.audit);
    if (r.status === 'notFound') return ctx.notFound(req, reply);
    ctx.flash(req, r.status === 'ok' ? 'ok' : 'error', r.status === 'ok' ? `${r.message!.id}: tried again now (${r.text})` : `Not done: ${r.text}`);
    return reply.redirect('/queue', 303);
  });

  app.post('/queue/flush', async (req, reply) => {
    const domain = field(req.body as Record<string, unknown>, 'domain', 253)
      .trim()
      .toLowerCase();
    const r = await flushQueue(ctx.deps, ctx.user(req), domain);
    await ctx.audit(req, r.audit);
    if (r.status === 'notFound') return ctx.notFound(req, reply);
    if (r.status === 'unavailable') ctx.flash(req, 'error', 'Not done: the queue cannot be flushed from this console.');
    else
      ctx.flash(
        req,
        'ok',
        `${r.flushed.length} deferred message(s)${domain ? ` for ${domain}` : ''} tried again now${r.skipped.length ? `, ${r.skipped.length} skipped (a worker holds them right now)` : ''}.`,
      );
    return reply.redirect('/queue', 303);
  });
}
