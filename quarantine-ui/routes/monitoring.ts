// /metrics (Prometheus) and /healthz, for monitoring systems only: both answer 404 to clients
// outside console.monitoringAllow. /healthz checks every engine the gateway depends on and
// answers 503 when one of them fails, naming it.
import type { FastifyInstance } from 'fastify';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Ctx } from '../ctx.ts';
import { ipInAny } from '../../rules/lists.ts';
import { registry as processRegistry } from '../../gateway/metrics.ts';

const CHECK_TIMEOUT_MS = 3_000;

async function timed(check: () => Promise<string>): Promise<{ ok: boolean; detail: string; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, detail, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err), ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

export async function registerMonitoringRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { store } = ctx.deps;
  const allowed = (ip: string) => ipInAny(ip, ctx.deps.config.console.monitoringAllow);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailmoat_console_' });
  new Gauge({
    name: 'mailmoat_messages',
    help: 'Messages in the metadata store, by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await store.statusCounts({ all: true });
      this.reset();
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'mailmoat_messages_last_hour',
    help: 'Messages received in the last hour by verdict, and SMTP refusals ("refused")',
    labelNames: ['category'],
    registers: [registry],
    async collect() {
      const counts = await store.hourlyCounts({ all: true }, ctx.deps.now() - 3600_000);
      this.reset();
      const totals: Record<string, number> = {};
      for (const c of counts) totals[c.category] = (totals[c.category] ?? 0) + c.n;
      for (const [category, n] of Object.entries(totals)) this.set({ category }, n);
    },
  });
  new Gauge({
    name: 'mailmoat_queue_jobs',
    help: 'Jobs in the scan and deliver queues, by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await ctx.deps.queueCounts().catch(() => ({}) as Record<string, Record<string, number>>);
      for (const [queue, states] of Object.entries(counts)) for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
    },
  });

  app.get('/metrics', async (req, reply) => {
    if (!allowed(req.ip)) return ctx.notFound(req, reply);
    // The process registry has what the other roles of this process count (SMTP front, workers);
    // this app's registry has the gauges read from the stores at scrape time.
    const merged = Registry.merge([processRegistry, registry]);
    return reply.type(merged.contentType).send(await merged.metrics());
  });

  app.get('/healthz', async (req, reply) => {
    if (!allowed(req.ip)) return ctx.notFound(req, reply);
    const names = Object.keys(ctx.deps.healthChecks);
    const results = await Promise.all(names.map((n) => timed(ctx.deps.healthChecks[n]!)));
    // A console node leaves rotation for its own faults only (gateway/engine-checks.ts).
    const critical = ctx.deps.healthCritical ?? names;
    const checks = Object.fromEntries(names.map((n, i) => [n, critical.includes(n) ? results[i] : { ...results[i], critical: false }]));
    const ok = names.every((n, i) => results[i]!.ok || !critical.includes(n));
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'fail', checks });
  });
}
