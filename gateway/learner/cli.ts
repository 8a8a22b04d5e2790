// `mailmoat learn` (issue 19): bulk training of the learned filter from mbox files, maildirs or
// message files, with a progress bar, and the model snapshots (list, take, roll back) from the
// command line. The command line acts as an administrator: what it teaches has full weight.
//
//   mailmoat learn spam|ham PATH... [--domain D]   (PATH: an mbox file, a maildir, a folder of messages, a message file)
//   mailmoat learn snapshots | snapshot [--domain D] [--note TEXT] | rollback ID
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.ts';
import { databaseTarget } from '../roles.ts';
import { openSql } from '../store/sql.ts';
import { prepareSchema } from '../store/migrations.ts';
import { openLearnerStore } from '../store/learner-store.ts';
import { notAMessage } from '../learning.ts';
import { createLearner, GLOBAL_MODEL, type Learner } from './learner.ts';
import { CliError } from '../../quarantine-ui/cli.ts';

export const LEARN_USAGE = `  learn spam|ham PATH... [--domain D]   train the learned filter from mbox files, maildirs or message files
  learn snapshots | snapshot [--domain D] [--note TEXT] | rollback ID   the learned filter's model snapshots`;

interface Out {
  log(line: string): void;
  /** The progress line (overwritten in place on a terminal). */
  progress(line: string): void;
}

const terminalOut: Out = {
  log: (l) => console.log(l),
  progress: (l) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${l}`);
  },
};

export async function learnCli(argv: string[], loadConfig: (explicit: string | undefined) => Config, out: Out = terminalOut): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, domain: { type: 'string' }, note: { type: 'string' } },
  });
  const [sub, ...rest] = positionals;
  const config = loadConfig(values.config);
  const domain = values.domain?.toLowerCase() ?? null;
  if (domain && !config.domains[domain]) throw new CliError(`${domain} is not a hosted domain of this config`);
  const sql = await openSql(databaseTarget(config));
  try {
    await prepareSchema(sql);
    const learner = createLearner(openLearnerStore(sql));
    switch (sub) {
      case 'spam':
      case 'ham':
        if (rest.length === 0) throw new CliError(`usage:\n${LEARN_USAGE}`);
        return await train(learner, sub, rest, domain, config.smtp.maxMessageBytes, out);
      case 'snapshots':
        for (const s of await learner.snapshots(50))
          out.log(`${s.id}\t${new Date(s.at).toISOString()}\t${s.name === GLOBAL_MODEL ? 'global' : s.name}\t${s.by}\t${s.note}`);
        return 0;
      case 'snapshot':
        out.log(`snapshot ${await learner.snapshot(domain ?? GLOBAL_MODEL, 'cli', values.note ?? 'taken from the command line')}`);
        return 0;
      case 'rollback':
        if (!rest[0] || !/^\d+$/.test(rest[0])) throw new CliError('usage: mailmoat learn rollback ID (see mailmoat learn snapshots)');
        out.log(await learner.rollback(Number(rest[0]), 'cli'));
        return 0;
      default:
        throw new CliError(`usage:\n${LEARN_USAGE}`);
    }
  } finally {
    await sql.close();
  }
}

/** Every message under `paths`: its source (for messages about it) and a way to read it. */
export function listMessages(paths: readonly string[]): { source: string; read(): Buffer[] }[] {
  const out: { source: string; read(): Buffer[] }[] = [];
  const visit = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) {
      // A maildir's messages are in cur/ and new/ (tmp/ holds deliveries in progress).
      const names = readdirSync(p).sort();
      const isMaildir = names.includes('cur') && names.includes('new');
      for (const n of names) {
        if (n.startsWith('.') || (isMaildir && n === 'tmp')) continue;
        visit(path.join(p, n));
      }
      return;
    }
    out.push({ source: p, read: () => splitMbox(readFileSync(p)) });
  };
  for (const p of paths) visit(p);
  return out;
}

/** An mbox file's messages (a file not starting with "From " is one message); ">From " quoting is undone. */
export function splitMbox(file: Buffer): Buffer[] {
  if (!file.subarray(0, 5).equals(Buffer.from('From '))) return [file];
  const text = file.toString('latin1');
  return text
    .split(/\n(?=From )/)
    .map((m) => m.slice(m.indexOf('\n') + 1).replace(/^>(>*From )/gm, '$1'))
    .filter((m) => m.trim().length > 0)
    .map((m) => Buffer.from(m, 'latin1'));
}

async function train(learner: Learner, as: 'spam' | 'ham', paths: string[], domain: string | null, maxBytes: number, out: Out): Promise<number> {
  const files = listMessages(paths);
  let refused = 0;
  const started = Date.now();
  async function* items() {
    for (const [i, f] of files.entries()) {
      for (const raw of f.read()) {
        const problem = notAMessage(raw, maxBytes);
        if (problem) {
          refused++;
          out.log(`${f.source}: skipped, ${problem}`);
          continue;
        }
        yield { raw, as };
      }
      out.progress(`${bar((i + 1) / files.length)} ${i + 1}/${files.length} files`);
    }
  }
  const n = await learner.teachMany(items(), domain, () => {});
  out.progress('\n');
  out.log(
    `learned ${n} message(s) as ${as} into the ${domain ? `${domain} model` : 'global model'} in ${((Date.now() - started) / 1000).toFixed(1)} s${refused ? `; ${refused} skipped (not messages)` : ''}`,
  );
  return refused > 0 && n === 0 ? 1 : 0;
}

const bar = (f: number, width = 30) => `[${'#'.repeat(Math.round(f * width)).padEnd(width, '.')}]`;
