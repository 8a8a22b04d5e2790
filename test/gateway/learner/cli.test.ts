// `mailmoat learn` (issue 19): bulk training from an mbox and a maildir, snapshots, rollback.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCorpus } from '../../../bench/lib/corpus.ts';
import { parseConfig } from '../../../gateway/config/load.ts';
import { learnCli } from '../../../gateway/learner/cli.ts';
import { createLearner } from '../../../gateway/learner/learner.ts';
import { openLearnerStore } from '../../../gateway/store/learner-store.ts';
import { openSql } from '../../../gateway/store/sql.ts';
import { MINIMAL_CONFIG } from '../../support/config.ts';

const spam = loadCorpus(['spam-1'], 21);
const ham = loadCorpus(['easy-ham-1'], 21);

describe('mailmoat learn', () => {
  let dir: string;
  let lines: string[];
  const out = { log: (l: string) => lines.push(l), progress: (l: string) => lines.push(`progress ${l.trim()}`) };
  const config = () => parseConfig(MINIMAL_CONFIG.replace('dataDir: data', `dataDir: ${dir}/data`), path.join(dir, 'mailmoat.yaml'));
  const run = (...args: string[]) => learnCli(args, config, out);
  const probe = async (i: number) => {
    const sql = await openSql({ sqlite: path.join(dir, 'data', 'mailmoat.sqlite') });
    try {
      const [s] = (await createLearner(openLearnerStore(sql)).score(i < 0 ? ham[20].raw : spam[20].raw, ['example.test'])).values();
      return s.status === 'scored' ? s.logOdds : NaN;
    } finally {
      await sql.close();
    }
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mailmoat-learn-'));
    lines = [];
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('learns an mbox as spam and a maildir as ham, with progress; snapshots and rolls back', async () => {
    const mbox = path.join(dir, 'spam.mbox');
    await writeFile(
      mbox,
      spam
        .slice(0, 20)
        .map((m) => `From someone@example.net Thu Jan  1 00:00:00 2026\n${m.raw.toString('latin1').replace(/^From /gm, '>From ')}\n`)
        .join(''),
      'latin1',
    );
    const maildir = path.join(dir, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(maildir, sub), { recursive: true });
    for (const [i, m] of ham.slice(0, 20).entries()) await writeFile(path.join(maildir, i % 2 ? 'cur' : 'new', `${i}.host:2,S`), m.raw);
    await writeFile(path.join(maildir, 'tmp', 'partial'), 'half a messa');
    await writeFile(path.join(dir, 'notes.txt'), 'this is not mail');

    expect(await run('snapshot', '--note', 'empty')).toBe(0);
    expect(await run('spam', mbox)).toBe(0);
    expect(lines).toContain('progress [##############################] 1/1 files');
    expect(lines.at(-1)).toMatch(/^learned 20 message\(s\) as spam into the global model in [\d.]+ s$/);
    expect(await run('ham', maildir, path.join(dir, 'notes.txt'))).toBe(0);
    expect(lines).toContain(`${path.join(dir, 'notes.txt')}: skipped, it does not start with mail headers (save or paste the message with its full headers)`);
    expect(lines.at(-1)).toMatch(/^learned 20 message\(s\) as ham into the global model .*; 1 skipped \(not messages\)$/);
    // Spam and ham it never saw are told apart.
    const trainedSpam = await probe(1);
    expect(trainedSpam).toBeGreaterThan((await probe(-1)) + 2);

    lines = [];
    expect(await run('snapshots')).toBe(0);
    expect(lines).toEqual([expect.stringMatching(/^1\t\S+\tglobal\tcli\tempty$/)]);
    expect(await run('rollback', '1')).toBe(0);
    expect(lines.at(-1)).toMatch(/^model global rolled back to snapshot 1 .*; the state before is snapshot 2$/);
    expect(await probe(1)).toBe(0);
    await expect(run('rollback', '99')).rejects.toThrow('no learner snapshot 99');
    await expect(run('spam', mbox, '--domain', 'other.test')).rejects.toThrow('other.test is not a hosted domain of this config');
  });
});
