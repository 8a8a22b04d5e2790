// API: allow/block lists, hosted domains (superadmin tokens) and domain policy (a domain admin
// token within the keys its domain's adminMay names). Domain settings are JSON with the shape of
// the config file's domains.<name>, validated by the file's schema: an error names the key.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { removeDomain, saveDomain, savePolicy, viewDomain, viewDomains, type ChangeResult } from '../../gateway/domains/manage.ts';
import { domainOf } from '../../rules/envelope.ts';
import { mayManageOwner } from '../scope.ts';
import { visibleLists } from '../routes/lists.ts';
import { ApiError, apiNotFound } from './errors.ts';

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', description: 'hosted domain' } } } as const;
const settingsDoc = 'As under domains.<name> in the config file (downstream, recipients, checks, policy, rules, reports, releaseRights); see the README.';

export async function registerSettingsApi(api: FastifyInstance, ctx: Ctx): Promise<void> {
  const port = ctx.deps.hostedDomains;
  const isSuper = (req: FastifyRequest) => ctx.user(req).account.role === 'superadmin';
  const canSeeDomain = (req: FastifyRequest, name: string) => isSuper(req) || ctx.user(req).account.domains.includes(name);

  /** A change is applied on this node at once and audited; a refusal says which key. */
  async function done(req: FastifyRequest, action: string, target: string, r: ChangeResult) {
    if (!r.ok) {
      await ctx.audit(req, { action, target, outcome: r.status === 403 ? 'denied' : 'failed', detail: `${r.errors.join('; ')} (API)` });
      throw new ApiError(r.status === 404 ? 404 : r.status, r.status === 404 ? 'not found' : 'refused', r.errors);
    }
    await port.refresh();
    await ctx.audit(req, { action, target: r.name, detail: `${r.detail} (API)` });
    return { ok: true, name: r.name };
  }

  async function domainFor(req: FastifyRequest, action: string) {
    const name = (req.params as { name: string }).name.toLowerCase();
    const d = canSeeDomain(req, name) ? await viewDomain(port.store, port.fileDomains(), name) : undefined;
    return d ?? apiNotFound(ctx, req, { action, target: name.slice(0, 255), detail: 'domain outside the user’s scope or not hosted' });
  }
  const superOnly = async (req: FastifyRequest, action: string) => {
    if (!isSuper(req))
      await apiNotFound(ctx, req, {
        action,
        target: (req.params as { name?: string }).name?.slice(0, 255) ?? '',
        detail: 'only superadmin tokens change domains',
      });
  };

  api.get('/lists', { schema: { tags: ['lists'], summary: 'Allow and block list entries the token may see' } }, async (req) => ({
    entries: await visibleLists(ctx, ctx.user(req)),
  }));

  api.post(
    '/lists',
    {
      schema: {
        tags: ['lists'],
        summary: 'Add an allow or block entry (owner: a hosted domain, an address in one, or "*" for superadmins)',
        body: {
          type: 'object',
          required: ['kind', 'owner', 'entry'],
          additionalProperties: false,
          properties: {
            kind: { type: 'string', enum: ['allow', 'block'] },
            owner: { type: 'string', maxLength: 320 },
            entry: { type: 'string', maxLength: 400 },
            comment: { type: 'string', maxLength: 200 },
          },
        },
      },
    },
    async (req, reply) => {
      const user = ctx.user(req);
      const b = req.body as { kind: 'allow' | 'block'; owner: string; entry: string; comment?: string };
      const owner = b.owner.trim().toLowerCase();
      const hosted = Object.keys(ctx.deps.config.domains);
      if (!mayManageOwner(user.account, owner) || (owner !== '*' && !hosted.includes(owner.includes('@') ? domainOf(owner) : owner))) {
        await ctx.audit(req, {
          action: `list-add-${b.kind}`,
          target: `${owner}: ${b.entry}`.slice(0, 400),
          outcome: 'denied',
          detail: 'owner outside the user’s scope (API)',
        });
        throw new ApiError(403, `you cannot manage lists of ${owner}`);
      }
      const r = await ctx.deps.lists.add({
        kind: b.kind,
        scope: owner === '*' ? 'global' : owner.includes('@') ? 'user' : 'domain',
        owner: owner === '*' ? '' : owner,
        entry: b.entry,
        comment: b.comment ?? '',
        createdBy: user.account.username,
      });
      if (!r.ok) throw new ApiError(400, r.error);
      await ctx.audit(req, { action: `list-add-${b.kind}`, target: `${owner}: ${r.row.text}`, detail: 'API' });
      return reply.code(201).send(r.row);
    },
  );

  api.delete(
    '/lists/:id',
    {
      schema: {
        tags: ['lists'],
        summary: 'Remove a list entry',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } },
      },
    },
    async (req) => {
      const id = (req.params as { id: number }).id;
      const row = await ctx.deps.lists.get(id);
      if (!row || !mayManageOwner(ctx.user(req).account, row.scope === 'global' ? '*' : row.owner))
        return apiNotFound(ctx, req, { action: 'list-remove', target: `entry ${id}`, detail: row ? 'entry outside the user’s scope' : 'no such entry' });
      await ctx.deps.lists.remove(row.id);
      await ctx.audit(req, { action: `list-remove-${row.kind}`, target: `${row.scope === 'global' ? '*' : row.owner}: ${row.text}`, detail: 'API' });
      return { ok: true };
    },
  );

  api.get(
    '/domains',
    { schema: { tags: ['domains'], summary: 'Hosted domains the token may see, with their settings and where they come from (file or database)' } },
    async (req) => ({
      domains: (await viewDomains(port.store, port.fileDomains())).filter((d) => canSeeDomain(req, d.name)),
    }),
  );

  api.get('/domains/:name', { schema: { tags: ['domains'], summary: 'One hosted domain', params: nameParams } }, async (req) => domainFor(req, 'domain-view'));

  api.put(
    '/domains/:name',
    {
      schema: {
        tags: ['domains'],
        summary: 'Add or replace a hosted domain (superadmin token); live on every node within database.domainsPollMs',
        params: nameParams,
        body: {
          type: 'object',
          required: ['settings'],
          additionalProperties: false,
          properties: {
            settings: { type: 'object', description: settingsDoc, additionalProperties: true },
            adminMay: {
              type: 'array',
              items: { type: 'string' },
              description: 'policy keys the domain’s admins may change, e.g. ["spam.threshold", "actions.spam"]',
            },
          },
        },
      },
    },
    async (req) => {
      await superOnly(req, 'domain-put');
      const name = (req.params as { name: string }).name.toLowerCase();
      const b = req.body as { settings: unknown; adminMay?: string[] };
      return done(req, 'domain-put', name, await saveDomain(port.store, name, b.settings, b.adminMay ?? [], ctx.user(req).account.username));
    },
  );

  api.delete(
    '/domains/:name',
    { schema: { tags: ['domains'], summary: 'Remove a hosted domain kept in the database (superadmin token)', params: nameParams } },
    async (req) => {
      await superOnly(req, 'domain-remove');
      const name = (req.params as { name: string }).name.toLowerCase();
      return done(req, 'domain-remove', name, await removeDomain(port.store, name, port.fileDomains()));
    },
  );

  api.get(
    '/domains/:name/policy',
    { schema: { tags: ['policy'], summary: 'A domain’s policy and the keys its admins may change', params: nameParams } },
    async (req) => {
      const d = await domainFor(req, 'policy-view');
      return { policy: d.settings.policy ?? {}, adminMay: d.adminMay };
    },
  );

  api.put(
    '/domains/:name/policy',
    {
      schema: {
        tags: ['policy'],
        summary: 'Replace a domain’s policy (a domain admin token: only the keys adminMay names may differ)',
        params: nameParams,
        body: {
          type: 'object',
          required: ['policy'],
          additionalProperties: false,
          properties: { policy: { type: 'object', additionalProperties: true, description: 'as under domains.<name>.policy in the config file' } },
        },
      },
    },
    async (req) => {
      const d = await domainFor(req, 'policy-edit');
      const r = await savePolicy(
        port.store,
        d,
        (req.body as { policy: unknown }).policy,
        isSuper(req) ? 'superadmin' : 'domainadmin',
        ctx.user(req).account.username,
      );
      return done(req, 'policy-edit', d.name, r);
    },
  );
}
