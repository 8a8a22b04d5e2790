// API: the quarantine (list, show, release, delete, learn), the message log and stats. Actions
// go through the console's own `perform` (routes/quarantine.ts), so rights, scope and audit are
// those of the pages.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';
import { MESSAGE_ID } from '../lib/forms.ts';
import { canActOn, canSee, recipientInScope, redactForScope } from '../scope.ts';
import { perform, readFilters, toSearch, visibleRecipients, VERDICTS, type MessageAction } from '../routes/quarantine.ts';
import { LOG_STATUSES } from '../routes/log.ts';
import { rightsOf } from '../lib/rights.ts';
import { ApiError, apiNotFound } from './errors.ts';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', description: 'message id (ULID)' } } } as const;
const paging = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  offset: { type: 'integer', minimum: 0, default: 0 },
} as const;
const searchQuery = {
  type: 'object',
  properties: {
    domain: { type: 'string', description: 'recipient domain' },
    rcpt: { type: 'string', description: 'part of a recipient address' },
    sender: { type: 'string', description: 'part of the envelope sender' },
    q: { type: 'string', description: 'part of the subject, sender, a recipient or the id' },
    from: { type: 'string', description: 'first day, YYYY-MM-DD (UTC)' },
    to: { type: 'string', description: 'last day, YYYY-MM-DD (UTC)' },
    ...paging,
  },
} as const;
const actionResult = { type: 'object', properties: { ok: { type: 'boolean' }, text: { type: 'string' } } } as const;

export async function registerMessageApi(api: FastifyInstance, ctx: Ctx): Promise<void> {
  const { store } = ctx.deps;

  /** A message the token may see, or a 404 (audited). */
  async function load(req: FastifyRequest, action: string): Promise<MessageRecord> {
    const id = (req.params as { id: string }).id;
    const m = MESSAGE_ID.test(id) ? await store.get(id) : undefined;
    if (m && canSee(m, ctx.user(req).scope)) return m;
    return apiNotFound(ctx, req, { action, messageId: id.slice(0, 120), detail: m ? 'message outside the user’s scope' : 'no such message' });
  }

  const summary = (m: MessageRecord, req: FastifyRequest) => {
    const user = ctx.user(req);
    const rcpt = visibleRecipients(m, user);
    return {
      id: m.id,
      receivedAt: m.receivedAt,
      from: m.mailFrom,
      to: rcpt.shown,
      otherRecipients: rcpt.hidden,
      subject: m.subject,
      size: m.size,
      status: m.status,
      verdict: m.verdict,
      reason: m.reason ? redactForScope(m.reason, m, user.scope) : null,
      canAct: canActOn(m, user.scope),
    };
  };

  api.get(
    '/quarantine',
    {
      schema: {
        tags: ['quarantine'],
        summary: 'Quarantined messages the token may see, newest first',
        querystring: { ...searchQuery, properties: { ...searchQuery.properties, verdict: { type: 'string', enum: VERDICTS } } },
      },
    },
    async (req) => {
      const query = req.query as Record<string, unknown> & { limit: number; offset: number };
      const { rows, total } = await store.searchMessages({
        ...toSearch(readFilters(query), ctx.user(req)),
        statuses: ['quarantined'],
        limit: query.limit,
        offset: query.offset,
      });
      return { total, messages: rows.map((m) => summary(m, req)) };
    },
  );

  api.get(
    '/quarantine/:id',
    { schema: { tags: ['quarantine'], summary: 'One message: envelope, verdict, scan report, history, rights', params: idParams } },
    async (req) => {
      const user = ctx.user(req);
      const m = await load(req, 'view');
      await ctx.audit(req, { action: 'view', messageId: m.id, detail: 'API' });
      const hide = (text: string) => redactForScope(text, m, user.scope);
      return {
        ...summary(m, req),
        clientIp: m.clientIp,
        helo: m.helo,
        report: m.report,
        events: (await store.events(m.id)).map((e) => ({ at: e.at, kind: e.kind, detail: hide(e.detail) })), // not `data`: its fields (recipients) are not redacted for the scope
        deliveries: (await store.deliveries(m.id)).filter((d) => recipientInScope(d.recipient, user.scope)),
        rights: rightsOf(ctx.deps.config, m, user.account.role),
      };
    },
  );

  const act = (action: MessageAction) => async (req: FastifyRequest) => {
    const m = await load(req, action);
    const r = await perform(ctx, req, ctx.user(req), m, action);
    if (r.forbidden || (!r.ok && !canActOn(m, ctx.user(req).scope))) throw new ApiError(403, r.text);
    if (!r.ok) throw new ApiError(409, r.text);
    return { ok: true, text: r.text };
  };
  api.post(
    '/quarantine/:id/release',
    {
      schema: {
        tags: ['quarantine'],
        summary: 'Release a message to its recipients (needs the release right for its class)',
        params: idParams,
        response: { 200: actionResult },
      },
    },
    act('release'),
  );
  api.delete(
    '/quarantine/:id',
    { schema: { tags: ['quarantine'], summary: 'Delete a quarantined message', params: idParams, response: { 200: actionResult } } },
    act('delete'),
  );
  api.post(
    '/quarantine/:id/learn',
    {
      schema: {
        tags: ['quarantine'],
        summary: 'Teach the spam filter (Bayes) that this message is spam or not spam',
        params: idParams,
        body: { type: 'object', required: ['as'], additionalProperties: false, properties: { as: { type: 'string', enum: ['spam', 'ham'] } } },
        response: { 200: actionResult },
      },
    },
    async (req) => act((req.body as { as: 'spam' | 'ham' }).as === 'spam' ? 'learn-spam' : 'learn-ham')(req),
  );

  api.get(
    '/log',
    {
      schema: {
        tags: ['log'],
        summary: 'The message log: every message and SMTP refusal, newest first',
        querystring: { ...searchQuery, properties: { ...searchQuery.properties, status: { type: 'string', enum: LOG_STATUSES } } },
      },
    },
    async (req) => {
      const user = ctx.user(req);
      const query = req.query as Record<string, unknown> & { limit: number; offset: number; status?: string };
      const s = toSearch(readFilters(query), user);
      const { rows, total } = await store.searchLog({
        scope: s.scope,
        domain: s.domain,
        recipient: s.recipient,
        sender: s.sender,
        q: s.q,
        from: s.from,
        to: s.to,
        status: query.status,
        limit: query.limit,
        offset: query.offset,
      });
      return {
        total,
        rows: rows.map((r) => ({ ...r, recipients: r.kind === 'message' ? visibleRecipients({ rcptTo: r.recipients }, user).shown : r.recipients })),
      };
    },
  );

  api.get('/stats', { schema: { tags: ['stats'], summary: 'Messages by status, for the token’s domains (all, and per domain)' } }, async (req) => {
    const user = ctx.user(req);
    const domains = user.scope.all ? Object.keys(ctx.deps.config.domains).sort() : user.scope.domains;
    const perDomain: Record<string, Record<string, number>> = {};
    for (const d of domains) perDomain[d] = await store.statusCounts({ domains: [d], addresses: [] });
    return { all: await store.statusCounts(user.scope), domains: perDomain };
  });
}
