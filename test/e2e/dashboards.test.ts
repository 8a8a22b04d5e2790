// The shipped Grafana dashboard and Prometheus alert rules use only metrics that a real gateway
// serves: a `mailmoat worker` process (with the suite's Redis, clamd and spamd) scrapes after a
// message went through it, and every metric name in deploy/ must be on its /metrics.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../../gateway/services/managed.ts';
import { closedPort } from '../support/ports.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

/** Every PromQL expression of the dashboard and of the alert rules. */
function shippedExpressions(): string[] {
  const dashboard = JSON.parse(readFileSync(path.join(REPO, 'deploy/grafana/mailmoat-dashboard.json'), 'utf8')) as {
    panels: { targets: { expr: string }[] }[];
  };
  const alerts = parse(readFileSync(path.join(REPO, 'deploy/prometheus/mailmoat-alerts.yml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  return [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr))];
}

describe('dashboard and alert rules against a live /metrics', () => {
  let gw: TestGateway;
  let worker: ChildProcess;
  let healthPort: number;
  const output: string[] = [];
  beforeAll(async () => {
    // The SMTP front in this process; the scan and delivery workers in a real `mailmoat worker`.
    const dead = await closedPort();
    gw = await startTestGateway({ domains: { 'example.test': {}, 'dead.test': { downstream: [{ host: '127.0.0.1', port: dead }] } } });
    await gw.stopWorkers();
    healthPort = await freePort();
    const input = JSON.parse(await fs.readFile(gw.configFile, 'utf8')) as Record<string, unknown>;
    const file = path.join(path.dirname(gw.configFile), 'worker.yaml');
    await fs.writeFile(file, JSON.stringify({ ...input, health: { worker: { host: '127.0.0.1', port: healthPort } } }));
    worker = spawn(path.join(REPO, 'bin/mailmoat'), ['worker', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
    worker.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${healthPort}/healthz`).then(
          (r) => r.ok || undefined,
          () => undefined,
        ),
      { what: `worker health (${output.join('')})`, timeoutMs: 30_000 },
    );
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
    await gw?.stop();
  });

  it('every metric the dashboard and the alert rules use is served, with the latency of a real message', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, 'Subject: metrics\r\n\r\nhello\r\n');
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['delivered']);
    const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    const families = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    const used = new Set(shippedExpressions().flatMap((e) => [...e.matchAll(/\bmailmoat_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(used.size).toBeGreaterThan(8);
    const missing = [...used].filter((name) => {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return !(families.has(name) || (base !== name && families.get(base) === 'histogram'));
    });
    expect(missing).toEqual([]);
    // The new series carry what the message did.
    expect(text).toMatch(/^mailmoat_scan_duration_seconds_count\{engine="clamd",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^mailmoat_scan_duration_seconds_count\{engine="spamd",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^mailmoat_delivery_duration_seconds_count\{lane="hosted",domain="example\.test",outcome="delivered"\} 1$/m);
    expect(text).toMatch(/^mailmoat_message_duration_seconds_count\{state="delivered"\} 1$/m);
    for (const engine of ['redis', 'database', 'clamd', 'spamd']) expect(text).toContain(`mailmoat_engine_up{engine="${engine}"} 1\n`);
    expect(text).toMatch(/^mailmoat_queue_oldest_age_seconds 0$/m); // nothing left in flight
  });

  it('the oldest queued message is aged at scrape time', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['carol@dead.test'] }, 'Subject: waits\r\n\r\nhello\r\n');
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['deferred']);
    await new Promise((r) => setTimeout(r, 1_000));
    const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    expect(Number(/^mailmoat_queue_oldest_age_seconds (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^mailmoat_delivery_duration_seconds_count\{lane="hosted",domain="dead\.test",outcome="deferred"\} [1-9]/m);
  });

  it('/healthz of the worker reports the same checks as every role', async () => {
    const body = (await (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.status).toBe('ok');
    expect(Object.keys(body.checks).sort()).toEqual(['clamd', 'database', 'redis', 'spamd', 'spool']);
  });
});
