// The message log: every message the gateway saw, and every transaction it refused during SMTP
// (with the reply the client got), newest first, searchable. The page admins use most.
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { field, pageOf } from '../lib/forms.ts';
import { domainChoices, readFilters, toSearch, visibleRecipients } from './quarantine.ts';

const PAGE_SIZE = 100;
export const LOG_STATUSES = ['refused', 'queued', 'delivering', 'deferred', 'delivered', 'quarantined', 'releasing', 'released', 'failed', 'deleted', 'held'];

export async function registerLogRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.get('/log', async (req, reply) => {
    const user = ctx.user(req);
    const filters = readFilters(req.query);
    const page = pageOf(field(req.query as Record<string, unknown>, 'page'));
    const search = toSearch(filters, user);
    const { rows, total } = await ctx.deps.store.searchLog({
      scope: search.scope,
      domain: search.domain,
      recipient: search.recipient,
      sender: search.sender,
      clientIp: search.clientIp,
      q: search.q,
      id: filters.id,
      from: search.from,
      to: search.to,
      status: filters.status && LOG_STATUSES.includes(filters.status) ? filters.status : undefined,
      limit: PAGE_SIZE,
      offset: (page - 1) * PAGE_SIZE,
    });
    return ctx.render(req, reply, 'log', {
      title: 'Message log',
      rows: rows.map((r) => ({ r, rcpt: r.kind === 'message' ? visibleRecipients({ rcptTo: r.recipients }, user) : { shown: r.recipients, hidden: 0 } })),
      total,
      page,
      pages: Math.max(1, Math.ceil(total / PAGE_SIZE)),
      filters,
      statuses: LOG_STATUSES,
      domains: domainChoices(ctx, user),
    });
  });
}
