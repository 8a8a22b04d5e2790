// API: numbers over time and the queue, as the Numbers and Queue pages show them. Who sees and
// may do what is decided in lib/numbers.ts and lib/queue-view.ts, shared with the pages; the audit
// rows are the pages' own, marked "(API)". Another tenant's message or domain is the same 404 as
// a missing one.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { IN_FLIGHT } from '../../gateway/store/metadata.ts';
import { DAY_MS, STAT_KINDS } from '../../gateway/store/stats.ts';
import { byBucket, numbersScope, RANGES, readNumbers, type Counts, type RangeKey } from '../lib/numbers.ts';
import { flushQueue, readQueue, retryQueued, type QueueAudit } from '../lib/queue-view.ts';
import { ApiError } from './errors.ts';

const integer = { type: 'integer' } as const;
const counts = {
  type: 'object',
  description:
    'received: accepted with a 250; refused: at SMTP time; spam, virus: verdicts; quarantined: held; delivered, deferred (once per message), failed: what the downstream answered',
  required: [...STAT_KINDS],
  properties: Object.fromEntries(STAT_KINDS.map((k) => [k, integer])),
} as const;
const bucket = {
  type: 'object',
  required: ['start', 'counts'],
  properties: { start: { ...integer, description: 'start of the hour or day, epoch ms UTC' }, counts },
} as const;
const historySchema = {
  tags: ['stats'],
  summary: 'Counts over time (1 day by hour, 7 and 30 days by day, UTC), for the token’s domains together and per domain',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      range: { type: 'string', enum: Object.keys(RANGES), default: '1d' },
      domain: {
        type: 'string',
        maxLength: 253,
        description: 'one hosted domain of the token; "" (superadmin) is mail no hosted domain owns; absent or "*": all',
      },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['range', 'bucket', 'since', 'until', 'domain', 'total', 'buckets', 'domains'],
      properties: {
        range: { type: 'string' },
        bucket: { type: 'string', enum: ['hour', 'day'] },
        since: { ...integer, description: 'epoch ms UTC, inclusive' },
        until: { ...integer, description: 'epoch ms UTC, exclusive' },
        domain: { type: ['string', 'null'], description: 'the domain asked for, or null: all the token’s domains' },
        total: counts,
        buckets: { type: 'array', items: bucket, description: 'every bucket of the window, oldest first, over all domains shown' },
        domains: {
          type: 'array',
          description: 'domains with counts in the window ("": no hosted recipient)',
          items: {
            type: 'object',
            required: ['domain', 'total', 'buckets'],
            properties: { domain: { type: 'string' }, total: counts, buckets: { type: 'array', items: bucket } },
          },
        },
      },
    },
  },
};

const queueSchema = {
  tags: ['queue'],
  summary: 'Mail still in the gateway’s hands: counts by state, the oldest, deferred mail by destination with its last error',
  response: {
    200: {
      type: 'object',
      required: ['counts', 'countsExact', 'truncated', 'oldest', 'destinations', 'deferred', 'deferredTotal', 'canRetry', 'jobs'],
      properties: {
        counts: { type: 'object', properties: Object.fromEntries(IN_FLIGHT.map((s) => [s, integer])), description: 'messages per state (held: poison)' },
        countsExact: { type: 'boolean', description: 'true for a superadmin token; else the counts are of the oldest 1,000 messages of the token’s domains' },
        truncated: { type: 'boolean', description: 'more messages than were read' },
        oldest: { type: ['object', 'null'], properties: { id: { type: 'string' }, receivedAt: integer, ageMs: integer, status: { type: 'string' } } },
        destinations: {
          type: 'array',
          items: {
            type: 'object',
            properties: { domain: { type: 'string' }, messages: integer, recipients: integer, oldest: integer, lastError: { type: 'string' }, lastAt: integer },
          },
        },
        deferred: {
          type: 'array',
          description: 'the oldest 100 deferred messages',
          items: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              receivedAt: integer,
              from: { type: 'string' },
              pending: { type: 'array', items: { type: 'object', properties: { recipient: { type: 'string' }, reply: { type: 'string' } } } },
              canRetry: { type: 'boolean' },
            },
          },
        },
        deferredTotal: integer,
        canRetry: { type: 'boolean', description: 'false: this console cannot retry or flush' },
        jobs: {
          type: ['object', 'null'],
          additionalProperties: { type: 'object', additionalProperties: integer },
          description: 'jobs per queue and state (superadmin tokens; null otherwise or when Redis did not answer)',
        },
        jobsError: { type: 'string' },
      },
    },
  },
};

