// Issue 9: several machines. Two `smtp` nodes, two `worker` nodes and two `console` nodes run as
// processes of their own (`mailmoat <role> --config <node>.yaml`), each with its own data dir (its
// own local spool), sharing only PostgreSQL (metadata, quarantine, the spool's shared copy) and
// Redis (queues) — the test run's private ones. Downstream is an SMTP sink on loopback.
//
// What a provider would do to it, in order:
//  1. Mail is accepted by both SMTP nodes while no worker runs; then SMTP node B dies (kill -9)
//     and its data dir is deleted: the machine is lost before anything it accepted was scanned.
//  2. A replacement B and two workers start; a bounded load goes through both SMTP nodes; one
//     worker is killed with kill -9 in the middle; SMTP node B is stopped (SIGTERM) in the middle.
//  3. Every message that got a 250 arrives at the sink; viruses are in the quarantine, and the
//     consoles of both nodes (one login, either node) show the same quarantine; a release on one
//     console is delivered by a worker; a block-list entry added on one console is applied by the
//     workers without a restart.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, closeSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { freePort } from '../../gateway/services/managed.ts';
import { startMailbox, type Mailbox } from '../../gateway/demo/mailbox.ts';
import { openSql, q, type Sql } from '../../gateway/store/sql.ts';
import { createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { sendRaw, waitFor } from '../support/gateway.ts';
import { eicarBytes } from '../support/eicar.ts';
import { mailDate } from '../support/mime.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO, 'gateway/cli.ts');
const run = promisify(execFile);

type Role = 'smtp' | 'worker' | 'console';
interface Node {
  name: string;
  role: Role;
  configFile: string;
  dataDir: string;
  port: number;
  healthPort: number;
  child?: ChildProcess;
}

describe('a cluster: 2 smtp, 2 worker and 2 console nodes on PostgreSQL and a shared Redis', () => {
  let dir: string;
  let db: TestDatabase;
  let sql: Sql;
  let sink: Mailbox;
  const nodes = new Map<string, Node>();
  const keyFile = () => path.join(dir, 'console.key');

  async function makeNode(name: string, role: Role): Promise<Node> {
    const s = inject('services');
    const dataDir = path.join(dir, name);
    await mkdir(dataDir, { recursive: true });
    const port = await freePort();
    const healthPort = await freePort();
    const config = {
      hostname: `${name}.mx.cluster.test`,
      dataDir,
      database: { url: (db.target as { postgres: string }).postgres, poolSize: 4 },
      redis: { socket: s.redisSocket, prefix: `{${path.basename(dir).replace(/[^a-z0-9]/gi, '')}}` },
      smtp: { listen: { host: '127.0.0.1', port: role === 'smtp' ? port : 0 }, maxMessageBytes: 200_000 },
      domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: sink.port }] } },
      clamd: { socket: s.clamdSocket, timeoutMs: 20_000 },
      // The load is about the cluster, not about SpamAssassin's speed on 2 cores.
      spamd: { host: s.spamdHost, port: s.spamdPort, enabled: false },
      queue: { lockDurationMs: 3_000 },
      delivery: { retryDelayMs: 500, maxRetryDelayMs: 2_000, connectTimeoutMs: 3_000 },
      scan: { retryDelayMs: 500, maxRetryDelayMs: 2_000 },
      console: { listen: { host: '127.0.0.1', port: role === 'console' ? port : 0 }, keyFile: keyFile() },
      health: { listen: { host: '127.0.0.1', port: healthPort }, drainDelayMs: 300 },
      log: { level: 'info' },
    };
    const configFile = path.join(dataDir, 'node.yaml');
    await writeFile(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
    const node = { name, role, configFile, dataDir, port, healthPort };
    nodes.set(name, node);
    return node;
  }

  async function start(node: Node): Promise<void> {
    const log = openSync(path.join(dir, `${node.name}.log`), 'a');
    node.child = spawn(process.execPath, [CLI, node.role, '--config', node.configFile], { cwd: REPO, stdio: ['ignore', log, log] });
    closeSync(log);
    const child = node.child;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${node.name} exited (${child.exitCode}) during start:\n${tail(node)}`);
        const res = await fetch(`http://127.0.0.1:${node.healthPort}/healthz`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      { timeoutMs: 60_000, what: `${node.name} to become healthy\n${tail(node)}` },
    );
  }

  async function stop(node: Node, signal: NodeJS.Signals): Promise<void> {
    const child = node.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  const tail = (node: Node) => {
    try {
      return readFileSync(path.join(dir, `${node.name}.log`), 'utf8')
        .split('\n')
        .slice(-15)
        .join('\n');
    } catch {
      return '';
    }
  };

  const cli = (node: Node, ...args: string[]) => run(process.execPath, [CLI, ...args, '--config', node.configFile], { cwd: REPO });

  const message = (n: number, o: { from?: string; virus?: boolean } = {}) =>
    [
      `From: ${o.from ?? 'sender@remote.test'}`,
      'To: alice@example.test',
      `Subject: cluster message ${n}`,
      `Date: ${mailDate()}`,
      `Message-ID: <cluster-${n}@remote.test>`,
      'MIME-Version: 1.0',
      ...(o.virus
        ? [
            'Content-Type: multipart/mixed; boundary="b"',
            '',
            '--b',
            'Content-Type: text/plain',
            '',
            'see attached',
            '--b',
            'Content-Type: application/octet-stream; name="eicar.com"',
            'Content-Transfer-Encoding: base64',
            '',
            eicarBytes().toString('base64'),
            '--b--',
            '',
          ]
        : ['Content-Type: text/plain', '', `body of message ${n}`, '']),
    ].join('\r\n');

  /** Message numbers found at the sink (from the subject), with how often each arrived. */
  async function arrived(): Promise<Map<number, number>> {
    const box = path.join(dir, 'sink', 'alice@example.test');
    const names = await readdir(box).catch(() => [] as string[]);
    const seen = new Map<number, number>();
    for (const n of names) {
      const m = /Subject: cluster message (\d+)/.exec(await readFile(path.join(box, n), 'latin1'));
      if (m) seen.set(Number(m[1]), (seen.get(Number(m[1])) ?? 0) + 1);
    }
    return seen;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-cluster-'));
    db = await createTestDatabase('postgres');
    sql = await openSql(db.target);
    sink = await startMailbox({ dir: path.join(dir, 'sink'), host: '127.0.0.1', port: 0 });
    await writeFile(keyFile(), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    for (const [name, role] of [
      ['smtp-a', 'smtp'],
      ['smtp-b', 'smtp'],
      ['worker-1', 'worker'],
      ['worker-2', 'worker'],
      ['console-a', 'console'],
      ['console-b', 'console'],
    ] as const) {
      await makeNode(name, role);
    }
  });

  afterAll(async () => {
    await Promise.all([...nodes.values()].map((n) => stop(n, 'SIGKILL')));
    await sink?.close();
    await sql?.close();
    await db?.drop();
    if (!process.env.MAILMOAT_KEEP_TEST_DIR) await rm(dir, { recursive: true, force: true });
  });

  it('refuses to start on an old schema, and `mailmoat migrate` brings it up to date once', async () => {
    const smtpA = nodes.get('smtp-a')!;
    const early = await cli(smtpA, 'smtp').then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/pending migrations: 0001_initial.*run "mailmoat migrate/);
    const first = await cli(smtpA, 'migrate');
    expect(first.stdout).toMatch(/applied 0001_initial, 0002_shared_files/);
    expect(first.stdout).not.toContain(':' + 'x'); // no password shown
    const again = await cli(nodes.get('worker-1')!, 'migrate');
    expect(again.stdout).toMatch(/already up to date/);
  });

  it('loses no accepted message when an SMTP machine dies, a worker is killed and an SMTP node is stopped', async () => {
    const [smtpA, smtpB, worker1, worker2] = ['smtp-a', 'smtp-b', 'worker-1', 'worker-2'].map((n) => nodes.get(n)!);
    const accepted = new Set<number>();
    const send = async (node: Node, n: number, o: { virus?: boolean; from?: string } = {}) => {
      const r = await sendRaw(node.port, { from: o.from ?? 'sender@remote.test', to: ['alice@example.test'] }, message(n, o));
      if (r.code === 250) accepted.add(n);
      return r;
    };

    // 1. Both SMTP nodes accept while no worker runs; then node B's machine is lost.
    await Promise.all([start(smtpA), start(smtpB)]);
    for (let n = 1; n <= 10; n++) expect((await send(n % 2 ? smtpA : smtpB, n)).code).toBe(250);
    expect((await send(smtpB, 11, { virus: true })).code).toBe(250);
    await stop(smtpB, 'SIGKILL');
    await rm(path.join(smtpB.dataDir, 'spool'), { recursive: true, force: true });
    // What was accepted is unscanned and only in the shared store now.
    const waiting = await sql.all<{ id: string }>(
      q`SELECT m.id FROM messages m JOIN spool_files f ON f.message_id = m.id AND f.kind = 'envelope' WHERE m.status = 'queued'`,
    );
    expect(waiting).toHaveLength(11);

    // 2. A replacement B, two workers; load through both SMTP nodes; kill -9 one worker and stop B mid-load.
    await Promise.all([start(smtpB), start(worker1), start(worker2)]);
    let n = 100;
    const results: number[] = [];
    const client = async (k: number) => {
      for (let i = 0; i < 15; i++) {
        const num = n++;
        const via = (num + k) % 2 ? smtpA : smtpB;
        const r = await send(via, num, { virus: num % 25 === 0 });
        results.push(r.code);
        if (num === 115) await stop(worker1, 'SIGKILL');
        if (num === 125) void stop(smtpB, 'SIGTERM');
      }
    };
    await Promise.all([client(0), client(1), client(2)]);
    // Clients of the stopped node were refused or cut off (a balancer would send them to A).
    expect(results.filter((c) => c === 250).length).toBeGreaterThan(30);
    const virusNumbers = [...accepted].filter((x) => x === 11 || (x >= 100 && x % 25 === 0));
    const cleanNumbers = [...accepted].filter((x) => !virusNumbers.includes(x));

    // 3. Every accepted clean message arrives; the viruses are quarantined.
    const seen = await waitFor(
      async () => {
        const s = await arrived();
        return cleanNumbers.every((x) => s.has(x)) ? s : undefined;
      },
      { timeoutMs: 90_000, what: 'every accepted message at the sink' },
    ).catch(async (err: Error) => {
      const s = await arrived();
      throw new Error(`${err.message}: missing ${cleanNumbers.filter((x) => !s.has(x)).join(', ')}\n${tail(worker2)}`);
    });
    expect(virusNumbers.some((x) => seen.has(x))).toBe(false);
    const quarantined = await waitFor(
      async () => {
        const rows = await sql.all<{ subject: string }>(q`SELECT subject FROM messages WHERE status = 'quarantined' AND verdict = 'virus'`);
        return rows.length === virusNumbers.length ? rows : undefined;
      },
      { timeoutMs: 60_000, what: 'the viruses in the quarantine' },
    ).catch(async (err: Error) => {
      const rows = await sql.all<{ subject: string; status: string; verdict: string | null }>(
        q`SELECT subject, status, verdict FROM messages WHERE subject LIKE 'cluster message %'`,
      );
      const wanted = new Set(virusNumbers.map((x) => `cluster message ${x}`));
      throw new Error(`${err.message}: ${JSON.stringify(rows.filter((r) => wanted.has(r.subject) || r.verdict === 'virus'))}\n${tail(worker2)}`);
    });
    expect(quarantined.map((r) => r.subject).sort()).toEqual(virusNumbers.map((x) => `cluster message ${x}`).sort());
    // Nothing is left in the shared spool once every message is delivered or quarantined.
    await waitFor(async () => ((await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM spool_files`))!.n === 0 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'the shared spool to empty',
    });
    // Each worker process is a scrape target of its own: the surviving one counts what it did.
    const scraped = await (await fetch(`http://127.0.0.1:${worker2.healthPort}/metrics`)).text();
    const delivered = Number(/mailmoat_delivery_attempts_total\{outcome="delivered"\} (\d+)/.exec(scraped)?.[1] ?? 0);
    expect(delivered).toBeGreaterThan(0);
    expect(scraped).toMatch(/mailmoat_messages_scanned_total\{verdict="[a-z-]+",action="deliver"\} [1-9]/);
    const duplicates = [...seen.values()].filter((c) => c > 1).length;
    console.log(
      `cluster load: ${accepted.size} accepted, ${cleanNumbers.length} delivered, ${virusNumbers.length} quarantined, ${duplicates} delivered twice (at-least-once after kill -9)`,
    );
  }, 240_000);

  it('shows the same quarantine on the console of either node, with one login, releases through any node, and applies list changes on every node', async () => {
    const [consoleA, consoleB, smtpA] = ['console-a', 'console-b', 'smtp-a'].map((n) => nodes.get(n)!);
    const created = await cli(consoleA, 'user', 'add', 'ops', '--role', 'superadmin');
    const password = /password: (\S+)/.exec(created.stdout)![1]!;
    await Promise.all([start(consoleA), start(consoleB)]);
    const browser = new HttpClient();
    const login = await browser.post(`http://127.0.0.1:${consoleA.port}/login`, { username: 'ops', password }, `http://127.0.0.1:${consoleA.port}/login`);
    expect(login.status).toBe(303);
    // The same session cookie works on the other node: same key, sessions in PostgreSQL.
    const pageA = await browser.get(`http://127.0.0.1:${consoleA.port}/quarantine`);
    const pageB = await browser.get(`http://127.0.0.1:${consoleB.port}/quarantine`);
    expect(pageA.status).toBe(200);
    expect(pageB.status).toBe(200);
    const subjects = (html: string) => [...html.matchAll(/cluster message (\d+)/g)].map((m) => m[1]).sort();
    expect(subjects(pageA.body).length).toBeGreaterThan(0);
    expect(subjects(pageB.body)).toEqual(subjects(pageA.body));

    // A release on console B goes through the shared spool to whichever worker takes it.
    const held = (await sql.all<{ id: string; subject: string }>(q`SELECT id, subject FROM messages WHERE status = 'quarantined' ORDER BY id`))[0]!;
    const release = await browser.post(
      `http://127.0.0.1:${consoleB.port}/messages/${held.id}/release`,
      {},
      `http://127.0.0.1:${consoleB.port}/messages/${held.id}`,
    );
    expect(release.status).toBe(303);
    const number = Number(/cluster message (\d+)/.exec(held.subject)![1]);
    await waitFor(async () => ((await arrived()).has(number) ? true : undefined), { timeoutMs: 30_000, what: `released message ${number} at the sink` });
    // The sink has it a moment before the worker records the outcome.
    await waitFor(
      async () => ((await sql.one<{ status: string }>(q`SELECT status FROM messages WHERE id = ${held.id}`))?.status === 'released' ? true : undefined),
      {
        timeoutMs: 30_000,
        what: `message ${held.id} recorded as released`,
      },
    );

    // A block entry added on console B is used by the workers at once.
    const added = await browser.post(
      `http://127.0.0.1:${consoleB.port}/lists`,
      { kind: 'block', owner: 'example.test', entry: 'blocked@remote.test', comment: 'cluster test' },
      `http://127.0.0.1:${consoleB.port}/lists`,
    );
    expect(added.status).toBe(303);
    const r = await sendRaw(smtpA.port, { from: 'blocked@remote.test', to: ['alice@example.test'] }, message(900, { from: 'blocked@remote.test' }));
    expect(r.code).toBe(250);
    const row = await waitFor(
      async () => {
        const m = await sql.one<{ verdict: string | null; status: string }>(q`SELECT verdict, status FROM messages WHERE id = ${r.id!}`);
        return m?.verdict ? m : undefined;
      },
      { timeoutMs: 30_000, what: 'the blocked message to be scanned' },
    );
    expect(row.verdict).toBe('blocked');
  });
  it('a domain added with `mailmoat domain add` is accepted by every SMTP node within seconds, and refused again after `domain rm`', async () => {
    const [smtpA, smtpB, consoleA] = ['smtp-a', 'smtp-b', 'console-a'].map((n) => nodes.get(n)!);
    await start(smtpB); // stopped by the test before
    const send = (node: Node, n: number) =>
      sendRaw(node.port, { from: 'sender@remote.test', to: ['carol@new.test'] }, message(n).replace('To: alice@example.test', 'To: carol@new.test'));
    for (const node of [smtpA, smtpB]) expect((await send(node, 900)).code).toBe(554);
    await cli(consoleA, 'domain', 'add', 'new.test', '--downstream', `127.0.0.1:${sink.port}`);
    for (const [i, node] of [smtpA, smtpB].entries()) {
      await waitFor(async () => ((await send(node, 901 + i)).code === 250 ? true : undefined), {
        timeoutMs: 10_000,
        what: `${node.name} to accept mail for new.test`,
      });
    }
    await waitFor(async () => ((await readdir(path.join(dir, 'sink', 'carol@new.test')).catch(() => [])).length >= 2 ? true : undefined), {
      what: 'mail for new.test at its downstream',
    });
    await cli(consoleA, 'domain', 'rm', 'new.test');
    for (const node of [smtpA, smtpB]) {
      await waitFor(async () => ((await send(node, 910)).code === 554 ? true : undefined), {
        timeoutMs: 10_000,
        what: `${node.name} to refuse new.test again`,
      });
    }
  });
});

/** fetch with a cookie jar and the console's CSRF tokens. */
class HttpClient {
  cookies = new Map<string, string>();
  private headers(): Record<string, string> {
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }
  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
  }
  async get(url: string): Promise<{ status: number; body: string }> {
    const res = await fetch(url, { headers: this.headers(), redirect: 'manual' });
    this.keep(res);
    return { status: res.status, body: await res.text() };
  }
  async post(url: string, form: Record<string, string>, csrfFrom: string): Promise<{ status: number; body: string }> {
    const page = await this.get(csrfFrom);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
    if (!csrf) throw new Error(`no CSRF token on ${csrfFrom} (${page.status})`);
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...this.headers(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, ...form }).toString(),
      redirect: 'manual',
    });
    this.keep(res);
    return { status: res.status, body: await res.text() };
  }
}
