// Poison messages and containment, with real processes: a message whose scan kills its worker
// (SIGKILL) three times is set aside as "held: poison", listed by the CLI, and delivered once when
// an administrator releases it; a message whose scan throws outside its promise fails its job,
// not the process, and the SMTP listener of that same process keeps answering.
// Faults come from the gated test hook (gateway/test-faults.ts, MAILMOAT_TEST_FAULTS).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { mailboxMessages, sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { releasePoison } from '../../gateway/poison.ts';
import { silentLogger } from '../../gateway/log.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(REPO, 'node_modules/.bin/node');
const CLI = path.join(REPO, 'gateway/cli.ts');
const run = promisify(execFile);

const children: ChildProcess[] = [];
const gateways: TestGateway[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const gw of gateways) await gw.stop();
});

function startRole(role: 'worker' | 'start', configFile: string, controlFile: string): ChildProcess {
  const child = spawn(NODE, [CLI, role, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILMOAT_TEST_FAULTS: controlFile },
  });
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

/** The greeting of an SMTP listener, or the error that stopped us reading it. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(5_000, () => s.destroy(new Error('no greeting within 5 s')));
    s.once('data', (d) => {
      resolve(d.toString('latin1').trim());
      s.end('QUIT\r\n');
    });
    s.once('error', reject);
  });
}

describe('a message that kills its worker', () => {
  it('is held as poison after 3 crashes, listed by the CLI, and delivered once when released', async () => {
    // A short lock: each crash is noticed in about 2 s.
    const gw = await startTestGateway({ overrides: { queue: { lockDurationMs: 1_500 } } });
    gateways.push(gw);
    await gw.stopWorkers(); // only the child processes work on the queue
    const control = path.join(gw.config.dataDir, 'faults');
    await fs.writeFile(control, 'kill');

    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['grace@example.test'] }, 'Subject: poison\r\n\r\nkills its worker\r\n');
    expect(sent.code).toBe(250);
    for (let crash = 1; crash <= 3; crash++) {
      const worker = startRole('worker', gw.configFile, control);
      expect(await exited(worker)).toBe('SIGKILL');
    }
    const survivor = startRole('worker', gw.configFile, control);
    await waitForStatus(gw, sent.id!, ['held'], 20_000);
    expect(survivor.exitCode).toBeNull();

    const env = { ...process.env, MAILMOAT_CONFIG: gw.configFile };
    const list = await run(NODE, [CLI, 'queue', 'list'], { env });
    const line = list.stdout.split('\n').find((l) => l.startsWith(sent.id!));
    expect(line).toContain('held: poison');
    const show = JSON.parse((await run(NODE, [CLI, 'queue', 'show', sent.id!, '--json'], { env })).stdout) as { events: { kind: string; detail: string }[] };
    expect(show.events.filter((e) => e.kind === 'fault')).toHaveLength(3);
    expect(show.events.find((e) => e.kind === 'held-poison')?.detail).toMatch(/scan job faulted 3 times/);
    // Held: never retried, never delivered, the body still in the spool.
    expect(await mailboxMessages(gw, 'grace@example.test')).toHaveLength(0);
    expect(await gw.stores.spool.readEnvelope(sent.id!)).toBeDefined();

    await fs.rm(control); // the administrator fixed whatever crashed the scan
    const released = await run(NODE, [CLI, 'queue', 'release', sent.id!], { env });
    expect(released.stdout).toContain('released');
    await waitForStatus(gw, sent.id!, ['delivered'], 20_000);
    const copies = await mailboxMessages(gw, 'grace@example.test');
    expect(copies).toHaveLength(1);
    expect(copies[0].toString()).toContain('kills its worker');
  }, 90_000);
});

describe('an error that escapes a job in a process that also serves SMTP', () => {
  it('fails that job (held after 3), while the same process keeps answering SMTP', async () => {
    const gw = await startTestGateway();
    gateways.push(gw);
    await gw.stopWorkers();
    // `mailmoat start` with this config: SMTP and workers in one process (engines as configured).
    const input = JSON.parse(await fs.readFile(gw.configFile, 'utf8')) as Record<string, unknown>;
    const configFile = path.join(gw.config.dataDir, 'start.yaml');
    await fs.writeFile(configFile, JSON.stringify({ ...input, console: { enabled: false } }));
    const control = path.join(gw.config.dataDir, 'faults');
    await fs.writeFile(control, 'throw-async');
    const proc = startRole('start', configFile, control);
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const port = await waitFor(() => Number(/SMTP on [\d.]+:(\d+)/.exec(out)?.[1]) || undefined, {
      what: 'the SMTP listener of `mailmoat start`',
      timeoutMs: 20_000,
    });

    const sent = await sendRaw(port, { from: 'bob@sender.test', to: ['grace@example.test'] }, 'Subject: escapes\r\n\r\nthrows outside its promise\r\n');
    expect(sent.code).toBe(250);
    await waitFor(async () => (await gw.stores.store.events(sent.id!)).some((e) => e.kind === 'fault') || undefined, { what: 'the first fault' });
    expect(await greeting(port)).toMatch(/^220 /);
    await waitForStatus(gw, sent.id!, ['held'], 20_000);
    const faults = (await gw.stores.store.events(sent.id!)).filter((e) => e.kind === 'fault');
    expect(faults).toHaveLength(3);
    expect(faults[0].detail).toContain('test fault: thrown outside the job promise');
    expect(proc.exitCode).toBeNull();
    expect(await greeting(port)).toMatch(/^220 /);

    // Released once the fault is gone, the same process delivers it once.
    await fs.rm(control);
    const result = await releasePoison({ store: gw.stores.store, queue: gw.queue, logger: silentLogger() }, sent.id!, 'test');
    expect(result.ok).toBe(true);
    await waitForStatus(gw, sent.id!, ['delivered'], 20_000);
    expect(await mailboxMessages(gw, 'grace@example.test')).toHaveLength(1);
    expect(proc.exitCode).toBeNull();
  }, 60_000);
});
