// Hosted domains managed in the console (stored in the database, live on every node within
// database.domainsPollMs; gateway/domains/). Superadmins add, edit and remove domains and say
// which policy keys each domain's admins may change; a domain admin edits their own domain's
// policy within that list. Settings are typed as YAML, exactly as under the file's
// domains.<name>, and validated by the file's schema (errors name the key).
//
// A domain outside the user's reach, or a page for superadmins asked by someone else, is the
// same 404 as a domain that does not exist, and an audit row.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { field } from '../lib/forms.ts';
import { readYaml, writeYaml } from '../lib/yaml-form.ts';
import { removeDomain, saveDomain, savePolicy, viewDomain, type ChangeResult } from '../../gateway/domains/manage.ts';
import { parseAdminMay } from '../../rules/policy-bounds.ts';

/** What a new domain's form starts with: the smallest valid settings, to be edited. */
const NEW_DOMAIN_TEMPLATE = 'downstream:\n  - host: mail.example.net\n    port: 25\nrecipients:\n  mode: any\n';

export async function registerDomainAdminRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const port = ctx.deps.hostedDomains;
  const isSuper = (req: FastifyRequest) => ctx.user(req).account.role === 'superadmin';

  async function denied(req: FastifyRequest, reply: FastifyReply, action: string, target: string, why: string) {
    await ctx.audit(req, { action, target: target.slice(0, 255), outcome: 'denied', detail: why });
    return ctx.notFound(req, reply);
  }

  const editPage = (
    req: FastifyRequest,
    reply: FastifyReply,
    form: { name: string; yaml: string; adminMay: string; isNew: boolean },
    errors: string[] = [],
    status = 200,
  ) => ctx.render(req, reply, 'domain-edit', { title: form.isNew ? 'Add a domain' : `Domain ${form.name}`, form, errors }, status);

  /** Applies a change on this node at once, audits it, and tells the user. */
  async function finish(req: FastifyRequest, reply: FastifyReply, action: string, r: ChangeResult & { ok: true }) {
    await port.refresh();
    await ctx.audit(req, { action, target: r.name, detail: r.detail });
    ctx.flash(
      req,
      'ok',
      `${r.name}: ${action === 'domain-remove' ? 'removed' : 'saved'}; every node applies it within ${Math.ceil(ctx.deps.config.database.domainsPollMs / 1000)} s.`,
    );
    return reply.redirect('/domains', 303);
  }

  app.get('/domains/new', async (req, reply) => {
    if (!isSuper(req)) return denied(req, reply, 'domain-add', '/domains/new', 'only superadmins add domains');
    return editPage(req, reply, { name: '', yaml: NEW_DOMAIN_TEMPLATE, adminMay: '', isNew: true });
  });

  const save = (isNew: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const body = req.body as Record<string, unknown>;
    const name = (isNew ? field(body, 'name', 255) : (req.params as { name: string }).name).trim().toLowerCase();
    const action = isNew ? 'domain-add' : 'domain-edit';
    if (!isSuper(req)) return denied(req, reply, action, name, 'only superadmins change domains');
    const form = { name, yaml: field(body, 'settings', 100_000), adminMay: field(body, 'adminMay', 2000), isNew };
    const existing = await viewDomain(port.store, port.fileDomains(), name);
    if (!isNew && !existing) return denied(req, reply, action, name, 'no such domain');
    const errors: string[] = [];
    if (isNew && existing) errors.push(`${name} is already hosted; edit it instead`);
    const settings = readYaml(form.yaml, `domains["${name}"]`);
    if (!settings.ok) errors.push(settings.error);
    const adminMay = parseAdminMay(form.adminMay);
    if (!adminMay.ok) errors.push(`adminMay: ${adminMay.error}`);
    if (errors.length === 0 && settings.ok && adminMay.ok) {
      const r = await saveDomain(port.store, name, settings.value, adminMay.keys, ctx.user(req).account.username);
      if (r.ok) return finish(req, reply, action, r);
      errors.push(...r.errors);
    }
    await ctx.audit(req, { action, target: name || '(no name)', outcome: 'failed', detail: errors.join('; ') });
    return editPage(req, reply, form, errors, 400);
  };
  app.post('/domains/new', save(true));
  app.post('/domains/:name/edit', save(false));

  app.get('/domains/:name/edit', async (req, reply) => {
    const name = (req.params as { name: string }).name.toLowerCase();
    if (!isSuper(req)) return denied(req, reply, 'domain-edit', name, 'only superadmins change domains');
    const d = await viewDomain(port.store, port.fileDomains(), name);
    if (!d) return denied(req, reply, 'domain-edit', name, 'no such domain');
    return editPage(req, reply, { name, yaml: writeYaml(d.settings), adminMay: d.adminMay.join(' '), isNew: false });
  });

  app.post('/domains/:name/remove', async (req, reply) => {
    const name = (req.params as { name: string }).name.toLowerCase();
    if (!isSuper(req)) return denied(req, reply, 'domain-remove', name, 'only superadmins remove domains');
    const r = await removeDomain(port.store, name, port.fileDomains());
    if (r.ok) return finish(req, reply, 'domain-remove', r);
    await ctx.audit(req, { action: 'domain-remove', target: name, outcome: 'failed', detail: r.errors.join('; ') });
    ctx.flash(req, 'error', r.errors.join('; '));
    return reply.redirect('/domains', 303);
  });

  /** The domain, when the user may edit its policy (superadmin, or an admin of this domain). */
  async function policyDomain(req: FastifyRequest) {
    const user = ctx.user(req);
    const name = (req.params as { name: string }).name.toLowerCase();
    const mine = user.account.role === 'superadmin' || (user.account.role === 'domainadmin' && user.account.domains.includes(name));
    return { name, domain: mine ? await viewDomain(port.store, port.fileDomains(), name) : undefined };
  }

  const policyPage = (req: FastifyRequest, reply: FastifyReply, name: string, yaml: string, adminMay: string[], errors: string[] = [], status = 200) =>
    ctx.render(req, reply, 'domain-policy', { title: `Policy of ${name}`, name, yaml, adminMay, superadmin: isSuper(req), errors }, status);

  app.get('/domains/:name/policy', async (req, reply) => {
    const { name, domain } = await policyDomain(req);
    if (!domain) return denied(req, reply, 'policy-edit', name, 'domain outside the user’s scope or not hosted');
    return policyPage(req, reply, name, writeYaml(domain.settings.policy), domain.adminMay);
  });

  app.post('/domains/:name/policy', async (req, reply) => {
    const { name, domain } = await policyDomain(req);
    if (!domain) return denied(req, reply, 'policy-edit', name, 'domain outside the user’s scope or not hosted');
    const yaml = field(req.body as Record<string, unknown>, 'policy', 100_000);
    const policy = readYaml(yaml, `domains["${name}"].policy`);
    const role = isSuper(req) ? 'superadmin' : 'domainadmin';
    const r: ChangeResult = policy.ok
      ? await savePolicy(port.store, domain, policy.value, role, ctx.user(req).account.username)
      : { ok: false, errors: [policy.error], status: 400 };
    if (r.ok) return finish(req, reply, 'policy-edit', r);
    await ctx.audit(req, { action: 'policy-edit', target: name, outcome: r.status === 403 ? 'denied' : 'failed', detail: r.errors.join('; ') });
    return policyPage(req, reply, name, yaml, domain.adminMay, r.errors, r.status);
  });
}
