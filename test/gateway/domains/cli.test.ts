// `mailmoat domain add | list | rm` as a script uses it: exit codes, one-line refusals naming the
// key, and the database the running processes poll (gateway/domains/sync.ts).
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);
const mailmoat = (args: string[]) =>
  run(path.join(REPO, 'bin/mailmoat'), args).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );

describe('mailmoat domain', () => {
  it('adds, lists, refuses an invalid domain naming the key, and removes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-domain-cli-'));
    const config = path.join(dir, 'mailmoat.yaml');
    writeFileSync(config, `hostname: mx.gateway.test\ndataDir: ${dir}\ndomains:\n  file.test:\n    downstream: [{ host: 127.0.0.1, port: 2525 }]\n`);
    const c = ['--config', config];

    const add = await mailmoat(['domain', 'add', 'New.Test', '--downstream', '127.0.0.1:2526', '--admin-may', 'spam.threshold', ...c]);
    expect(add, add.err).toMatchObject({ code: 0 });
    expect(add.out).toMatch(/^new\.test: saved; running processes apply it within 2 s/);

    const bad = await mailmoat(['domain', 'add', 'bad.test', '--downstream', '127.0.0.1:99999', ...c]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('domains["bad.test"].downstream[0].port: Too big');

    const list = await mailmoat(['domain', 'list', ...c]);
    expect(list.out.trim().split('\n')).toEqual(['file.test\tfile\t127.0.0.1:2525', 'new.test\tdatabase\t127.0.0.1:2526\tadmins may change: spam.threshold']);

    expect((await mailmoat(['domain', 'rm', 'new.test', ...c])).code).toBe(0);
    const again = await mailmoat(['domain', 'rm', 'file.test', ...c]);
    expect(again).toMatchObject({ code: 1, err: 'mailmoat: domain rm file.test: refused:\n  file.test is defined in the config file; remove it there\n' });
  }, 60_000);
});
