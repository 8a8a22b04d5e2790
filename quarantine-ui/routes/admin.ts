// Superadmin pages: console users (create, change role and scope, disable, reset password) and
// the audit log. To anyone else these pages do not exist (404, audited).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { ROLES, USERNAME, type Role } from '../../gateway/store/accounts.ts';
import { hashPassword, randomPassword } from '../../gateway/passwords.ts';
import { parseListEntry } from '../../rules/lists.ts';
import { domainOf } from '../../rules/envelope.ts';
import { field, pageOf } from '../lib/forms.ts';

const PAGE_SIZE = 100;

/** "a.test, b.test" or one per line → validated, hosted domains; or an error naming the bad one. */
function parseScope(text: string, kind: 'domain' | 'address', hosted: string[]): { ok: true; values: string[] } | { ok: false; error: string } {
  const values = [
    ...new Set(
      text
        .split(/[\s,;]+/)
        .map((v) => v.trim().toLowerCase())
        .filter(Boolean),
    ),
  ];
  for (const v of values) {
    const p = parseListEntry(v);
    const type = kind === 'domain' ? 'domain' : 'address';
    if (!p.ok || p.entry.type !== type) return { ok: false, error: `${v} is not a valid ${kind}` };
    const d = kind === 'domain' ? v : domainOf(v);
    if (!hosted.includes(d)) return { ok: false, error: `${d} is not a hosted domain` };
  }
  return { ok: true, values };
}

export async function registerAdminRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  // Read per request: domains added in the console or by the API are hosted from then on (live config).
  const hosted = () => Object.keys(ctx.deps.config.domains);
  const { accounts } = ctx.deps;

  await app.register(async (admin) => {
    admin.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (ctx.user(req).account.role === 'superadmin') return;
      await ctx.audit(req, { action: 'admin-page', target: req.url.split('?')[0], outcome: 'denied', detail: 'not a superadmin' });
      return ctx.notFound(req, reply);
    });

    const usersPage = async (req: FastifyRequest, reply: FastifyReply, data: Record<string, unknown> = {}, status = 200) =>
      ctx.render(
        req,
        reply,
        'users',
        {
          title: 'Users',
          accounts: await accounts.list(),
          totpOn: await ctx.deps.totp.enabledAccounts(),
          roles: ROLES,
          hosted: hosted(),
          created: null,
          error: null,
          ...data,
        },
        status,
      );

    admin.get('/users', async (req, reply) => usersPage(req, reply));

    admin.post('/users', async (req, reply) => {
      const body = req.body as Record<string, unknown>;
      const username = field(body, 'username', 64).trim().toLowerCase();
      const role = field(body, 'role', 20) as Role;
      const domains = parseScope(field(body, 'domains', 5000), 'domain', hosted());
      const addresses = parseScope(field(body, 'addresses', 5000), 'address', hosted());
      const fail = async (error: string) => {
        await ctx.audit(req, { action: 'user-create', target: username, outcome: 'denied', detail: error });
        return usersPage(req, reply, { error }, 400);
      };
      if (!USERNAME.test(username)) return fail('A username is 1-64 characters: lower-case letters, digits and . _ @ + -');
      if (!ROLES.includes(role)) return fail('Choose a role.');
      if (!domains.ok) return fail(domains.error);
      if (!addresses.ok) return fail(addresses.error);
      if (role === 'domainadmin' && domains.values.length === 0) return fail('A domain admin needs at least one domain.');
      if (role === 'user' && addresses.values.length === 0) return fail('An end user needs at least one address.');
      if (await accounts.byName(username)) return fail(`${username} exists already.`);
      const password = randomPassword();
      await accounts.create({ username, role, domains: domains.values, addresses: addresses.values, passwordHash: await hashPassword(password) });
      await ctx.audit(req, { action: 'user-create', target: username, detail: `${role} ${[...domains.values, ...addresses.values].join(' ')}` });
      return usersPage(req, reply, { created: { username, password } });
    });

    admin.post('/users/:id/update', async (req, reply) => {
      const account = await accounts.get(Number((req.params as { id: string }).id));
      if (!account) return ctx.notFound(req, reply);
      const body = req.body as Record<string, unknown>;
      const role = field(body, 'role', 20) as Role;
      const domains = parseScope(field(body, 'domains', 5000), 'domain', hosted());
      const addresses = parseScope(field(body, 'addresses', 5000), 'address', hosted());
      const disabled = field(body, 'disabled', 5) === '1';
      const error = !ROLES.includes(role)
        ? 'Choose a role.'
        : !domains.ok
          ? domains.error
          : !addresses.ok
            ? addresses.error
            : account.id === ctx.user(req).account.id && (disabled || role !== 'superadmin')
              ? 'You cannot disable or demote yourself.'
              : null;
      if (error || !domains.ok || !addresses.ok) {
        await ctx.audit(req, { action: 'user-update', target: account.username, outcome: 'denied', detail: error ?? '' });
        return usersPage(req, reply, { error }, 400);
      }
      await accounts.update(account.id, { role, domains: domains.values, addresses: addresses.values, disabled });
      await ctx.audit(req, {
        action: 'user-update',
        target: account.username,
        detail: `${role}${disabled ? ' disabled' : ''} ${[...domains.values, ...addresses.values].join(' ')}`,
      });
      ctx.flash(req, 'ok', `${account.username} updated; their sessions were ended.`);
      return reply.redirect('/users', 303);
    });

    admin.post('/users/:id/reset-password', async (req, reply) => {
      const account = await accounts.get(Number((req.params as { id: string }).id));
      if (!account) return ctx.notFound(req, reply);
      // A directory or sign-on account never logs in with a password kept here.
      if (account.authSource !== 'local')
        return usersPage(req, reply, { error: `${account.username} logs in through ${account.authSource.toUpperCase()}: change the password there.` }, 400);
      const password = randomPassword();
      await accounts.setPasswordHash(account.id, await hashPassword(password));
      await ctx.audit(req, { action: 'user-reset-password', target: account.username });
      return usersPage(req, reply, { created: { username: account.username, password, reset: true } });
    });

    admin.get('/audit', async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const filters = { actor: field(q, 'actor', 200).trim(), action: field(q, 'action', 50).trim(), message: field(q, 'message', 64).trim() };
      const page = pageOf(field(q, 'page'));
      const { rows, total } = await ctx.deps.audit.list({
        actor: filters.actor || undefined,
        action: filters.action || undefined,
        messageId: filters.message || undefined,
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
      });
      return ctx.render(req, reply, 'audit', { title: 'Audit log', rows, total, page, pages: Math.max(1, Math.ceil(total / PAGE_SIZE)), filters });
    });
  });
}
