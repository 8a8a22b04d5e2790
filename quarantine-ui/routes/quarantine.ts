// The quarantine: the list (filters, search, paging, bulk actions), one message (headers, scan
// report, attachments, raw download, sandboxed HTML preview) and the actions on it.
//
// Every route that takes a message id goes through `load`: an id that does not exist and an id
// of another tenant's message get the same 404 page, nothing else happens, and the attempt is
// written to the audit log. Acting on a message needs all of its recipients in scope. Releasing,
// downloading and previewing also need the release right for the message's class
// (lib/rights.ts): a refusal is a 403 with the reason, and an audit row.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx, ConsoleUser } from '../ctx.ts';
import type { MessageRecord, MessageSearch } from '../../gateway/store/metadata.ts';
import { learnMessage } from '../../gateway/learning.ts';
import { domainOf } from '../../rules/envelope.ts';
import { canActOn, canSee, recipientInScope, redactForScope } from '../scope.ts';
import { decide, rightsOf } from '../lib/rights.ts';
import { field, fields, MESSAGE_ID, pageOf, parseDay, parseNumber } from '../lib/forms.ts';
import { inlineImageMap, parseForView, sanitizeForPreview } from '../lib/preview.ts';

const PAGE_SIZE = 50;
/** Verdict classes (scanners/types.ts PolicyOutcome.class). */
export const VERDICTS = ['virus', 'banned', 'phishing', 'spoofed', 'blocked', 'malformed', 'unscannable', 'high-spam', 'spam', 'clean'];
export const ACTIONS = ['release', 'release-allow', 'delete', 'learn-spam', 'learn-ham', 'block-sender'] as const;
export type MessageAction = (typeof ACTIONS)[number];
const ACTION_LABEL: Record<MessageAction, string> = {
  release: 'Released',
  'release-allow': 'Released and sender allowed',
  delete: 'Deleted',
  'learn-spam': 'Learned as spam',
  'learn-ham': 'Learned as not spam',
  'block-sender': 'Sender blocked',
};

export const FILTER_KEYS = ['domain', 'rcpt', 'sender', 'verdict', 'from', 'to', 'minscore', 'maxscore', 'q', 'ip', 'id', 'status'] as const;
export type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

export function readFilters(query: unknown): Filters {
  const q = (query ?? {}) as Record<string, unknown>;
  const out: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = field(q, k, 200).trim();
    if (v) out[k] = v;
  }
  return out;
}

/** The filters as a store search (anything malformed is ignored, not passed on). */
export function toSearch(f: Filters, user: ConsoleUser): Omit<MessageSearch, 'limit' | 'offset'> {
  return {
    scope: user.scope,
    domain: f.domain,
    recipient: f.rcpt,
    sender: f.sender,
    verdict: f.verdict && VERDICTS.includes(f.verdict) ? f.verdict : undefined,
    from: f.from ? parseDay(f.from) : undefined,
    to: f.to ? parseDay(f.to, true) : undefined,
    minScore: f.minscore ? parseNumber(f.minscore) : undefined,
    maxScore: f.maxscore ? parseNumber(f.maxscore) : undefined,
    q: f.q,
    clientIp: f.ip,
  };
}

/** Recipients the user may see, and how many others there are. */
export function visibleRecipients(m: Pick<MessageRecord, 'rcptTo'>, user: ConsoleUser): { shown: string[]; hidden: number } {
  const shown = m.rcptTo.filter((r) => recipientInScope(r, user.scope));
  return { shown, hidden: m.rcptTo.length - shown.length };
}

