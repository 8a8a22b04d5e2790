// Fault injection for the crash and containment tests, and nothing else. Inert unless the
// environment variable MAILMOAT_TEST_FAULTS names a control file; while that file exists, every
// scan job first does what it says:
//   kill         the worker process kills itself with SIGKILL (a crash mid-job: a BullMQ stall);
//   throw-async  an exception is thrown from a callback, outside the job's promise, and the job
//                never finishes by itself (as a library callback that throws before it resolves).
// The test removes the file to let the message through (an administrator's release).
import { readFileSync } from 'node:fs';

export type TestFault = (messageId: string) => Promise<void>;

export function testFaultHook(env: NodeJS.ProcessEnv = process.env): TestFault | undefined {
  const control = env.MAILMOAT_TEST_FAULTS;
  if (!control) return undefined;
  return async () => {
    let mode: string;
    try {
      mode = readFileSync(control, 'utf8').trim();
    } catch {
      return; // no control file: no fault
    }
    if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
    if (mode === 'throw-async') {
      setImmediate(() => {
        throw new Error('test fault: thrown outside the job promise');
      });
      await new Promise<never>(() => {});
    }
  };
}
