// Release requests: where the release rights (lib/rights.ts) keep an end user from releasing a
// message (a virus, a banned attachment…), the user asks; the admins of the recipient's domain see
// the request (a count in the navigation, the list here) and approve it — the message is released
// once, through the same release path as the Release button — or deny it, and the user is told (in
// the console, and by mail when the console can send mail). Every step is in the audit log.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { consolePublicUrl, type Ctx, type ConsoleUser } from '../ctx.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';
import type { ReleaseRequest } from '../../gateway/store/release-requests.ts';
import { canActOn, canSee, recipientInScope } from '../scope.ts';
import { field, MESSAGE_ID } from '../lib/forms.ts';
import { decide } from '../lib/rights.ts';
import { displayText } from '../lib/text.ts';

export type RequestOutcome = { ok: true; text: string } | { ok: false; status: number; text: string };

/**
 * An end user's request for one message (from the console or a digest link). Only where the user
 * could act on the message but the release right is refused: otherwise there is nothing to ask.
 */
export async function requestRelease(
  ctx: Ctx,
  o: { requester: string; recipient: string; m: MessageRecord; note: string; audit(outcome: 'ok' | 'denied', detail: string): Promise<void> },
): Promise<RequestOutcome> {
  const { m } = o;
  if (m.status !== 'quarantined') {
    await o.audit('denied', `not in quarantine (${m.status})`);
    return { ok: false, status: 409, text: `This message is no longer in quarantine (${m.status}).` };
  }
  if (decide(ctx.deps.config, m, 'user', 'release').allowed) {
    await o.audit('denied', 'the recipient may release it');
    return { ok: false, status: 409, text: 'You may release this message yourself; there is nothing to ask.' };
  }
  const r = await ctx.deps.requests.create({ messageId: m.id, requester: o.requester, recipient: o.recipient, note: o.note });
  if (!r.ok) {
    await o.audit('denied', 'a request is already open');
    return { ok: false, status: 409, text: 'Its release has been asked for already; an administrator will answer.' };
  }
  await o.audit('ok', `request ${r.id}${o.note ? `: ${o.note}` : ''}`);
  const domain = o.recipient.slice(o.recipient.lastIndexOf('@') + 1);
  await tellAdmins(ctx, domain, o.recipient, m, o.note);
  return { ok: true, text: `Your request has been sent to the administrators of ${domain}. You will be told when they answer.` };
}