const actionResult = { type: 'object', properties: { ok: { type: 'boolean' }, text: { type: 'string' } } } as const;

export async function registerNumbersApi(api: FastifyInstance, ctx: Ctx): Promise<void> {
  const audit = (req: FastifyRequest, a: QueueAudit | { action: string; target: string | null; outcome: 'denied'; detail: string }) =>
    ctx.audit(req, { ...a, detail: `${a.detail} (API)` });
  const full = (c: Counts) => Object.fromEntries(STAT_KINDS.map((k) => [k, c[k] ?? 0]));

  api.get('/stats/history', { schema: historySchema }, async (req) => {
    const query = req.query as { range: RangeKey; domain?: string };
    const asked = query.domain?.toLowerCase();
    const allowed = numbersScope(ctx.user(req).account, Object.keys(ctx.deps.config.domains), asked);
    if ('denied' in allowed) {
      await audit(req, { action: 'stats-view', target: asked ?? null, outcome: 'denied', detail: allowed.denied });
      throw new ApiError(404, 'not found');
    }
    if (!ctx.deps.stats) throw new ApiError(503, 'this console keeps no numbers');
    const n = await readNumbers(ctx.deps.stats, allowed.scope, query.range, ctx.deps.now());
    const series = (buckets: typeof n.buckets) => buckets.map((b) => ({ start: b.start, counts: full(b.counts) }));
    return {
      range: query.range,
      bucket: n.window.bucketMs < DAY_MS ? 'hour' : 'day',
      since: n.window.since,
      until: n.window.until,
      domain: allowed.domain ?? null,
      total: full(n.total),
      buckets: series(n.buckets),
      domains: n.domains.map((d) => ({
        domain: d.domain,
        total: full(d.counts),
        buckets: series(
          byBucket(
            n.rows.filter((r) => r.domain === d.domain),
            n.window,
          ),
        ),
      })),
    };
  });

  api.get('/queue', { schema: queueSchema }, async (req) => {
    const view = await readQueue(ctx.deps, ctx.user(req));
    if ('denied' in view) {
      await audit(req, view.denied);
      throw new ApiError(404, 'not found');
    }
    return {
      counts: view.counts,
      countsExact: view.superadmin,
      truncated: view.truncated,
      oldest: view.oldest && { id: view.oldest.id, receivedAt: view.oldest.at, ageMs: view.oldest.age, status: view.oldest.status },
      destinations: view.destinations,
      deferred: view.shown.map(({ m, pending, canRetry }) => ({ id: m.id, receivedAt: m.receivedAt, from: m.mailFrom, pending, canRetry })),
      deferredTotal: view.deferredTotal,
      canRetry: view.canFlush,
      jobs: view.jobs,
      ...(view.jobsError ? { jobsError: view.jobsError } : {}),
    };
  });

  api.post(
    '/queue/:id/retry',
    {
      schema: {
        tags: ['queue'],
        summary: 'Try a deferred or waiting message now (every recipient must be the token’s)',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', description: 'message id (ULID)' } } },
        response: { 200: actionResult },
      },
    },
    async (req) => {
      const r = await retryQueued(ctx.deps, ctx.user(req), (req.params as { id: string }).id);
      await audit(req, r.audit);
      if (r.status === 'notFound') throw new ApiError(404, 'not found');
      if (r.status === 'denied') throw new ApiError(403, r.text);
      if (r.status === 'unavailable') throw new ApiError(503, r.text);
      if (r.status === 'failed') throw new ApiError(409, r.text);
      return { ok: true, text: r.text };
    },
  );

  api.post(
    '/queue/flush',
    {
      schema: {
        tags: ['queue'],
        summary: 'Try every deferred message now (superadmin token), or those waiting for one of the token’s domains',
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { domain: { type: 'string', maxLength: 253, description: 'a destination domain; absent: all (superadmin)' } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              ok: { type: 'boolean' },
              flushed: { type: 'array', items: { type: 'string' } },
              skipped: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, reason: { type: 'string' } } } },
            },
          },
        },
      },
    },
    async (req) => {
      const domain = ((req.body as { domain?: string } | null)?.domain ?? '').trim().toLowerCase();
      const r = await flushQueue(ctx.deps, ctx.user(req), domain);
      await audit(req, r.audit);
      if (r.status === 'notFound') throw new ApiError(404, 'not found');
      if (r.status === 'unavailable') throw new ApiError(503, 'the queue cannot be flushed from this console');
      return { ok: true, flushed: r.flushed, skipped: r.skipped };
    },
  );
}
