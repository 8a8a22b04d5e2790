// Links from quarantine digests and notices: no login, the signed single-use token is the
// authority, and only for the one action, message and recipient it was issued for
// (lib/digest-links.ts). GET shows what the link would do (safe for link scanners that pre-fetch);
// POST (with a CSRF token) uses the token once (compare-and-set) and acts:
//   release  — releases, or for a class the recipient may not release (lib/rights.ts) asks the
//              domain's administrators to (routes/requests.ts); a release post for such a class
//              (a forged form) is refused with 403 and audited;
//   allow / block — puts the sender on the recipient's own allow or block list;
//   notspam  — learns the message as not spam (one user's report) and releases it where allowed;
//   login    — logs the recipient in to their quarantine, creating their end-user account on
//              first use (routes/digest-login.ts).
// A link used twice, or expired, gets a page that says so (410); a link of a recipient whose
// account is disabled, 403.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import type { LinkAction } from '../../gateway/store/digests.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';
import { linksFor } from '../../rules/digest.ts';
import { checkToken } from '../lib/digest-links.ts';
import { field } from '../lib/forms.ts';
import { decide } from '../lib/rights.ts';
import { actOnMessage, type LinkCheck } from './digest-actions.ts';
import { loginByLink } from './digest-login.ts';

export const LINK_TITLES: Record<LinkAction, string> = {
  release: 'Release from quarantine',
  allow: 'Always allow this sender',
  block: 'Block this sender',
  notspam: 'Not spam',
  login: 'Open your quarantine',
};

export async function registerDigestRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const deps = { digests: ctx.deps.digests, secret: ctx.deps.secret, now: ctx.deps.now };

  const refuse = async (
    req: FastifyRequest,
    reply: FastifyReply,
    action: LinkAction | null,
    messageId: string | null,
    detail: string,
    error: string,
    status: number,
  ) => {
    await ctx.deps.audit.record({ actor: 'digest-link', action: `digest-${action ?? 'link'}`, messageId, target: null, ip: req.ip, outcome: 'denied', detail });
    void ctx.render(req, reply, 'digest', { title: action ? LINK_TITLES[action] : 'Quarantine link', error, value: null, m: null }, status);
    return undefined;
  };

  const check = async (req: FastifyRequest, reply: FastifyReply): Promise<LinkCheck | undefined> => {
    const value = (req.params as { token: string }).token;
    const c = await checkToken(deps, value);
    if (!c.ok) return refuse(req, reply, null, null, c.reason, `${c.reason} Use a newer digest, or ask your administrator.`, 410);
    const { token } = c;
    // An administrator who disables a recipient's account ends what that person does here: the
    // links in their mailbox act for them as much as a session would.
    if ((await ctx.deps.accounts.byName(token.recipient))?.disabled) {
      return refuse(
        req,
        reply,
        token.action,
        token.messageId || null,
        'the recipient’s account is disabled',
        'Your account has been disabled; ask your administrator.',
        403,
      );
    }
    if (token.action === 'login') return { token, value, m: null, own: true, releasable: { allowed: false, reason: '' } };
    const m = (await ctx.deps.store.get(token.messageId)) ?? null;
    // The link is bound to one recipient of this message; releasing needs every recipient to be that one.
    const addressed = m?.rcptTo.some((r) => r.toLowerCase() === token.recipient) ?? false;
    const choice =
      m &&
      linksFor({ recipient: token.recipient, rcptTo: m.rcptTo, mailFrom: m.mailFrom, userMayRelease: decide(ctx.deps.config, m, 'user', 'release').allowed });
    if (!m || !addressed || (token.action === 'release' && choice?.release === 'none')) {
      return refuse(req, reply, token.action, token.messageId, 'message gone or not bound to the recipient', 'This link cannot be used for this message.', 404);
    }
    const right = decide(ctx.deps.config, m, 'user', 'release');
    return { token, value, m, own: choice!.release !== 'none', releasable: right.allowed ? { allowed: true } : { allowed: false, reason: right.reason } };
  };

  app.get('/d/:token', async (req, reply) => {
    const r = await check(req, reply);
    if (!r) return reply;
    const { action } = r.token;
    const releaseGone = (action === 'release' || action === 'notspam') && r.m && r.m.status !== 'quarantined';
    return ctx.render(req, reply, 'digest', {
      title: LINK_TITLES[action],
      action,
      recipient: r.token.recipient,
      m: r.m,
      value: r.value,
      requestOnly: action === 'release' && !r.releasable.allowed,
      refusal: r.releasable.allowed ? null : r.releasable.reason,
      willRelease: action === 'notspam' && r.own && r.releasable.allowed && !releaseGone,
      error: action === 'release' && releaseGone ? `This message is no longer in quarantine (${r.m!.status}).` : null,
    });
  });

  app.post('/d/:token', { config: { rateLimit: { max: 30, timeWindow: 60_000 } } }, async (req, reply) => {
    const r = await check(req, reply);
    if (!r) return reply;
    if (r.token.action === 'login') return loginByLink(ctx, req, reply, r.token);
    const asking = field(req.body as Record<string, unknown>, 'action', 20) === 'request';
    const note = field(req.body as Record<string, unknown>, 'note', 500).trim();
    const out = await actOnMessage(ctx, req, r as LinkCheck & { m: MessageRecord }, { asking, note });
    return ctx.render(
      req,
      reply,
      'digest',
      { title: LINK_TITLES[r.token.action], action: r.token.action, m: r.m, value: out.retry ? r.value : null, ...out.page },
      out.status,
    );
  });
}