export async function readBody(ctx: Ctx, id: string, max: number): Promise<Buffer | 'missing' | 'too-large'> {
  const size = await ctx.deps.quarantine.size(id);
  if (size === undefined) return 'missing';
  if (size > max) return 'too-large';
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.deps.quarantine.open(id)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function registerQuarantineRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { store, config } = ctx.deps;

  /** The message, if it exists and the user may see it; otherwise a 404 (and an audit entry). */
  async function load(req: FastifyRequest, reply: FastifyReply, action: string): Promise<MessageRecord | undefined> {
    const id = (req.params as { id: string }).id;
    const record = MESSAGE_ID.test(id) ? await store.get(id) : undefined;
    if (record && canSee(record, ctx.user(req).scope)) return record;
    await ctx.audit(req, { action, messageId: id.slice(0, 120), outcome: 'denied', detail: record ? 'message outside the user’s scope' : 'no such message' });
    void ctx.notFound(req, reply);
    return undefined;
  }

  /** The release right for download/preview; a refusal is a 403 page and an audit row. */
  async function allowed(req: FastifyRequest, reply: FastifyReply, m: MessageRecord, right: 'download' | 'preview'): Promise<boolean> {
    const d = decide(config, m, ctx.user(req).account.role, right);
    if (d.allowed) return true;
    await ctx.audit(req, { action: right, messageId: m.id, outcome: 'denied', detail: d.reason });
    void ctx.render(req, reply, 'error', { title: 'Not allowed', message: `${d.reason} Ask an administrator.` }, 403);
    return false;
  }

  app.get('/quarantine', async (req, reply) => {
    const user = ctx.user(req);
    const filters = readFilters(req.query);
    const page = pageOf(field(req.query as Record<string, unknown>, 'page'));
    const { rows, total } = await store.searchMessages({
      ...toSearch(filters, user),
      statuses: ['quarantined'],
      limit: PAGE_SIZE,
      offset: (page - 1) * PAGE_SIZE,
    });
    return ctx.render(req, reply, 'quarantine', {
      title: 'Quarantine',
      rows: rows.map((m) => ({ m, rcpt: visibleRecipients(m, user), canAct: canActOn(m, user.scope) })),
      total,
      page,
      pages: Math.max(1, Math.ceil(total / PAGE_SIZE)),
      filters,
      domains: domainChoices(ctx, user),
      verdicts: VERDICTS.filter((v) => v !== 'clean'),
    });
  });

  app.post('/quarantine/bulk', async (req, reply) => {
    const user = ctx.user(req);
    const body = req.body as Record<string, unknown>;
    const action = field(body, 'action', 40) as MessageAction;
    const back = field(body, 'back', 2000);
    // Only a query string of the list page: no header or URL tricks in the redirect.
    const target = `/quarantine${/^\?[\x21-\x7e]{0,1999}$/.test(back) ? back : ''}`;
    const ids = [...new Set(fields(body, 'id', 120, 500))];
    if (!ACTIONS.includes(action)) {
      ctx.flash(req, 'error', 'Choose an action.');
      return reply.redirect(target, 303);
    }
    if (ids.length === 0) {
      ctx.flash(req, 'error', 'Select at least one message.');
      return reply.redirect(target, 303);
    }
    const done: string[] = [];
    const failed: string[] = [];
    for (const id of ids) {
      const record = MESSAGE_ID.test(id) ? await store.get(id) : undefined;
      if (!record || !canSee(record, user.scope)) {
        await ctx.audit(req, {
          action,
          messageId: id,
          outcome: 'denied',
          detail: record ? 'message outside the user’s scope (bulk)' : 'no such message (bulk)',
        });
        failed.push(`${id}: not found`);
        continue;
      }
      const r = await perform(ctx, req, user, record, action);
      (r.ok ? done : failed).push(`${id}: ${r.text}`);
    }
    if (done.length) ctx.flash(req, 'ok', `${ACTION_LABEL[action]}: ${done.length} message(s).`);
    for (const f of failed.slice(0, 20)) ctx.flash(req, 'error', f);
    return reply.redirect(target, 303);
  });

  app.get('/messages/:id', async (req, reply) => {
    const user = ctx.user(req);
    const m = await load(req, reply, 'view');
    if (!m) return reply;
    await ctx.audit(req, { action: 'view', messageId: m.id });
    const body = await readBody(ctx, m.id, config.console.previewMaxBytes);
    let view = null;
    let parseError: string | null = null;
    if (Buffer.isBuffer(body)) {
      try {
        view = (await parseForView(body)).view;
      } catch (err) {
        parseError = `The message could not be parsed for display: ${(err as Error).message}`;
      }
    }
    // Another tenant's recipients and their servers' replies stay out of the history.
    const hide = (text: string) => redactForScope(text, m, user.scope);
    const events = (await store.events(m.id)).map((e) => ({ at: e.at, kind: e.kind, detail: hide(e.detail) })); // not `data`: its fields (recipients) are not redacted for the scope
    const deliveries = (await store.deliveries(m.id)).filter((d) => recipientInScope(d.recipient, user.scope));
    const audit =
      user.account.role === 'user' ? [] : (await ctx.deps.audit.list({ messageId: m.id, limit: 50 })).rows.map((a) => ({ ...a, detail: hide(a.detail) }));
    const rights = rightsOf(config, m, user.account.role);
    const requests = (await ctx.deps.requests.forMessage(m.id)).filter((r) => recipientInScope(r.recipient, user.scope));
    return ctx.render(req, reply, 'message', {
      title: `Message ${m.id}`,
      m,
      rcpt: visibleRecipients(m, user),
      canAct: canActOn(m, user.scope),
      quarantined: m.status === 'quarantined',
      body: Buffer.isBuffer(body) ? 'ok' : body,
      view,
      parseError,
      images: field(req.query as Record<string, unknown>, 'images') === '1',
      events,
      deliveries,
      audit,
      actions: ACTIONS,
      rights,
      requests,
      pendingRequest: requests.some((r) => r.status === 'pending'),
    });
  });

  app.get('/messages/:id/preview', async (req, reply) => {
    const m = await load(req, reply, 'preview');
    if (!m) return reply;
    if (!(await allowed(req, reply, m, 'preview'))) return reply;
    const images = field(req.query as Record<string, unknown>, 'images') === '1';
    if (images) await ctx.audit(req, { action: 'preview-remote-images', messageId: m.id });
    const body = await readBody(ctx, m.id, config.console.previewMaxBytes);
    let doc: string;
    if (!Buffer.isBuffer(body)) {
      doc = plainDocument(body === 'missing' ? 'The message body is no longer stored.' : 'The message is too large to preview.');
    } else {
      const parsed = await parseForView(body).catch(() => null);
      if (!parsed) doc = plainDocument('The message could not be parsed.');
      else if (parsed.html === null) doc = plainDocument(parsed.view.text ?? '(no text)');
      else doc = sanitizeForPreview(parsed.html, { remoteImages: images, inlineImages: inlineImageMap(parsed.attachments) }).html;
    }
    return reply
      .header('content-security-policy', previewCsp(images))
      .header('x-content-type-options', 'nosniff')
      .header('cross-origin-resource-policy', 'same-origin')
      .type('text/html; charset=utf-8')
      .send(doc);
  });

  app.get('/messages/:id/raw', async (req, reply) => {
    const m = await load(req, reply, 'download');
    if (!m) return reply;
    if (!(await allowed(req, reply, m, 'download'))) return reply;
    const size = await ctx.deps.quarantine.size(m.id);
    if (size === undefined) {
      ctx.flash(req, 'error', 'The message body is no longer stored.');
      return reply.redirect(`/messages/${m.id}`, 303);
    }
    await ctx.audit(req, { action: 'download', messageId: m.id });
    // Never rendered by the browser: a download, with no type it could sniff or run.
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', `attachment; filename="${m.id}.eml"`)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "sandbox; default-src 'none'")
      .header('content-length', String(size))
      .send(ctx.deps.quarantine.open(m.id));
  });

  for (const action of ACTIONS) {
    app.post(`/messages/:id/${action}`, async (req, reply) => {
      const user = ctx.user(req);
      const m = await load(req, reply, action);
      if (!m) return reply;
      const r = await perform(ctx, req, user, m, action);
      if (r.forbidden) return ctx.render(req, reply, 'error', { title: 'Not allowed', message: r.text }, 403);
      ctx.flash(req, r.ok ? 'ok' : 'error', r.ok ? `${ACTION_LABEL[action]}: ${r.text}` : r.text);
      return reply.redirect(`/messages/${m.id}`, 303);
    });
  }
}

