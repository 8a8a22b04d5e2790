// The learned filter's models (issue 19), superadmins only: the snapshots of the global and
// per-domain models, taking one, and one-click rollback to any of them (the state before a
// rollback is itself kept as a snapshot, so a rollback can be undone).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { field } from '../lib/forms.ts';
import { GLOBAL_MODEL } from '../../gateway/learner/learner.ts';

export async function registerLearnerRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const learner = ctx.deps.learner;
  if (!learner) return;
  // Read per request: domains added in the console or by the API have models from then on (live config).
  const hosted = () => Object.keys(ctx.deps.config.domains);
  await app.register(async (admin) => {
    admin.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (ctx.user(req).account.role === 'superadmin') return;
      await ctx.audit(req, { action: 'admin-page', target: req.url.split('?')[0], outcome: 'denied', detail: 'not a superadmin' });
      return ctx.notFound(req, reply);
    });

    admin.get('/learner', async (req, reply) =>
      ctx.render(req, reply, 'learner', {
        title: 'Learned filter',
        snapshots: (await learner.snapshots(100)).map((s) => ({ ...s, model: s.name === GLOBAL_MODEL ? 'global' : s.name })),
        models: ['global', ...hosted()],
      }),
    );

    admin.post('/learner/snapshot', async (req, reply) => {
      const body = req.body as Record<string, unknown>;
      const model = field(body, 'model', 255);
      if (model !== 'global' && !hosted().includes(model)) return ctx.notFound(req, reply);
      const note = field(body, 'note', 200).trim() || 'taken in the console';
      const by = ctx.user(req).account.username;
      const id = await learner.snapshot(model === 'global' ? GLOBAL_MODEL : model, by, note);
      await ctx.audit(req, { action: 'learner-snapshot', target: model, detail: `snapshot ${id}: ${note}` });
      ctx.flash(req, 'ok', `Snapshot ${id} of the ${model} model taken.`);
      return reply.redirect('/learner', 303);
    });

    admin.post('/learner/rollback/:id', async (req, reply) => {
      const id = Number((req.params as { id: string }).id);
      if (!Number.isSafeInteger(id)) return ctx.notFound(req, reply);
      try {
        const text = await learner.rollback(id, ctx.user(req).account.username);
        await ctx.audit(req, { action: 'learner-rollback', target: String(id), detail: text });
        ctx.flash(req, 'ok', `The ${text}.`);
      } catch (err) {
        await ctx.audit(req, { action: 'learner-rollback', target: String(id), outcome: 'failed', detail: (err as Error).message });
        ctx.flash(req, 'error', `Not rolled back: ${(err as Error).message}`);
      }
      return reply.redirect('/learner', 303);
    });
  });
}
