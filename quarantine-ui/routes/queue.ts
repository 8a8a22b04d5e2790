// The queue page: mail still in the gateway's hands, by state, the oldest, and the deferred
// messages grouped by destination domain with their last error; "retry now" for one message and
// "flush" (every deferred message, or one destination's) through the same operations as
// `mailmoat queue retry|flush` (gateway/delivery/queue-ops.ts). A domain admin sees the messages
// of their domains and may retry those whose every recipient is theirs, and flush their own
// domains (skipping messages still pending for another tenant, as retry does); another domain's
// message or domain is a 404, audited. Job counts (Redis) and flushing
// everything are the superadmin's: there is one queue for every tenant.
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../app.ts';
import { IN_FLIGHT, type MessageRecord } from '../../gateway/store/metadata.ts';
import { domainOf } from '../../rules/envelope.ts';
import { canActOn, canSee, recipientInScope } from '../scope.ts';
import { field, MESSAGE_ID } from '../lib/forms.ts';

/** Messages read for the page (oldest first): the counts say when there are more. */
const PAGE_LIMIT = 1_000;
const DEFERRED_SHOWN = 100;

interface Destination {
  domain: string;
  messages: number;
  recipients: number;
  oldest: number;
  lastError: string;
  lastAt: number;
}

export async function registerQueueRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { store } = ctx.deps;

  app.get('/queue', async (req, reply) => {
    const user = ctx.user(req);
    if (user.account.role === 'user') {
      await ctx.audit(req, { action: 'queue-view', outcome: 'denied', detail: 'end users have no queue page' });
      return ctx.notFound(req, reply);
    }
    const superadmin = user.account.role === 'superadmin';
    const records = (await store.inFlight(PAGE_LIMIT)).filter((m) => canSee(m, user.scope));
    const counts: Record<string, number> = Object.fromEntries(IN_FLIGHT.map((s) => [s, 0]));
    if (superadmin) Object.assign(counts, Object.fromEntries(Object.entries(await store.countByStatus()).filter(([s]) => IN_FLIGHT.includes(s as never))));
    else for (const m of records) counts[m.status] = (counts[m.status] ?? 0) + 1;
    const deferred = records.filter((m) => m.status === 'deferred');
    const destinations = new Map<string, Destination>();
    const shown: { m: MessageRecord; pending: { recipient: string; reply: string }[]; reply: string; canRetry: boolean }[] = [];
    for (const m of deferred) {
      const pending = (await store.deliveries(m.id)).filter((d) => d.outcome === 'deferred' && recipientInScope(d.recipient, user.scope));
      for (const d of pending) {
        const domain = domainOf(d.recipient);
        const dest = destinations.get(domain) ?? { domain, messages: 0, recipients: 0, oldest: m.receivedAt, lastError: '', lastAt: 0 };
        dest.recipients++;
        dest.oldest = Math.min(dest.oldest, m.receivedAt);
        if (d.at >= dest.lastAt) Object.assign(dest, { lastAt: d.at, lastError: d.reply });
        destinations.set(domain, dest);
      }
      for (const domain of new Set(pending.map((d) => domainOf(d.recipient)))) destinations.get(domain)!.messages++;
      // The message's last reply may be another tenant's remote server speaking of its recipients.
      const reply = pending[0]?.reply ?? (superadmin ? (m.lastReply ?? '') : '');
      if (shown.length < DEFERRED_SHOWN) shown.push({ m, pending, reply, canRetry: canActOn(m, user.scope) && Boolean(ctx.deps.queueOps) });
    }
    let jobs: Record<string, Record<string, number>> | null = null;
    let jobsError: string | null = null;
    if (superadmin) {
      try {
        jobs = await ctx.deps.queueCounts();
      } catch (err) {
        jobsError = (err as Error).message;
      }
    }
    const oldest = records[0];
    return ctx.render(req, reply, 'queue', {
      title: 'Queue',
      superadmin,
      counts,
      truncated: records.length >= PAGE_LIMIT,
      oldest: oldest ? { id: oldest.id, at: oldest.receivedAt, age: Math.max(0, ctx.deps.now() - oldest.receivedAt), status: oldest.status } : null,
      destinations: [...destinations.values()].sort((a, b) => b.recipients - a.recipients || a.domain.localeCompare(b.domain)),
      shown,
      deferredTotal: deferred.length,
      canFlush: Boolean(ctx.deps.queueOps),
      jobs,
      jobsError,
      mayFlushDomain: (d: string) => superadmin || user.account.domains.includes(d),
    });
  });

  app.post('/queue/:id/retry', async (req, reply) => {
    const user = ctx.user(req);
    const id = (req.params as { id: string }).id;
    const m = MESSAGE_ID.test(id) && user.account.role !== 'user' ? await store.get(id) : undefined;
    if (!m || !canSee(m, user.scope)) {
      await ctx.audit(req, { action: 'queue-retry', messageId: id.slice(0, 64), outcome: 'denied', detail: m ? 'message outside the user’s scope' : 'no such message' });
      return ctx.notFound(req, reply);
    }
    const denied = !canActOn(m, user.scope) ? 'recipients outside the user’s scope' : !ctx.deps.queueOps ? 'not available in this console' : null;
    const result = denied ? { ok: false as const, reason: denied } : await ctx.deps.queueOps!.retry(m.id);
    await ctx.audit(req, { action: 'queue-retry', messageId: m.id, outcome: denied ? 'denied' : result.ok ? 'ok' : 'failed', detail: result.ok ? result.detail : result.reason });
    ctx.flash(req, result.ok ? 'ok' : 'error', result.ok ? `${m.id}: tried again now (${result.detail})` : `Not done: ${result.reason}`);
    return reply.redirect('/queue', 303);
  });

  app.post('/queue/flush', async (req, reply) => {
    const user = ctx.user(req);
    const domain = field(req.body as Record<string, unknown>, 'domain', 253).trim().toLowerCase();
    const superadmin = user.account.role === 'superadmin';
    if (user.account.role === 'user' || (domain === '' ? !superadmin : !superadmin && !user.account.domains.includes(domain))) {
      await ctx.audit(req, { action: 'queue-flush', target: domain || '*', outcome: 'denied', detail: domain ? 'domain outside the user’s scope' : 'only a superadmin flushes the whole queue' });
      return ctx.notFound(req, reply);
    }
    if (!ctx.deps.queueOps) {
      await ctx.audit(req, { action: 'queue-flush', target: domain || '*', outcome: 'failed', detail: 'not available in this console' });
      ctx.flash(req, 'error', 'Not done: the queue cannot be flushed from this console.');
      return reply.redirect('/queue', 303);
    }
    const { flushed, skipped } = await ctx.deps.queueOps.flush({ ...(domain ? { domain } : {}), ...(superadmin ? {} : { within: user.account.domains }) });
    await ctx.audit(req, { action: 'queue-flush', target: domain || '*', outcome: 'ok', detail: `${flushed.length} tried again now, ${skipped.length} skipped` });
    ctx.flash(req, 'ok', `${flushed.length} deferred message(s)${domain ? ` for ${domain}` : ''} tried again now${skipped.length ? `, ${skipped.length} skipped (a worker holds them right now)` : ''}.`);
    return reply.redirect('/queue', 303);
  });
}