/** The hosted domains a user can filter by. */
/** The one hosted domain all of a message's recipients are in, or null (then the global model learns). */
function learnDomain(ctx: Ctx, m: MessageRecord): string | null {
  const domains = [...new Set(m.rcptTo.map(domainOf))];
  return domains.length === 1 && ctx.deps.config.domains[domains[0]] ? domains[0] : null;
}

export function domainChoices(ctx: Ctx, user: ConsoleUser): string[] {
  const hosted = Object.keys(ctx.deps.config.domains);
  if (user.scope.all) return hosted;
  const own = new Set([...user.scope.domains, ...user.scope.addresses.map(domainOf)]);
  return [...own].sort();
}

export function previewCsp(remoteImages: boolean): string {
  return [
    'sandbox', // no scripts, no forms, no popups, opaque origin
    "default-src 'none'",
    "style-src 'unsafe-inline'", // mail is styled inline; CSS cannot run code or leave the frame
    `img-src data:${remoteImages ? ' https: http:' : ''}`,
    "frame-ancestors 'self'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function plainDocument(text: string): string {
  // Long lines (tracking links) wrap: on a phone the frame is 340 px wide. The preview's own CSP allows inline style.
  return `<!doctype html><html><head><meta charset="utf-8"></head><body><pre style="white-space: pre-wrap; overflow-wrap: anywhere">${escapeHtml(text)}</pre></body></html>`;
}

type ActionResult = { ok: boolean; text: string; forbidden?: boolean };

/** One action on one message the user can see; shared by the message page and bulk actions. */
export async function perform(ctx: Ctx, req: FastifyRequest, user: ConsoleUser, m: MessageRecord, action: MessageAction): Promise<ActionResult> {
  const by = user.account.username;
  if (!canActOn(m, user.scope)) {
    await ctx.audit(req, { action, messageId: m.id, outcome: 'denied', detail: 'recipients outside the user’s scope' });
    return { ok: false, text: 'This message also went to recipients outside your domains or addresses; ask an administrator.' };
  }
  if (action === 'release' || action === 'release-allow') {
    const right = decide(ctx.deps.config, m, user.account.role, 'release');
    if (!right.allowed) {
      await ctx.audit(req, { action, messageId: m.id, outcome: 'denied', detail: right.reason });
      return { ok: false, forbidden: true, text: `${right.reason}${user.account.role === 'user' ? ' You can ask for its release instead.' : ''}` };
    }
  }
  const result = await run();
  await ctx.audit(req, { action, messageId: m.id, outcome: result.ok ? 'ok' : 'failed', detail: result.text });
  return result;

  async function run(): Promise<ActionResult> {
    switch (action) {
      case 'release': {
        const r = await ctx.deps.release(m.id, by);
        return r.ok ? { ok: true, text: `queued for delivery to ${m.rcptTo.join(', ')}` } : { ok: false, text: `Not released: ${r.reason}` };
      }
      case 'release-allow': {
        const r = await ctx.deps.release(m.id, by);
        if (!r.ok) return { ok: false, text: `Not released: ${r.reason}` };
        const listed = await addSenderToLists(ctx, req, user, m, 'allow');
        return { ok: true, text: `queued for delivery; ${listed}` };
      }
      case 'delete': {
        const r = await ctx.deps.remove(m.id, by);
        return r.ok ? { ok: true, text: 'the message is gone from the quarantine' } : { ok: false, text: `Not deleted: ${r.reason}` };
      }
      case 'learn-spam':
      case 'learn-ham': {
        const cls = action === 'learn-spam' ? 'spam' : 'ham';
        const body = await readBody(ctx, m.id, ctx.deps.config.console.upload.maxFileBytes);
        if (!Buffer.isBuffer(body))
          return { ok: false, text: body === 'missing' ? 'The message body is no longer stored.' : 'The message is too large to learn from.' };
        const domain = learnDomain(ctx, m);
        const r = await learnMessage({ spamd: ctx.deps.spamd, log: ctx.deps.learnLog, ...(ctx.deps.learner ? { learner: ctx.deps.learner } : {}) }, body, {
          as: cls,
          actor: by,
          // The learner's model for the recipients' domain (one domain: otherwise the global one);
          // an administrator's button confirms with full weight, a user's counts as one report.
          // A domain admin confirms for their domain's model; only a superadmin for the global one.
          domain,
          trusted: user.account.role === 'superadmin' || (user.account.role !== 'user' && domain !== null),
          source: 'console',
          messageId: m.id,
          maxBytes: ctx.deps.config.console.upload.maxFileBytes,
        });
        return { ok: r.outcome === 'learned' || r.outcome === 'already-learned', text: r.detail };
      }
      case 'block-sender':
        return { ok: true, text: await addSenderToLists(ctx, req, user, m, 'block') };
    }
  }
}

/**
 * Adds the message's envelope sender to the allow or block list of each recipient's owner: the
 * recipient's own list for an end user, the recipient's domain list for an administrator.
 */
async function addSenderToLists(ctx: Ctx, req: FastifyRequest, user: ConsoleUser, m: MessageRecord, kind: 'allow' | 'block'): Promise<string> {
  if (!m.mailFrom) return 'the null sender <> cannot be put on a list';
  const owners = new Set(m.rcptTo.map((r) => (user.account.role === 'user' ? r.toLowerCase() : domainOf(r))));
  const notes: string[] = [];
  for (const owner of owners) {
    const r = await ctx.deps.lists.add({
      kind,
      scope: owner.includes('@') ? 'user' : 'domain',
      owner,
      entry: m.mailFrom,
      comment: `from message ${m.id}`,
      createdBy: user.account.username,
    });
    notes.push(r.ok ? `${m.mailFrom} added to the ${kind} list of ${owner}` : `${owner}: ${r.error}`);
    await ctx.audit(req, {
      action: `list-add-${kind}`,
      messageId: m.id,
      target: `${owner}: ${m.mailFrom}`,
      outcome: r.ok ? 'ok' : 'failed',
      detail: r.ok ? '' : r.error,
    });
  }
  return notes.join('; ');
}
