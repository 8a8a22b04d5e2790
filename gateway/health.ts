// Health endpoints for a load balancer, one tiny node:http server per process (config `health`):
//   GET /healthz  200 when every check of the role passes, else 503 naming the failing ones
//                 (liveness: "this process can do its work");
//   GET /readyz   the same, and 503 as soon as the process starts shutting down (setDraining),
//                 so that HAProxy (option httpchk GET /readyz) stops sending new connections
//                 before the SMTP listener closes;
//   GET /metrics  the process's Prometheus counters (when given), so that every smtp and worker
//                 process is a scrape target of its own.
// Answers are JSON: {"status":"ok"|"fail"|"draining","role":…,"checks":{name:{ok,detail,ms}}}.
// No authentication: bind it where only the balancer and monitoring reach it. Nothing secret is
// in an answer: check details are short, and credentials in URLs are masked.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.ts';
import type { Logger } from './log.ts';

/**
 * Where a role's process answers, per the config (its role's key, else `listen`); undefined: no
 * health server. `start` (everything in one process) uses the smtp key.
 */
export function healthListen(config: Pick<Config, 'health'>, role: 'start' | 'smtp' | 'worker' | 'console'): { host: string; port: number } | undefined {
  const h = config.health;
  return h[role === 'start' ? 'smtp' : role] ?? h.listen;
}

/** One check: resolves (optionally with a short detail such as "PONG") or throws why it fails. */
export type HealthCheck = () => unknown;

export interface HealthServerOptions {
  listen: { host: string; port: number };
  /** Shown in every answer: smtp, worker, console, start. */
  role: string;
  checks: Record<string, HealthCheck>;
  /** The checks whose failure answers 503; the others are reported with "critical": false. Absent: all. */
  critical?: readonly string[];
  logger: Logger;
  /** A check that has not answered by then fails. Keep it below HAProxy's `timeout check`. */
  checkTimeoutMs?: number;
  /** GET /metrics: the process's Prometheus registry (each smtp and worker process is a scrape target of its own). */
  metrics?: { contentType: string; metrics(): Promise<string> };
}

export interface HealthServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** From now on /readyz answers 503: the balancer takes this node out before it stops. */
  setDraining(): void;
  close(): Promise<void>;
}

interface CheckResult {
  ok: boolean;
  critical?: false;
  detail: string;
  ms: number;
}

const DEFAULT_CHECK_TIMEOUT_MS = 2_000;
const MAX_DETAIL = 200;

export async function startHealthServer(o: HealthServerOptions): Promise<HealthServer> {
  const timeoutMs = o.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  let draining = false;
  // Checks running now are shared by the requests that arrive meanwhile (several balancers and
  // a monitoring system probing at once do not multiply the load on Redis and the database).
  let running: Promise<Record<string, CheckResult>> | undefined;
  const runChecks = () => {
    running ??= runAll(o.checks, timeoutMs, o.critical).finally(() => (running = undefined));
    return running;
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === '/healthz' || path === '/readyz' || (path === '/metrics' && o.metrics);
    if (!known) return send(res, req, 404, { status: 'not found' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, req, 405, { status: 'method not allowed' });
    }
    if (path === '/metrics' && o.metrics) {
      const registry = o.metrics;
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => send(res, req, 500, { status: 'fail', error: safeDetail(err) }),
      );
      return;
    }
    if (path === '/readyz' && draining) return send(res, req, 503, { status: 'draining', role: o.role });
    runChecks().then(
      (checks) => {
        const ok = Object.values(checks).every((c) => c.ok || c.critical === false);
        if (!ok) o.logger.debug({ checks }, 'health check failing');
        send(res, req, ok ? 200 : 503, { status: ok ? 'ok' : 'fail', role: o.role, checks });
      },
      (err: unknown) => send(res, req, 503, { status: 'fail', role: o.role, error: safeDetail(err) }),
    );
  });
  // Balancers probe every few seconds: no long-lived idle connections.
  server.keepAliveTimeout = 1_000;
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.listen.host, port: o.listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => o.logger.warn({ err }, 'health server error'));
  const port = (server.address() as AddressInfo).port;
  o.logger.info({ host: o.listen.host, port, role: o.role }, `health endpoints listening (/healthz, /readyz${o.metrics ? ', /metrics' : ''})`);

  return {
    port,
    setDraining() {
      if (!draining) o.logger.info({ role: o.role }, 'draining: /readyz now answers 503');
      draining = true;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function runAll(checks: Record<string, HealthCheck>, timeoutMs: number, critical?: readonly string[]): Promise<Record<string, CheckResult>> {
  const names = Object.keys(checks);
  const results = await Promise.all(names.map((name) => runOne(checks[name], timeoutMs)));
  return Object.fromEntries(names.map((name, i) => [name, critical && !critical.includes(name) ? { ...results[i], critical: false as const } : results[i]]));
}

async function runOne(check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      Promise.resolve().then(check),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, detail: typeof value === 'string' ? safeDetail(value) : 'ok', ms: Date.now() - started };
  } catch (err) {
    return { ok: false, detail: safeDetail(err), ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** Short, one line, and no credentials that a URL in an error message might carry. */
function safeDetail(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  return text
    .replace(/\/\/[^/@\s]*@/g, '//***@')
    .replace(/\s+/g, ' ')
    .slice(0, MAX_DETAIL);
}

function send(res: http.ServerResponse, req: http.IncomingMessage, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}
