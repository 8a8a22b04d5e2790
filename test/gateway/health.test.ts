import { afterEach, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthCheck, type HealthServer } from '../../gateway/health.ts';
import { silentLogger } from '../../gateway/log.ts';
import { CRITICAL } from '../../gateway/engine-checks.ts';
import { Counter, Registry } from 'prom-client';

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(
  checks: Record<string, HealthCheck>,
  o: { checkTimeoutMs?: number; metrics?: Registry; critical?: readonly string[] } = {},
): Promise<string> {
  server = await startHealthServer({ listen: { host: '127.0.0.1', port: 0 }, role: 'smtp', checks, logger: silentLogger(), ...o });
  return `http://127.0.0.1:${server.port}`;
}

/** The /healthz answer as the tests read it. */
interface Health {
  status: string;
  role: string;
  checks: Record<string, { ok: boolean; critical?: boolean; detail: string }>;
}

async function get(url: string, method = 'GET'): Promise<{ status: number; body: Health; text: string }> {
  const res = await fetch(url, { method });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

describe('health endpoints', () => {
  it('answers 200 with the role and every check when all pass', async () => {
    const base = await start({ listening: () => undefined, redis: async () => 'PONG' });
    const { status, body } = await get(`${base}/healthz`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', role: 'smtp', checks: { listening: { ok: true, detail: 'ok' }, redis: { ok: true, detail: 'PONG' } } });
    expect((await get(`${base}/readyz`)).status).toBe(200);
  });

  it('answers 503 naming the failing check and its message', async () => {
    const base = await start({
      redis: async () => 'PONG',
      database: async () => {
        throw new Error('connect ECONNREFUSED 10.0.0.9:5432 (postgres://mailmoat:s3cret@10.0.0.9/mailmoat)');
      },
    });
    const { status, body, text } = await get(`${base}/healthz`);
    expect(status).toBe(503);
    expect(body.status).toBe('fail');
    expect(body.checks.redis.ok).toBe(true);
    expect(body.checks.database.ok).toBe(false);
    expect(body.checks.database.detail).toContain('connect ECONNREFUSED 10.0.0.9:5432');
    expect(text).not.toContain('s3cret');
    expect((await get(`${base}/readyz`)).status).toBe(503);
  });

  it("a failing check outside the role's critical ones is reported but keeps the node in rotation", async () => {
    const clamdDown = async () => {
      throw new Error('connect ENOENT /run/clamd.sock');
    };
    const consoleNode = await start({ database: async () => 'sqlite', clamd: clamdDown }, { critical: CRITICAL.console });
    const { status, body } = await get(`${consoleNode}/healthz`);
    expect(status).toBe(200);
    expect(body.checks.clamd).toMatchObject({ ok: false, critical: false, detail: 'connect ENOENT /run/clamd.sock' });
    await server!.close();
    const worker = await start({ database: async () => 'sqlite', clamd: clamdDown }, { critical: CRITICAL.worker });
    expect((await get(`${worker}/healthz`)).status).toBe(503);
  });

  it('fails a check that does not answer in time', async () => {
    const base = await start({ slow: () => new Promise(() => {}) }, { checkTimeoutMs: 100 });
    const { status, body } = await get(`${base}/healthz`);
    expect(status).toBe(503);
    expect(body.checks.slow).toMatchObject({ ok: false, detail: 'no answer within 100 ms' });
  });

  it('answers /readyz with 503 once draining, while /healthz stays 200', async () => {
    const base = await start({ listening: () => undefined });
    expect((await get(`${base}/readyz`)).status).toBe(200);
    server!.setDraining();
    const ready = await get(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'draining', role: 'smtp' });
    expect((await get(`${base}/healthz`)).status).toBe(200);
  });

  it('answers 404 elsewhere, 405 to other methods, and HEAD without a body', async () => {
    const base = await start({ ok: () => 'fine' });
    expect((await get(`${base}/`)).status).toBe(404);
    expect((await get(`${base}/metrics`)).status).toBe(404);
    expect((await get(`${base}/healthz`, 'POST')).status).toBe(405);
    const head = await get(`${base}/healthz`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect((await get(`${base}/healthz?verbose=1`)).status).toBe(200);
  });

  it('serves the process metrics when given a registry, else 404', async () => {
    const registry = new Registry();
    new Counter({ name: 'mailmoat_test_accepted_total', help: 'test', registers: [registry] }).inc(3);
    const base = await start({}, { metrics: registry });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toContain('mailmoat_test_accepted_total 3');
    await server!.close();
    const without = await start({});
    expect((await get(`${without}/metrics`)).status).toBe(404);
  });

  it('runs the checks once for requests that arrive together', async () => {
    let runs = 0;
    const base = await start({
      counted: async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 50));
      },
    });
    const answers = await Promise.all([get(`${base}/healthz`), get(`${base}/readyz`), get(`${base}/healthz`)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(runs).toBe(1);
  });

  it('refuses to start on a port in use, and closes', async () => {
    await start({});
    await expect(startHealthServer({ listen: { host: '127.0.0.1', port: server!.port }, role: 'worker', checks: {}, logger: silentLogger() })).rejects.toThrow(
      /EADDRINUSE/,
    );
    const port = server!.port;
    await server!.close();
    server = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
