import { describe, expect, it } from 'vitest';
import { groupSync } from '../../../gateway/spool/spool.ts';

/** A sync whose runs are ended by the test; records which calls each run could cover. */
function controlledSync() {
  const runs: { startedAfter: number; end: (err?: Error) => void }[] = [];
  let calls = 0;
  const sync = () =>
    new Promise<void>((resolve, reject) => {
      runs.push({ startedAfter: calls, end: (err) => (err ? reject(err) : resolve()) });
    });
  return { runs, sync, called: () => ++calls };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('groupSync (the spool directory fsync shared by concurrent commits)', () => {
  it('a caller arriving while a sync runs is covered only by the next one, which the waiting callers share', async () => {
    const c = controlledSync();
    const sync = groupSync(c.sync);
    const done: string[] = [];
    const call = (name: string) => {
      c.called();
      return sync().then(() => done.push(name));
    };
    const a = call('a');
    const b = call('b');
    const d = call('d');
    await tick();
    expect(c.runs).toHaveLength(1);
    // b and d renamed their entries after the first sync started: it must not answer them.
    c.runs[0].end();
    await a;
    expect(done).toEqual(['a']);
    await tick();
    expect(c.runs).toHaveLength(2);
    expect(c.runs[1].startedAfter).toBe(3);
    c.runs[1].end();
    await Promise.all([b, d]);
    expect(done).toEqual(['a', 'b', 'd']);
  });

  it('a failed sync rejects every caller it was for, and the next call syncs again', async () => {
    const c = controlledSync();
    const sync = groupSync(c.sync);
    const first = sync();
    const second = sync();
    const third = sync();
    c.runs[0].end();
    await first;
    await tick();
    c.runs[1].end(new Error('EIO'));
    await expect(second).rejects.toThrow('EIO');
    await expect(third).rejects.toThrow('EIO');
    const fourth = sync();
    await tick();
    c.runs[2].end();
    await expect(fourth).resolves.toBeUndefined();
  });
});
