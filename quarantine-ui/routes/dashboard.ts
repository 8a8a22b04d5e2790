// The dashboard: the last 24 hours as pictures (messages per hour by verdict, top spam senders,
// top viruses) and the queue, all scoped to the user's domains (the queue only for superadmins:
// it is one queue for everybody).
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { horizontalBars, stackedBars, VERDICT_COLORS } from '../lib/charts.ts';

const HOUR = 3600_000;
const KNOWN = new Set(VERDICT_COLORS.map((c) => c.key));

export async function registerDashboardRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.get('/dashboard', async (req, reply) => {
    const user = ctx.user(req);
    const { store } = ctx.deps;
    const now = ctx.deps.now();
    const firstHour = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
    const counts = await store.hourlyCounts(user.scope, firstHour);
    const buckets = Array.from({ length: 24 }, (_, i) => {
      const hour = firstHour + i * HOUR;
      const values: Record<string, number> = {};
      for (const c of counts.filter((x) => x.hour === hour)) {
        const key = KNOWN.has(c.category) ? c.category : 'other';
        values[key] = (values[key] ?? 0) + c.n;
      }
      return { label: `${new Date(hour).getUTCHours().toString().padStart(2, '0')}h`, values };
    });
    const totals: Record<string, number> = {};
    for (const b of buckets) for (const [k, n] of Object.entries(b.values)) totals[k] = (totals[k] ?? 0) + n;
    const since = now - 24 * HOUR;
    const senders = await store.topSenders(user.scope, { since, verdicts: ['spam', 'high-spam'], limit: 10 });
    const viruses = await store.topViruses(user.scope, { since, limit: 10 });
    let queue: { label: string; n: number }[] | null = null;
    let queueError: string | null = null;
    if (user.scope.all) {
      try {
        const q = await ctx.deps.queueCounts();
        queue = Object.entries(q).flatMap(([name, states]) =>
          ['waiting', 'active', 'delayed', 'failed'].map((s) => ({ label: `${name} ${s}`, n: states[s] ?? 0 })),
        );
      } catch (err) {
        queueError = (err as Error).message;
      }
    }
    const status = await store.statusCounts(user.scope);
    return ctx.render(req, reply, 'dashboard', {
      title: 'Dashboard',
      hourly: stackedBars({ title: 'Messages per hour by verdict (last 24 hours, UTC)', buckets, categories: VERDICT_COLORS }),
      senders: horizontalBars({
        title: 'Top spam senders (24 hours)',
        items: senders.map((s) => ({ label: s.sender || '<>', n: s.n })),
        color: '#d9534f',
        empty: 'no spam in the last 24 hours',
      }),
      viruses: horizontalBars({
        title: 'Top viruses (24 hours)',
        items: viruses.map((v) => ({ label: v.name, n: v.n })),
        color: '#8e44ad',
        empty: 'no viruses in the last 24 hours',
      }),
      queue: queue && horizontalBars({ title: 'Queue', items: queue, color: '#2c7be5' }),
      queueError,
      totals,
      quarantined: status.quarantined ?? 0,
      categories: VERDICT_COLORS,
    });
  });
}
