// Messages held as poison (gateway/poison.ts: their processing crashed its worker 3 times): an
// administrator whose scope covers every recipient processes one once more, or deletes it. End
// users see the state in the message log but cannot act: what crashed a worker is an operator's
// matter, and a release runs the message through the workers again.
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { canActOn, canSee } from '../scope.ts';
import { MESSAGE_ID } from '../lib/forms.ts';

const OPS = { 'poison-release': 'Processed once more', 'poison-delete': 'Deleted' } as const;
export const POISON_ACTIONS = Object.keys(OPS) as (keyof typeof OPS)[];

export async function registerPoisonRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  for (const [action, label] of Object.entries(OPS) as [keyof typeof OPS, string][]) {
    app.post(`/messages/:id/${action}`, async (req, reply) => {
      const user = ctx.user(req);
      const id = (req.params as { id: string }).id;
      const m = MESSAGE_ID.test(id) ? await ctx.deps.store.get(id) : undefined;
      if (!m || !canSee(m, user.scope)) {
        await ctx.audit(req, { action, messageId: id.slice(0, 64), outcome: 'denied', detail: m ? 'message outside the user’s scope' : 'no such message' });
        return ctx.notFound(req, reply);
      }
      const denied =
        user.account.role === 'user'
          ? 'only an administrator can act on a message held as poison'
          : !canActOn(m, user.scope)
            ? 'recipients outside the user’s scope'
            : !ctx.deps.poison
              ? 'not available in this console'
              : null;
      const result = denied
        ? { ok: false as const, reason: denied }
        : await (action === 'poison-release' ? ctx.deps.poison!.release(m.id, user.account.username) : ctx.deps.poison!.remove(m.id, user.account.username));
      await ctx.audit(req, {
        action,
        messageId: m.id,
        outcome: denied ? 'denied' : result.ok ? 'ok' : 'failed',
        detail: result.ok ? result.detail : result.reason,
      });
      ctx.flash(req, result.ok ? 'ok' : 'error', result.ok ? `${label}: ${result.detail}` : `Not done: ${result.reason}`);
      return reply.redirect(`/messages/${m.id}`, 303);
    });
  }
}
