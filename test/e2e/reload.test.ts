// Reloading the config of a running gateway (`mailmoat start` as a real process, engines not
// managed: the run's Redis, clamd and spamd): SIGHUP and `mailmoat reload` add a hosted domain
// without a restart, a session open across the reload finishes with the config it started with,
// an invalid file changes nothing (the log names the key), a restart-only key keeps its running
// value, and SIGHUP without TLS certificates does not end the process.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailbox } from '../../gateway/demo/mailbox.ts';
import { freePort } from '../../gateway/services/managed.ts';
import { mailboxMessages, testConfigInput, waitFor } from '../support/gateway.ts';
import { RawSmtp } from '../support/smtp-client.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const mailmoat = (args: string[]) =>
  run(path.join(REPO, 'bin/mailmoat'), args).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );

describe('reloading the config of a running gateway', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  let dataDir: string;
  let configFile: string;
  let smtpPort: number;
  let input: Record<string, unknown>;
  let child: ChildProcess;
  let log = '';

  const writeConfig = (c: Record<string, unknown>) => fs.writeFile(configFile, JSON.stringify(c));
  const withDomain = (extra: Record<string, unknown>) => ({ ...input, domains: { ...(input.domains as object), ...extra } });
  /** Waits for the n-th log line matching `re` (n counted from 1 over the whole run). */
  const logged = (re: RegExp, n = 1) =>
    waitFor(() => (log.split('\n').filter((l) => re.test(l)).length >= n ? true : undefined), { timeoutMs: 10_000, what: `log line ${re} #${n}` });
  const rcpt = async (to: string) => {
    const c = await RawSmtp.connect(smtpPort);
    await c.hello();
    await c.cmd('MAIL FROM:<bob@good.test>');
    const r = await c.cmd(`RCPT TO:<${to}>`);
    c.close();
    return `${r.code} ${r.text}`;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-reload-'));
    const mailbox = await startMailbox({ dir: path.join(dataDir, 'mailbox'), host: '127.0.0.1', port: 0 });
    cleanups.push(() => mailbox.close());
    smtpPort = await freePort();
    input = testConfigInput(dataDir, mailbox.port, {
      smtp: { listen: { host: '127.0.0.1', port: smtpPort }, maxMessageBytes: 200_000 },
      checks: { helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false } },
      console: { enabled: false },
      log: { level: 'info' },
    });
    configFile = path.join(dataDir, 'mailmoat.yaml');
    await writeConfig(input);
    child = spawn(path.join(REPO, 'node_modules/.bin/node'), [path.join(REPO, 'gateway/cli.ts'), 'start', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    cleanups.push(() => void child.kill('SIGKILL'));
    await logged(/SMTP listening/);
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('SIGHUP: a new hosted domain is served at once, while a session open across the reload finishes with the old config', async () => {
    const downstream = (input.domains as Record<string, { downstream: unknown }>)['example.test']!.downstream;
    expect(await rcpt('alice@new.test')).toMatch(/^554 5\.7\.1 <alice@new\.test>: Relay access denied/);

    const open = await RawSmtp.connect(smtpPort);
    await open.hello();
    expect((await open.cmd('MAIL FROM:<bob@good.test>')).code).toBe(250);
    expect((await open.cmd('RCPT TO:<alice@example.test>')).code).toBe(250);

    await writeConfig(withDomain({ 'new.test': { downstream } }));
    child.kill('SIGHUP');
    await logged(/config reloaded/);
    expect(child.exitCode).toBeNull(); // no TLS configured: SIGHUP used to end the process here

    // the session that was open keeps its config: new.test is not hosted for it
    expect((await open.cmd('RCPT TO:<carol@new.test>')).code).toBe(554);
    expect((await open.cmd('DATA')).code).toBe(354);
    open.write('Subject: across the reload\r\n\r\nstarted before it\r\n.\r\n');
    expect((await open.reply()).code).toBe(250);
    open.close();

    // a new session gets the new config
    const c = await RawSmtp.connect(smtpPort);
    await c.hello();
    const replies = await c.transaction('bob@good.test', ['alice@new.test'], 'Subject: for the new domain\r\n\r\nhello\r\n.\r\n');
    c.close();
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354, 250]);
    await waitFor(async () => ((await mailboxMessages({ mailboxDir: path.join(dataDir, 'mailbox') }, 'alice@new.test')).length === 1 ? true : undefined), {
      what: 'the message for the new domain delivered',
    });
    // the message of the session open across the reload is delivered too (it may come second)
    await waitFor(async () => ((await mailboxMessages({ mailboxDir: path.join(dataDir, 'mailbox') }, 'alice@example.test')).length === 1 ? true : undefined), {
      what: 'the message sent across the reload delivered',
    });
  });

  it('an invalid file changes nothing: the log names the key, the running config keeps serving', async () => {
    const good = JSON.parse(await fs.readFile(configFile, 'utf8')) as Record<string, unknown>;
    await writeConfig({ ...good, smtp: { ...(good.smtp as object), lisen: 1 } });
    child.kill('SIGHUP');
    await logged(/config not reloaded/);
    expect(log).toMatch(/config not reloaded, the running config stays in use: .*smtp\.lisen: unknown key/);
    expect(child.exitCode).toBeNull();
    expect(await rcpt('dave@new.test')).toMatch(/^250 /);

    // `mailmoat reload` refuses the broken file itself, naming the key, and tells no process
    const r = await mailmoat(['reload', '--config', configFile]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('smtp.lisen: unknown key');
    await writeConfig(good);
  });

  it('mailmoat reload: finds the process by its pid file; a restart-only key keeps its running value', async () => {
    const good = JSON.parse(await fs.readFile(configFile, 'utf8')) as Record<string, unknown>;
    const otherPort = await freePort();
    const { 'new.test': _gone, ...domains } = good.domains as Record<string, unknown>;
    await writeConfig({ ...good, domains, smtp: { ...(good.smtp as object), listen: { host: '127.0.0.1', port: otherPort } } });
    const r = await mailmoat(['reload', '--config', configFile]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`start (pid ${child.pid}): told to reload\n`);
    await logged(/config reloaded/, 2);
    expect(log).toMatch(/config key smtp\.listen changed but needs a restart; the running value stays/);
    // still on the old port, and new.test is gone
    expect(await rcpt('erin@new.test')).toMatch(/^554 /);
    expect(await rcpt('erin@example.test')).toMatch(/^250 /);
  });

  it('stops on SIGTERM and removes its pid file; `mailmoat reload` then finds nothing to tell', async () => {
    expect(readdirSync(path.join(dataDir, 'run'))).toEqual([`start.${child.pid}.pid`]);
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(existsSync(path.join(dataDir, 'run', `start.${child.pid}.pid`))).toBe(false);
    const r = await mailmoat(['reload', '--config', configFile]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`mailmoat: reload: no running mailmoat process found in ${dataDir}/run\n`);
  });
});
