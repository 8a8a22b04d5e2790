// Numbers over time (gateway/stats.ts counts them): 1 day by hour, 7 and 30 days by day, for all
// the user's domains or one of them (who sees what: lib/numbers.ts numbersScope, shared with the
// API). Another domain is a 404, audited, the same answer as a domain that does not exist.
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { field } from '../lib/forms.ts';
import { stackedBars } from '../lib/charts.ts';
import { summaryMailable } from '../lib/daily-summary.ts';
import { KIND_COLUMNS, numbersScope, OTHER_DOMAIN, RANGES, readNumbers, type RangeKey } from '../lib/numbers.ts';

const pick = (keys: string[]) => KIND_COLUMNS.filter((c) => keys.includes(c.key));

export async function registerStatsRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.get('/stats', async (req, reply) => {
    const user = ctx.user(req);
    const query = req.query as Record<string, string | undefined>;
    const range: RangeKey = typeof query.range === 'string' && Object.hasOwn(RANGES, query.range) ? (query.range as RangeKey) : '1d';
    const asked = typeof query.domain === 'string' ? query.domain.slice(0, 253).toLowerCase() : undefined;
    const { account } = user;
    const allowed = numbersScope(account, Object.keys(ctx.deps.config.domains), asked);
    if ('denied' in allowed) {
      await ctx.audit(req, { action: 'stats-view', target: asked ?? null, outcome: 'denied', detail: allowed.denied });
      return ctx.notFound(req, reply);
    }
    const { domain, mine } = allowed;
    const { buckets, domains, total } = await readNumbers(ctx.deps.stats, allowed.scope, range, ctx.deps.now());
    const span = `${RANGES[range].label}, UTC`;
    const chart = (title: string, keys: string[]) =>
      stackedBars({ title: `${title} (${span})`, buckets: buckets.map((b) => ({ label: b.label, values: b.counts })), categories: pick(keys) });
    const summaryOn = ctx.deps.stats ? !(await ctx.deps.stats.summaryOptOuts()).has(account.id) : false;
    return ctx.render(req, reply, 'stats', {
      title: 'Numbers',
      summary: ctx.deps.config.console.dailySummary.enabled && ctx.deps.stats ? { on: summaryOn, mailable: summaryMailable(account) } : null,
      available: Boolean(ctx.deps.stats),
      range,
      ranges: Object.entries(RANGES).map(([key, r]) => ({ key, label: r.label })),
      domain,
      choices: mine.map((d) => ({ value: d, label: d === '' ? OTHER_DOMAIN : d })),
      columns: KIND_COLUMNS,
      total,
      buckets: [...buckets].reverse(),
      bucketTime: (start: number) =>
        new Date(start)
          .toISOString()
          .slice(0, range === '1d' ? 13 : 10)
          .replace('T', ' ') + (range === '1d' ? ':00' : ''),
      domains: domain === undefined ? domains.map((d) => ({ ...d, label: d.domain === '' ? OTHER_DOMAIN : d.domain })) : [],
      arriving: chart('Mail in and refused at SMTP', ['received', 'refused']),
      verdicts: chart('Spam and viruses', ['spam', 'virus']),
      outcomes: chart('Delivered, deferred and failed', ['delivered', 'deferred', 'failed']),
    });
  });

  // The daily summary mail (lib/daily-summary.ts): each admin turns their own on or off.
  app.post('/stats/daily-summary', async (req, reply) => {
    const user = ctx.user(req);
    const on = field(req.body as Record<string, unknown>, 'on', 5) === '1';
    if (user.account.role === 'user' || !ctx.deps.stats) {
      await ctx.audit(req, {
        action: 'daily-summary',
        outcome: 'denied',
        detail: user.account.role === 'user' ? 'end users get no daily summary' : 'not available in this console',
      });
      return ctx.notFound(req, reply);
    }
    await ctx.deps.stats.setSummaryOptOut(user.account.id, !on);
    await ctx.audit(req, { action: 'daily-summary', target: user.account.username, detail: on ? 'on' : 'off' });
    ctx.flash(req, 'ok', on ? 'You will get the daily summary mail.' : 'You will no longer get the daily summary mail.');
    return reply.redirect('/stats', 303);
  });
}
