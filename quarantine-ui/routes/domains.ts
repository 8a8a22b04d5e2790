// Hosted domains: their downstream hosts and policy, and the SMTP connection test to each
// downstream host with its transcript. Superadmins see every domain, domain admins their own.
import type { FastifyInstance } from 'fastify';
import type { Ctx, ConsoleUser } from '../ctx.ts';
import { field } from '../lib/forms.ts';
import type { SmtpTestResult } from '../../gateway/delivery/smtp-test.ts';
import { viewDomains } from '../../gateway/domains/manage.ts';

function visibleDomains(ctx: Ctx, user: ConsoleUser): string[] {
  const hosted = Object.keys(ctx.deps.config.domains).sort();
  if (user.account.role === 'superadmin') return hosted;
  if (user.account.role === 'domainadmin') return hosted.filter((d) => user.account.domains.includes(d));
  return [];
}

export async function registerDomainRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { config } = ctx.deps;

  const page = async (
    req: Parameters<Ctx['render']>[0],
    reply: Parameters<Ctx['render']>[1],
    test: { domain: string; host: string; result: SmtpTestResult } | null,
    status = 200,
  ) => {
    const user = ctx.user(req);
    const names = visibleDomains(ctx, user);
    const counts = new Map<string, Record<string, number>>();
    for (const d of names) counts.set(d, await ctx.deps.store.statusCounts({ domains: [d], addresses: [] }));
    const sources = new Map((await viewDomains(ctx.deps.hostedDomains.store, ctx.deps.hostedDomains.fileDomains())).map((v) => [v.name, v] as const));
    return ctx.render(
      req,
      reply,
      'domains',
      {
        title: 'Domains',
        domains: names.map((d) => {
          // Read loosely: the per-domain settings grow with the gateway (recipients, checks, policy, rules).
          const hosted = config.domains[d] as unknown as Record<string, unknown> & {
            downstream: { host?: string; mx?: string; port: number; priority?: number; tls?: string }[];
          };
          const overrides = Object.fromEntries(
            Object.entries(hosted).filter(([k, v]) => k !== 'downstream' && v !== undefined && !(Array.isArray(v) && v.length === 0)),
          );
          return {
            name: d,
            downstream: hosted.downstream,
            counts: counts.get(d)!,
            overrides,
            source: sources.get(d)?.source ?? 'file',
            inFile: sources.get(d)?.inFile ?? true,
          };
        }),
        spam: config.spam,
        test,
        superadmin: user.account.role === 'superadmin',
      },
      status,
    );
  };

  app.get('/domains', async (req, reply) => {
    if (ctx.user(req).account.role === 'user') return ctx.notFound(req, reply);
    return page(req, reply, null);
  });

  app.post('/domains/test', async (req, reply) => {
    const user = ctx.user(req);
    const body = req.body as Record<string, unknown>;
    const domain = field(body, 'domain', 255).toLowerCase();
    const index = Number.parseInt(field(body, 'host', 4), 10);
    const hop = visibleDomains(ctx, user).includes(domain) ? config.domains[domain]?.downstream[index] : undefined;
    // MX hops are resolved by the delivery worker's resolver; the test only talks to named hosts.
    const host = hop?.host !== undefined ? { host: hop.host, port: hop.port } : undefined;
    if (!host) {
      await ctx.audit(req, { action: 'smtp-test', target: domain.slice(0, 255), outcome: 'denied', detail: 'domain or host outside the user’s scope' });
      return ctx.notFound(req, reply);
    }
    const result = await ctx.deps.smtpTest(host, { domain, helo: config.hostname, timeoutMs: 10_000 });
    await ctx.audit(req, {
      action: 'smtp-test',
      target: `${domain} → ${host.host}:${host.port}`,
      outcome: result.ok ? 'ok' : 'failed',
      detail: result.summary,
    });
    return page(req, reply, { domain, host: `${host.host}:${host.port}`, result });
  });
}