export async function registerRequestRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { store, requests } = ctx.deps;

  app.post('/messages/:id/request-release', async (req, reply) => {
    const user = ctx.user(req);
    const id = (req.params as { id: string }).id;
    const m = MESSAGE_ID.test(id) ? await store.get(id) : undefined;
    if (!m || !canSee(m, user.scope)) {
      await ctx.audit(req, {
        action: 'release-request',
        messageId: id.slice(0, 120),
        outcome: 'denied',
        detail: m ? 'message outside the user’s scope' : 'no such message',
      });
      return ctx.notFound(req, reply);
    }
    const audit = (outcome: 'ok' | 'denied', detail: string) => ctx.audit(req, { action: 'release-request', messageId: m.id, outcome, detail });
    if (user.account.role !== 'user' || !canActOn(m, user.scope)) {
      await audit('denied', user.account.role !== 'user' ? 'administrators release or ask another administrator' : 'recipients outside the user’s scope');
      return ctx.render(req, reply, 'error', { title: 'Not allowed', message: 'Only the recipient of a message can ask for its release.' }, 403);
    }
    const recipient = m.rcptTo.find((r) => recipientInScope(r, user.scope))!.toLowerCase();
    const r = await requestRelease(ctx, {
      requester: user.account.username,
      recipient,
      m,
      note: field(req.body as Record<string, unknown>, 'note', 500).trim(),
      audit,
    });
    ctx.flash(req, r.ok ? 'ok' : 'error', r.text);
    return reply.redirect(`/messages/${m.id}`, 303);
  });

  app.get('/requests', async (req, reply) => {
    const user = ctx.user(req);
    const admin = user.account.role !== 'user';
    const [pending, recent] = await Promise.all([requests.list(user.scope, { status: 'pending', limit: 200 }), requests.list(user.scope, { limit: 50 })]);
    const withMessage = async (list: ReleaseRequest[]) =>
      Promise.all(
        list.map(async (r) => {
          const m = await store.get(r.messageId);
          return { r, m: m ?? null, canApprove: admin && !!m && canActOn(m, user.scope) && decide(ctx.deps.config, m, user.account.role, 'release').allowed };
        }),
      );
    return ctx.render(req, reply, 'requests', {
      title: admin ? 'Release requests' : 'Your release requests',
      admin,
      pending: admin ? await withMessage(pending) : [],
      recent: await withMessage(recent.filter((r) => !admin || r.status !== 'pending')),
    });
  });

  /** The request, if it exists, is pending and this administrator may answer it; else an answer page. */
  async function answerable(
    req: FastifyRequest,
    reply: FastifyReply,
    user: ConsoleUser,
    action: string,
  ): Promise<{ r: ReleaseRequest; m: MessageRecord } | undefined> {
    const rid = Number.parseInt((req.params as { rid: string }).rid, 10);
    const r = Number.isSafeInteger(rid) ? await requests.get(rid) : undefined;
    const m = r && (await store.get(r.messageId));
    const target = `request ${Number.isSafeInteger(rid) ? rid : '?'}`;
    if (!r || !m || user.account.role === 'user' || !recipientInScope(r.recipient, user.scope)) {
      await ctx.audit(req, {
        action,
        target,
        messageId: r?.messageId ?? null,
        outcome: 'denied',
        detail: !r || !m ? 'no such request' : 'request outside the user’s scope',
      });
      void ctx.notFound(req, reply);
      return undefined;
    }
    const right = decide(ctx.deps.config, m, user.account.role, 'release');
    const refusal = !canActOn(m, user.scope)
      ? 'This message also went to recipients outside your domains: only an administrator of all of them can answer.'
      : !right.allowed
        ? right.reason
        : r.status !== 'pending'
          ? `This request has been answered already (${r.status}).`
          : null;
    if (refusal) {
      await ctx.audit(req, { action, target, messageId: m.id, outcome: 'denied', detail: refusal });
      void ctx.render(req, reply, 'error', { title: 'Not allowed', message: refusal }, r.status !== 'pending' ? 409 : 403);
      return undefined;
    }
    return { r, m };
  }

  app.post('/requests/:rid/approve', async (req, reply) => {
    const user = ctx.user(req);
    const found = await answerable(req, reply, user, 'release-request-approve');
    if (!found) return reply;
    const { r, m } = found;
    const by = user.account.username;
    const target = `request ${r.id}`;
    if (m.status !== 'quarantined') {
      // Released or deleted meanwhile by other means: the request is closed, and the user sees why.
      const why = `The message is no longer in quarantine (${m.status}).`;
      await requests.decide(r.id, 'denied', by, why);
      await ctx.audit(req, { action: 'release-request-approve', target, messageId: m.id, outcome: 'failed', detail: why });
      ctx.flash(req, 'error', why);
      return reply.redirect('/requests', 303);
    }
    // The compare-and-set first: of two admins approving at once, one releases.
    if (!(await requests.decide(r.id, 'approved', by, ''))) {
      await ctx.audit(req, { action: 'release-request-approve', target, messageId: m.id, outcome: 'denied', detail: 'answered already' });
      ctx.flash(req, 'error', 'This request has been answered already.');
      return reply.redirect('/requests', 303);
    }
    const released = await ctx.deps.release(m.id, `${by} (request of ${r.requester})`);
    if (!released.ok) await requests.reopen(r.id);
    await ctx.audit(req, {
      action: 'release-request-approve',
      target,
      messageId: m.id,
      outcome: released.ok ? 'ok' : 'failed',
      detail: released.ok ? `released for ${r.recipient}` : released.reason,
    });
    ctx.flash(req, released.ok ? 'ok' : 'error', released.ok ? `Approved: the message is on its way to ${r.recipient}.` : `Not released: ${released.reason}`);
    return reply.redirect('/requests', 303);
  });

  app.post('/requests/:rid/deny', async (req, reply) => {
    const user = ctx.user(req);
    const found = await answerable(req, reply, user, 'release-request-deny');
    if (!found) return reply;
    const { r, m } = found;
    const answer = field(req.body as Record<string, unknown>, 'answer', 500).trim();
    const target = `request ${r.id}`;
    if (!(await requests.decide(r.id, 'denied', user.account.username, answer))) {
      await ctx.audit(req, { action: 'release-request-deny', target, messageId: m.id, outcome: 'denied', detail: 'answered already' });
      ctx.flash(req, 'error', 'This request has been answered already.');
      return reply.redirect('/requests', 303);
    }
    await ctx.audit(req, { action: 'release-request-deny', target, messageId: m.id, outcome: 'ok', detail: answer });
    const told = await tellDenied(ctx, r, m, answer);
    ctx.flash(req, 'ok', told ? `Denied; ${r.recipient} has been told by mail and in the console.` : `Denied; ${r.recipient} sees the answer in the console.`);
    return reply.redirect('/requests', 303);
  });
}

