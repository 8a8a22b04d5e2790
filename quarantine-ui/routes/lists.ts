// Allow and block lists per domain and per user (and global, for superadmins). Entries are
// validated by rules/lists.ts; the gateway reads the same table, so an entry works on the next
// message. An entry id outside the user's scope is a 404, like a message id.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx, ConsoleUser } from '../ctx.ts';
import type { ListRow } from '../../gateway/store/lists.ts';
import { domainOf } from '../../rules/envelope.ts';
import { manageableOwners, mayManageOwner } from '../scope.ts';
import { field } from '../lib/forms.ts';

export function visibleLists(ctx: Ctx, user: ConsoleUser): Promise<ListRow[]> {
  const a = user.account;
  if (a.role === 'superadmin') return ctx.deps.lists.list({ all: true });
  if (a.role === 'domainadmin') return ctx.deps.lists.list({ domains: a.domains });
  return ctx.deps.lists.list({ addresses: a.addresses });
}

function ownerOf(row: ListRow): string {
  return row.scope === 'global' ? '*' : row.owner;
}

/** What the add form shows: empty, or what was typed when the entry was refused. */
interface ListForm {
  kind: 'allow' | 'block';
  owner: string;
  entry: string;
  comment: string;
}

export async function registerListRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  // Read per request: hosted domains change while the console runs (gateway/domains/sync.ts).
  const hostedNow = () => Object.keys(ctx.deps.config.domains);

  /** The lists page: the user's lists, the add form (refilled after a refused entry) and its error. */
  const listsPage = async (req: FastifyRequest, reply: FastifyReply, form: ListForm, error?: string) => {
    const user = ctx.user(req);
    const rows = await visibleLists(ctx, user);
    return ctx.render(
      req,
      reply,
      'lists',
      {
        title: 'Allow and block lists',
        allow: rows.filter((r) => r.kind === 'allow'),
        block: rows.filter((r) => r.kind === 'block'),
        owners: manageableOwners(user.account, hostedNow()),
        form,
        ...(error ? { error } : {}),
      },
      error ? 400 : undefined,
    );
  };

  app.get('/lists', async (req, reply) => listsPage(req, reply, { kind: 'allow', owner: '', entry: '', comment: '' }));

  app.post('/lists', async (req, reply) => {
    const user = ctx.user(req);
    const body = req.body as Record<string, unknown>;
    const kind = field(body, 'kind', 10) === 'block' ? 'block' : 'allow';
    // A recipient address typed by an administrator wins over the owner chosen in the list.
    const owner = (field(body, 'ownerAddress', 320).trim() || field(body, 'owner', 320).trim()).toLowerCase();
    const entry = field(body, 'entry', 400);
    const comment = field(body, 'comment', 200);
    const again = async (error: string) => {
      await ctx.audit(req, { action: `list-add-${kind}`, target: `${owner}: ${entry}`, outcome: 'denied', detail: error });
      return listsPage(req, reply, { kind, owner, entry, comment }, error);
    };
    if (!owner || !mayManageOwner(user.account, owner)) return again('You cannot manage lists for that owner.');
    if (owner !== '*' && !hostedNow().includes(owner.includes('@') ? domainOf(owner) : owner)) return again(`${owner} is not in a hosted domain.`);
    const r = await ctx.deps.lists.add({
      kind,
      scope: owner === '*' ? 'global' : owner.includes('@') ? 'user' : 'domain',
      owner: owner === '*' ? '' : owner,
      entry,
      comment,
      createdBy: user.account.username,
    });
    if (!r.ok) return again(r.error);
    await ctx.audit(req, { action: `list-add-${kind}`, target: `${owner}: ${r.row.text}` });
    ctx.flash(req, 'ok', `${r.row.text} added to the ${kind} list of ${owner === '*' ? 'all domains' : owner}.`);
    return reply.redirect('/lists', 303);
  });

  app.post('/lists/:id/delete', async (req, reply) => {
    const user = ctx.user(req);
    const raw = (req.params as { id: string }).id;
    const id = /^\d{1,12}$/.test(raw) ? Number(raw) : NaN;
    const row = Number.isFinite(id) ? await ctx.deps.lists.get(id) : undefined;
    if (!row || !mayManageOwner(user.account, ownerOf(row))) {
      await ctx.audit(req, {
        action: 'list-remove',
        target: `entry ${raw.slice(0, 20)}`,
        outcome: 'denied',
        detail: row ? 'entry outside the user’s scope' : 'no such entry',
      });
      return ctx.notFound(req, reply);
    }
    await ctx.deps.lists.remove(row.id);
    await ctx.audit(req, { action: `list-remove-${row.kind}`, target: `${ownerOf(row)}: ${row.text}` });
    ctx.flash(req, 'ok', `${row.text} removed from the ${row.kind} list of ${row.scope === 'global' ? 'all domains' : row.owner}.`);
    return reply.redirect('/lists', 303);
  });
}
