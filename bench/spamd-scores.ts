// `node bench/spamd-scores.ts OUT.json`: spamd's scores (managed spamd, -L, empty Bayes) of the
// tune split's held-out messages for seeds 19–28, for the fusion rows of `node
// bench/learner-tries.ts --spamd OUT.json` (about 5 minutes on 2 shared cores).
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../gateway/log.ts';
import { freePort, startManagedSpamd } from '../gateway/services/managed.ts';
import { SpamdClient, scanSpam } from '../scanners/spamd.ts';
import { loadCorpus, shuffled } from './lib/corpus.ts';
const OUT = process.argv[2] ?? 'spamd-tune.json';
const all = loadCorpus(['spam-1', 'easy-ham-1', 'hard-ham-1']);
const want = new Set<string>();
for (const seed of [19, 20, 21, 22, 23, 24, 25, 26, 27, 28]) {
  const pool = shuffled(all, seed);
  const sp = pool.filter((m) => m.spam),
    hp = pool.filter((m) => !m.spam);
  for (const x of [...sp.slice(400), ...hp.slice(-250)]) want.add(x.group + '/' + x.name);
}
console.error('to score', want.size);
const dir = await mkdtemp(join(tmpdir(), 'spamd-cache-'));
await chmod(dir, 0o711);
const spamd = await startManagedSpamd({ dir: join(dir, 'spamd'), port: await freePort(), logger: createLogger({ level: 'warn' }), allowTell: true });
const client = new SpamdClient({ host: spamd.host, port: spamd.port }, { timeoutMs: 60_000 });
const out: Record<string, number> = {};
let n = 0;
for (const x of all) {
  const k = x.group + '/' + x.name;
  if (!want.has(k)) continue;
  const r = await scanSpam(client, x.raw, { maxBytes: 10_000_000 });
  if (r.status === 'scored') out[k] = r.score;
  if (++n % 100 === 0) {
    console.error(n);
    await writeFile(OUT, JSON.stringify(out));
  }
}
await writeFile(OUT, JSON.stringify(out));
await spamd.stop();
console.error('done');