/** The domain's admin address (the one notifyAdmin uses: policy.adminAddress, else postmaster@) hears of a new request. */
async function tellAdmins(ctx: Ctx, domain: string, recipient: string, m: MessageRecord, note: string): Promise<void> {
  if (!ctx.deps.notify) return;
  const { config } = ctx.deps;
  const to = config.domains[domain]?.policy?.adminAddress ?? config.policy.adminAddress ?? `postmaster@${domain}`;
  const text = [
    `${recipient} asks for the release of a message held in quarantine.`,
    '',
    `  From: ${displayText(m.mailFrom || '<>', 200)}`,
    `  Subject: ${displayText(m.subject ?? '(none)', 200)}`,
    `  Held because: ${displayText(m.reason ?? m.verdict ?? 'unknown', 200)}`,
    ...(note ? [`  Note: ${displayText(note, 500)}`] : []),
    '',
    `Approve or deny it in the console: ${consolePublicUrl(config)}requests`,
  ];
  try {
    await ctx.deps.notify(to, `Release request from ${recipient}`, text.join('\r\n'));
  } catch (err) {
    ctx.deps.logger.error({ err, messageId: m.id }, 'could not send the release-request notice to the admins');
  }
}

/** A short notice to the recipient, when the console can send mail; false when it could not. */
async function tellDenied(ctx: Ctx, r: ReleaseRequest, m: MessageRecord, answer: string): Promise<boolean> {
  if (!ctx.deps.notify) return false;
  const text = [
    `Your request to release a message held in quarantine has been denied.`,
    '',
    `  From: ${displayText(m.mailFrom || '<>', 200)}`,
    `  Subject: ${displayText(m.subject ?? '(none)', 200)}`,
    `  Held because: ${displayText(m.reason ?? m.verdict ?? 'unknown', 200)}`,
    answer ? `  Answer: ${displayText(answer, 500)}` : '',
    '',
    'The message stays in quarantine. Ask your administrator if you need to know more.',
  ].filter((l, i, all) => l !== '' || all[i - 1] !== '');
  try {
    await ctx.deps.notify(r.recipient, 'Your release request was denied', text.join('\r\n'));
    return true;
  } catch (err) {
    ctx.deps.logger.error({ err, request: r.id }, 'could not send the release-request notice');
    return false;
  }
}
