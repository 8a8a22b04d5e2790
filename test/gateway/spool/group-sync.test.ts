import { describe, expect, it } from 'vitest';
import { groupSync } from '../../../gateway/spool/files.ts';

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
/** Turns of the event loop until `ok` (a bounded wait: the sync starts a turn after it is needed). */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 20 && !ok(); i++) await tick();
  expect(ok()).toBe(true);
}

describe('groupSync (the spool directory fsync shared by concurrent commits)', () => {
  it('callers of the same moment share one sync; one arriving while it runs is covered only by the next', async () => {
    const c = controlledSync();
    const sync = groupSync(c.sync);
    const done: string[] = [];
    const call = (name: string) => {
      c.called();
      return sync().then(() => done.push(name));
    };
    const a = call('a');
    const b = call('b');
    await until(() => c.runs.length === 1);
    expect(c.runs[0].startedAfter).toBe(2);
    // d renamed its entry after the first sync started: it must not answer d.
    const d = call('d');
    await tick();
    await tick();
    expect(c.runs).toHaveLength(1);
    c.runs[0].end();
    await Promise.all([a, b]);
    expect(done).toEqual(['a', 'b']);
    await until(() => c.runs.length === 2);
    expect(c.runs[1].startedAfter).toBe(3);
    expect(done).toEqual(['a', 'b']);
    c.runs[1].end();
    await d;
    expect(done).toEqual(['a', 'b', 'd']);
  });

  it('a failed sync rejects every caller it was for, and the next call syncs again', async () => {
    const c = controlledSync();
    const sync = groupSync(c.sync);
    const first = sync();
    await until(() => c.runs.length === 1);
    const second = sync();
    const third = sync();
    c.runs[0].end();
    await first;
    await until(() => c.runs.length === 2);
    c.runs[1].end(new Error('EIO'));
    await expect(second).rejects.toThrow('EIO');
    await expect(third).rejects.toThrow('EIO');
    const fourth = sync();
    await until(() => c.runs.length === 3);
    c.runs[2].end();
    await expect(fourth).resolves.toBeUndefined();
  });
});
