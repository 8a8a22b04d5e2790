// The command line an administrator uses, run as a real process against a running gateway.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/config/schema.ts';
import { startTestGateway, testConfigInput, type TestGateway } from '../support/gateway.ts';
import { freePort } from '../../gateway/services/managed.ts';
import { closedPort } from '../support/ports.ts';
import { promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';

const REPO = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const mailmoat = (args: string[]) =>
  run(path.join(REPO, 'bin/mailmoat'), args).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );

describe('mailmoat test-downstream', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('shows the conversation with a working downstream and exits 0', async () => {
    const r = await mailmoat(['test-downstream', 'example.test', '--config', gw.configFile]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^== 127\.0\.0\.1:\d+: OK: /m);
    expect(r.out).toMatch(/ S 220 /);
    expect(r.out).toMatch(/ C RCPT TO:<postmaster@example\.test>/);
  });

  it('names the dead host and exits 1', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-cli-'));
    const dead = await closedPort();
    const input = testConfigInput(dir, dead);
    configSchema.parse(input);
    const file = path.join(dir, 'dead.yaml');
    await fs.writeFile(file, JSON.stringify(input));
    const r = await mailmoat(['test-downstream', 'example.test', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^== 127\\.0\\.0\\.1:${dead}: FAILED: `, 'm'));
    expect(r.out).toContain('no downstream host accepts mail for the domain');
  });

  it('refuses a domain that is not hosted, with a clear message', async () => {
    const r = await mailmoat(['test-downstream', 'elsewhere.test', '--config', gw.configFile]);
    expect(r.code).toBe(1);
    expect(r.err).toBe('mailmoat: test-downstream: name one of the hosted domains (example.test)\n');
  });
});

describe('mailmoat check-config', () => {
  it('refuses a broken file naming the key, exit 1', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-cfg-'));
    const file = path.join(dir, 'broken.yaml');
    await fs.writeFile(file, 'hostname: mx.example.test\ndataDir: d\ndomains: {a.test: {downstream: [{host: h}]}}\nsmtp: {lisen: 1}\n');
    const r = await mailmoat(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`mailmoat: ${file}: invalid config:`);
    expect(r.err).toContain('smtp.lisen: unknown key');
  });
  it('prints the effective config of a good file', async () => {
    const r = await mailmoat(['check-config', path.join(REPO, 'deploy/demo.yaml')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/deploy\/demo\.yaml: OK/);
    expect(r.out).toContain('"maxMessageBytes": 31457280');
  });
  it('never prints a password: database and Redis URLs are masked, password fields hidden', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-cfg-'));
    const file = path.join(dir, 'cluster.yaml');
    await fs.writeFile(
      file,
      'hostname: mx.example.test\ndataDir: d\ndomains: {a.test: {downstream: [{host: h}]}}\n' +
        'database: {url: "postgres://mm:dbsecret1@db.example.test/mm"}\n' +
        'redis: {sentinel: {name: m, sentinels: [{host: 10.0.0.1, port: 26379}], password: redissecret2, sentinelPassword: sentsecret3}, prefix: "{mm}"}\n',
    );
    const r = await mailmoat(['check-config', file]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('"url": "postgres://mm:***@db.example.test/mm"');
    expect(r.out).not.toMatch(/dbsecret1|redissecret2|sentsecret3/);
  });
});

describe('a role that cannot work refuses to start with one line', () => {
  it('names the Redis it cannot reach, exit 1, no stack trace', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-role-'));
    const file = path.join(dir, 'node.yaml');
    await fs.writeFile(file, JSON.stringify({ ...testConfigInput(dir, 1), redis: { socket: path.join(dir, 'no-redis.sock') } }));
    const r = await mailmoat(['worker', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^mailmoat: cannot reach Redis at unix:${dir}/no-redis\\.sock: .*\\n$`));
  });
  it('names the database it cannot use, with its password masked', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-role-'));
    const file = path.join(dir, 'node.yaml');
    const port = await freePort(); // nothing listens there
    await fs.writeFile(file, JSON.stringify({ ...testConfigInput(dir, 1), database: { url: `postgres://mm:topsecret@127.0.0.1:${port}/mm` } }));
    const r = await mailmoat(['worker', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^mailmoat: cannot use the database postgres://mm:\\*\\*\\*@127\\.0\\.0\\.1:${port}/mm: .*ECONNREFUSED`));
    expect(r.err).not.toContain('topsecret');
  });
});
