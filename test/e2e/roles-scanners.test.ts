// A cluster role never starts clamd or spamd: `managed: true` is for `mailmoat start`. A worker
// given a one-machine config on a node where nothing serves the managed engines refuses to start
// and says what to set, instead of quarantining every message as unscannable.
import { execFile } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { testConfigInput } from '../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

async function worker(overrides: Record<string, unknown>): Promise<{ code: number; err: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-role-'));
  const file = path.join(dir, 'node.yaml');
  await fs.writeFile(file, JSON.stringify(testConfigInput(dir, 9, overrides)));
  return run(path.join(REPO, 'bin/mailmoat'), ['worker', '--config', file], { timeout: 20_000 }).then(
    () => ({ code: 0, err: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }),
  );
}

describe('a role with managed scanners and none running', () => {
  it('the worker refuses to start, naming each scanner and the keys to set, without a stack trace', async () => {
    const r = await worker({ clamd: { managed: true }, spamd: { managed: true } });
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^mailmoat: clamd: managed: true, but no clamd listens at \S+\/engines\/clamd\/clamd\.sock; only `mailmoat start` runs managed engines: set clamd\.socket or clamd\.host\/port/,
    );
    expect(lines[1]).toMatch(/^spamd: managed: true, but no spamd listens at \S+\/engines\/spamd\/spamd\.sock; .* set spamd\.socket or spamd\.host\/port/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('a disabled spamd is not asked for', async () => {
    const r = await worker({ clamd: { managed: true }, spamd: { managed: true, enabled: false } });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/clamd: managed: true/);
    expect(r.err).not.toMatch(/spamd/);
  });
});
