// What a digest link's POST does to its message (routes/digest.ts checked the token and that the
// message is the recipient's). Every action first uses the token (compare-and-set), so a link
// acts once however often, and from however many consoles, it is posted; each is audited as
// "digest:<recipient>".
import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { learnMessage } from '../../gateway/learning.ts';
import type { ReleaseToken } from '../../gateway/store/digests.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';
import { domainOf } from '../../rules/envelope.ts';
import { readBody } from './quarantine.ts';
import { requestRelease } from './requests.ts';

/** A digest link found valid by its route (routes/digest.ts), with what it may do. */
export interface LinkCheck {
  token: ReleaseToken;
  value: string;
  m: MessageRecord | null;
  releasable: { allowed: true } | { allowed: false; reason: string };
  /** For release and not-spam: may this link release (the recipient is the only one)? */
  own: boolean;
}

export interface ActionOutcome {
  status: number;
  page: { done?: string; error?: string | null; asked?: string | null };
  /** Show the form again (the token was not used). */
  retry?: boolean;
}

const RELEASED = 'The message has been released and is on its way to your mailbox.';
const USED = 'This link has been used already.';

export async function actOnMessage(
  ctx: Ctx,
  req: FastifyRequest,
  r: LinkCheck & { m: MessageRecord },
  o: { asking: boolean; note: string },
): Promise<ActionOutcome> {
  const { token, m } = r;
  const actor = `digest:${token.recipient}`;
  const audit = (action: string, outcome: 'ok' | 'denied' | 'failed', detail: string) =>
    ctx.deps.audit.record({ actor, action, messageId: m.id, target: null, ip: req.ip, outcome, detail });
  const use = () => ctx.deps.digests.useToken(token.id);

  switch (token.action) {
    case 'release': {
      if (!o.asking && !r.releasable.allowed) {
        await audit('digest-release', 'denied', r.releasable.reason);
        return { status: 403, page: { error: `${r.releasable.reason} Use the link to ask for its release instead.` } };
      }
      if (o.asking && r.releasable.allowed)
        return { status: 409, retry: true, page: { error: 'You may release this message yourself; there is nothing to ask.' } };
      if (m.status !== 'quarantined' || !(await use())) {
        await audit(o.asking ? 'release-request' : 'digest-release', 'denied', 'not quarantined or link used');
        return { status: 409, page: { error: 'This message is no longer in quarantine, or the link has been used.' } };
      }
      if (o.asking) {
        const asked = await requestRelease(ctx, {
          requester: actor,
          recipient: token.recipient,
          m,
          note: o.note,
          audit: (outcome, detail) => audit('release-request', outcome, detail),
        });
        return { status: asked.ok ? 200 : asked.status, page: asked.ok ? { asked: asked.text } : { error: asked.text } };
      }
      const result = await ctx.deps.release(m.id, actor);
      await audit('digest-release', result.ok ? 'ok' : 'failed', result.ok ? '' : result.reason);
      return result.ok ? { status: 200, page: { done: RELEASED } } : { status: 409, page: { error: `The message could not be released: ${result.reason}` } };
    }
    case 'allow':
    case 'block': {
      if (!m.mailFrom) return { status: 409, page: { error: 'The null sender <> cannot be put on a list.' } };
      if (!(await use())) return { status: 410, page: { error: USED } };
      const added = await ctx.deps.lists.add({
        kind: token.action,
        scope: 'user',
        owner: token.recipient,
        entry: m.mailFrom,
        comment: `from a digest, message ${m.id}`,
        createdBy: actor,
      });
      await audit(`list-add-${token.action}`, added.ok ? 'ok' : 'failed', added.ok ? m.mailFrom : added.error);
      if (!added.ok) return { status: 400, page: { error: `${m.mailFrom} could not be added: ${added.error}` } };
      return {
        status: 200,
        page: {
          done: `${m.mailFrom} is now on your ${token.action} list.${token.action === 'allow' ? ' Its next messages are not held as spam.' : ' Its next messages to you are held.'}`,
        },
      };
    }
    case 'notspam': {
      if (!(await use())) return { status: 410, page: { error: USED } };
      const max = ctx.deps.config.console.upload.maxFileBytes;
      const body = await readBody(ctx, m.id, max);
      if (!Buffer.isBuffer(body)) {
        await audit('learn-ham', 'failed', `body ${body}`);
        return { status: 409, page: { error: body === 'missing' ? 'The message is no longer stored.' : 'The message is too large to learn from.' } };
      }
      const domain = domainOf(token.recipient);
      const learned = await learnMessage({ spamd: ctx.deps.spamd, log: ctx.deps.learnLog, ...(ctx.deps.learner ? { learner: ctx.deps.learner } : {}) }, body, {
        as: 'ham',
        actor,
        // One recipient's word: a report, not an administrator's confirmation.
        domain: ctx.deps.config.domains[domain] ? domain : null,
        trusted: false,
        source: 'digest',
        messageId: m.id,
        maxBytes: max,
      });
      const ok = learned.outcome === 'learned' || learned.outcome === 'already-learned';
      await audit('learn-ham', ok ? 'ok' : 'failed', learned.detail);
      const notes = [ok ? 'Thank you: the filter has learned that this message is not spam.' : `The filter could not learn from it: ${learned.detail}`];
      if (r.own && r.releasable.allowed && m.status === 'quarantined') {
        const result = await ctx.deps.release(m.id, actor);
        await audit('digest-release', result.ok ? 'ok' : 'failed', result.ok ? 'not spam' : result.reason);
        notes.push(result.ok ? RELEASED : `The message could not be released: ${result.reason}`);
      } else if (m.status === 'quarantined') {
        notes.push(
          r.own
            ? `${r.releasable.allowed ? '' : r.releasable.reason} It stays in quarantine; an administrator can release it.`
            : 'It also went to other people, so it stays in quarantine; an administrator can release it.',
        );
      }
      return { status: ok ? 200 : 502, page: { done: notes.join(' ') } };
    }
    default:
      return { status: 400, page: { error: 'This link cannot be used for this message.' } };
  }
}
