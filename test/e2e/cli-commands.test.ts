// The command line as an administrator meets it, run as a real process (bin/mailmoat): help for
// every command, one-line errors with exit 2 for wrong arguments, human `show` and `--json`,
// quarantine filters and delete, queue flush, check-config --changed and a port used twice.
import { execFile } from 'node:child_process';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailbox } from '../../gateway/demo/mailbox.ts';
import { freePort } from '../../gateway/services/managed.ts';
import { EICAR } from '../support/eicar.ts';
import { attachment, buildMessage, text } from '../support/mime.ts';
import { sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const mailmoat = (args: string[]) =>
  run(path.join(REPO, 'bin/mailmoat'), args).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

const COMMANDS = [
  'start',
  'smtp',
  'worker',
  'console',
  'reload',
  'check-config',
  'migrate',
  'test-downstream',
  'queue',
  'queue list',
  'queue counts',
  'queue show',
  'queue retry',
  'queue bounce',
  'queue delete',
  'queue flush',
  'quarantine',
  'quarantine list',
  'quarantine show',
  'quarantine release',
  'quarantine delete',
  'user',
  'user list',
  'user add',
  'user passwd',
  'user totp-reset',
  'digest',
  'digest send',
];

describe('mailmoat help, version and wrong arguments', () => {
  it('every command answers --help with its own usage, exit 0', async () => {
    // four at a time: each is a node start-up
    const results: { cmd: string; code: number; out: string }[] = [];
    for (let i = 0; i < COMMANDS.length; i += 4) {
      results.push(...(await Promise.all(COMMANDS.slice(i, i + 4).map(async (cmd) => ({ cmd, ...(await mailmoat([...cmd.split(' '), '--help'])) })))));
    }
    for (const r of results) {
      expect(r.code, r.cmd).toBe(0);
      expect(r.out, r.cmd).toContain(`Usage: mailmoat ${r.cmd} `);
    }
    expect(results.find((r) => r.cmd === 'quarantine list')!.out).toMatch(/--domain <domain>[\s\S]*--class <class>[\s\S]*--since <when>[\s\S]*--sender <text>/);
    expect(results.find((r) => r.cmd === 'queue flush')!.out).toContain('--domain <domain>');
  });

  it('--version prints the version, exit 0', async () => {
    expect(await mailmoat(['--version'])).toEqual({ code: 0, out: `${VERSION}\n`, err: '' });
  });

  it.each([
    [['queue', 'list', '--bogus'], "mailmoat: unknown option '--bogus'"],
    [['frobnicate'], "mailmoat: unknown command 'frobnicate'"],
    [['quarantine', 'show'], "mailmoat: missing required argument 'id'"],
    [['quarantine', 'list', '--limit', 'many'], "mailmoat: option '--limit <n>' argument 'many' is invalid. expected a whole number above 0"],
    [
      ['user', 'add', 'ops', '--role', 'king'],
      "mailmoat: option '--role <role>' argument 'king' is invalid. Allowed choices are superadmin, domainadmin, user.",
    ],
  ])('%j: one line on stderr, exit 2, no stack trace', async (args, line) => {
    const r = await mailmoat(args);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${line}\n`);
    expect(r.out).toBe('');
  });
});

describe('mailmoat quarantine and show', () => {
  let gw: TestGateway;
  let virus: string;
  let banned: string;
  beforeAll(async () => {
    gw = await startTestGateway({ domains: { 'example.test': {}, 'other.test': {} } });
    const send = async (from: string, to: string, name: string, content: string) => {
      const sent = await sendRaw(
        gw.smtpPort,
        { from, to: [to] },
        buildMessage({ multipart: 'mixed', parts: [text('see attached\r\n'), attachment(name, content)] }),
      );
      await waitForStatus(gw, sent.id!, ['quarantined']);
      return sent.id!;
    };
    virus = await send('bob@sender.test', 'alice@example.test', 'eicar.txt', EICAR);
    banned = await send('eve@elsewhere.test', 'carol@other.test', 'invoice.exe', 'MZ not really a program');
  });
  afterAll(async () => {
    await gw?.stop();
  });
  const list = async (...filters: string[]) => {
    const r = await mailmoat(['quarantine', 'list', ...filters, '--config', gw.configFile]);
    expect(r.code, r.err).toBe(0);
    return r.out
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[0]);
  };

  it('show is for people: local time, sizes, the scan report as text; --json for scripts', async () => {
    const r = await mailmoat(['quarantine', 'show', virus, '--config', gw.configFile]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        `^Message ${virus}\\n  Status:     quarantined\\n  Received:   \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d [+-]\\d\\d:\\d\\d from 127\\.0\\.0\\.1 \\(HELO client\\.sender\\.test\\)`,
      ),
    );
    expect(r.out).toContain('  Sender:     <bob@sender.test>');
    expect(r.out).toMatch(/ {2}Size: {7}\d+(\.\d)? (B|kB)\n/);
    expect(r.out).toMatch(/Scan report:\n {2}virus +infected: \S*Eicar\S*\n {2}spam +score [\d.-]+ \(threshold \d+\)/);
    expect(r.out).toMatch(/ {4}eicar\.txt {2}application\/octet-stream {2}\d+ B/);
    expect(r.out).toMatch(/Events:\n {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d {2}quarantined/);
    expect(r.out).not.toMatch(/"receivedAt"|\b1[789]\d{11}\b/); // no raw JSON, no epoch milliseconds
    const json = await mailmoat(['quarantine', 'show', virus, '--json', '--config', gw.configFile]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ id: virus, status: 'quarantined', verdict: 'virus', report: { virus: { status: 'infected' } } });
  });

  it('list filters by domain, class, sender and since', async () => {
    expect(await list()).toEqual(expect.arrayContaining([virus, banned]));
    expect(await list('--domain', 'other.test')).toEqual([banned]);
    expect(await list('--class', 'virus')).toEqual([virus]);
    expect(await list('--sender', 'eve@')).toEqual([banned]);
    expect(await list('--since', '1h')).toEqual(expect.arrayContaining([virus, banned]));
    expect(await list('--since', '2099-01-01')).toEqual(['quarantine is empty']);
    const bad = await mailmoat(['quarantine', 'list', '--since', 'yesterday-ish', '--config', gw.configFile]);
    expect(bad).toMatchObject({
      code: 1,
      err: 'mailmoat: --since: expected a date (2026-12-01, 2026-12-01T08:00) or an age (30m, 12h, 7d), got "yesterday-ish"\n',
    });
  });

  it('delete removes the quarantined body and keeps the record; a second delete says why not', async () => {
    const r = await mailmoat(['quarantine', 'delete', banned, '--config', gw.configFile]);
    expect(r).toMatchObject({ code: 0, out: `${banned} deleted from the quarantine; its record is kept\n` });
    expect((await gw.stores.store.get(banned))?.status).toBe('deleted');
    expect(await gw.stores.quarantine.size(banned)).toBeUndefined();
    const again = await mailmoat(['quarantine', 'delete', banned, '--config', gw.configFile]);
    expect(again).toMatchObject({ code: 1, err: `mailmoat: cannot delete ${banned}: not in quarantine (status: deleted)\n` });
    expect(await list()).not.toContain(banned);
  });
});

describe('mailmoat queue flush', () => {
  let gw: TestGateway;
  let portA: number;
  let portB: number;
  beforeAll(async () => {
    [portA, portB] = [await freePort(), await freePort()];
    gw = await startTestGateway({
      overrides: {
        domains: { 'a.test': { downstream: [{ host: '127.0.0.1', port: portA }] }, 'b.test': { downstream: [{ host: '127.0.0.1', port: portB }] } },
        // nothing retries by itself during the test
        delivery: { retryDelayMs: 600_000, maxRetryDelayMs: 600_000, connectTimeoutMs: 1_000 },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it("--domain tries only that domain's deferred mail now; without it, all of it", async () => {
    const send = async (to: string) => {
      const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [to] }, `Subject: to ${to}\r\n\r\nhello\r\n`);
      await waitForStatus(gw, sent.id!, ['deferred']);
      return sent.id!;
    };
    const [toA, toB] = [await send('x@a.test'), await send('y@b.test')];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-flush-'));
    const a = await startMailbox({ dir: path.join(dir, 'a'), host: '127.0.0.1', port: portA });
    const b = await startMailbox({ dir: path.join(dir, 'b'), host: '127.0.0.1', port: portB });
    try {
      const one = await mailmoat(['queue', 'flush', '--domain', 'a.test', '--config', gw.configFile]);
      expect(one.code, one.err).toBe(0);
      expect(one.out).toContain(`${toA}: tried again now`);
      expect(one.out).toMatch(/^1 deferred message\(s\) for a\.test tried again now/m);
      await waitForStatus(gw, toA, ['delivered'], 10_000);
      expect((await gw.stores.store.get(toB))?.status).toBe('deferred');
      const all = await mailmoat(['queue', 'flush', '--config', gw.configFile]);
      expect(all.out).toMatch(/^1 deferred message\(s\) tried again now/m);
      await waitForStatus(gw, toB, ['delivered'], 10_000);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('mailmoat check-config', () => {
  const write = async (body: string) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-cfg-'));
    const file = path.join(dir, 'mailmoat.yaml');
    await fs.writeFile(file, body);
    return file;
  };
  const BASE = 'hostname: mx.example.test\ndataDir: /var/lib/mailmoat\ndomains: {a.test: {downstream: [{host: mail.a.test}]}}\n';

  it('--changed prints only what differs from the defaults (like postconf -n)', async () => {
    const file = await write(`${BASE}smtp: {listen: {host: 0.0.0.0, port: 25}, maxRecipients: 50}\nlog: {level: info}\ndelivery: {connectTimeoutMs: 9000}\n`);
    const r = await mailmoat(['check-config', file, '--changed']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(
      [
        `${file}: OK`,
        'hostname = "mx.example.test"',
        'dataDir = "/var/lib/mailmoat"',
        'smtp.listen.host = "0.0.0.0"',
        'smtp.maxRecipients = 50',
        'domains.a.test.downstream = [{"host":"mail.a.test"}]',
        'delivery.connectTimeoutMs = 9000',
        '',
      ].join('\n'),
    );
  });

  it('a port used twice is refused, naming both keys, exit 1', async () => {
    const file = await write(`${BASE}smtp: {listen: {host: 0.0.0.0, port: 2525}}\nhealth: {smtp: {host: 127.0.0.1, port: 2525}}\n`);
    const r = await mailmoat(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`mailmoat: ${file}: invalid config:\n  health.smtp: port 2525 is used twice: by smtp.listen (0.0.0.0) and health.smtp (127.0.0.1)\n`);
  });
});
