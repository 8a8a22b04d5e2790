// The policy for errors that escape their promise (gateway/containment.ts), decided per error:
// inside a job it fails that job and nothing else; outside any job it is logged, and only a
// burst of uncaught exceptions stops the process for a restart.
import { describe, expect, it } from 'vitest';
import { escapedErrorHandler, runInJobScope, UNATTRIBUTED_LIMIT } from '../../gateway/containment.ts';
import { silentLogger } from '../../gateway/log.ts';

describe('errors that escape their promise', () => {
  it('fail the job whose code threw them, found through its async context', async () => {
    const stops: string[] = [];
    const handle = escapedErrorHandler(silentLogger(), (r) => stops.push(r));
    const job = runInJobScope({ queue: 'deliver', messageId: 'M1' }, async () => {
      // As a library callback that throws after the handler started waiting for it.
      setImmediate(() => handle('uncaughtException', new TypeError('socket.write is not a function')));
      await new Promise<never>(() => {});
    });
    await expect(job).rejects.toThrow('socket.write is not a function');
    const other = runInJobScope({ queue: 'scan', messageId: 'M2' }, async () => {
      setTimeout(() => handle('unhandledRejection', new Error('ENOENT: spool/M2.eml')), 1);
      await new Promise<never>(() => {});
    });
    await expect(other).rejects.toThrow('ENOENT');
    expect(stops).toEqual([]);
  });

  it('outside any job: keep serving, and stop for a restart only after a burst of uncaught exceptions', () => {
    const stops: string[] = [];
    let clock = 0;
    const handle = escapedErrorHandler(
      silentLogger(),
      (r) => stops.push(r),
      () => clock,
    );
    for (let i = 0; i < 10; i++) handle('unhandledRejection', new Error('a rejection nobody awaited'));
    for (let i = 0; i < UNATTRIBUTED_LIMIT - 1; i++) {
      handle('uncaughtException', new Error('one session failed'));
      clock += 20_000; // spread over more than a minute
    }
    handle('uncaughtException', new Error('one more'));
    expect(stops).toEqual([]);
    for (let i = 0; i < UNATTRIBUTED_LIMIT; i++) handle('uncaughtException', new Error('a burst'));
    expect(stops).toHaveLength(1);
  });
});
