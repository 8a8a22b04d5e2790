// Crash safety: a worker process killed with SIGKILL in the middle of a delivery loses nothing.
// The worker runs as a real child process (`mailmoat worker`); the SMTP front stays up.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

function startWorkerProcess(configFile: string): ChildProcess {
  return spawn(path.join(REPO, 'node_modules/.bin/node'), [path.join(REPO, 'gateway/cli.ts'), 'worker', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

describe('a worker killed with SIGKILL mid-delivery', () => {
  let gw: TestGateway;
  let firstAttemptSeen!: () => void;
  const firstAttempt = new Promise<void>((resolve) => (firstAttemptSeen = resolve));
  let letFirstAttemptFail!: () => void;
  const firstAttemptFails = new Promise<void>((resolve) => (letFirstAttemptFail = resolve));
  let attempts = 0;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    gw = await startTestGateway({
      mailboxHooks: {
        // The downstream holds the first delivery open until the worker is dead, then drops it
        // without storing it (the gateway never got its 250).
        async beforeReply() {
          attempts++;
          if (attempts === 1) {
            firstAttemptSeen();
            await firstAttemptFails;
            throw new Error('connection lost');
          }
        },
      },
    });
    await gw.stopWorkers(); // only the child process works on the queue
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await gw?.stop();
  });

  it('is taken over by a new worker and the message is delivered exactly once', async () => {
    const first = startWorkerProcess(gw.configFile);
    children.push(first);
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['grace@example.test'] }, 'Subject: survive\r\n\r\nstill here\r\n');
    expect(sent.code).toBe(250);
    await firstAttempt;
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    letFirstAttemptFail();
    expect((await gw.stores.store.get(sent.id!))?.status).not.toBe('delivered');

    children.push(startWorkerProcess(gw.configFile));
    await waitForStatus(gw, sent.id!, ['delivered'], 45_000);
    const copies = await mailboxMessages(gw, 'grace@example.test');
    expect(copies).toHaveLength(1);
    expect(copies[0].toString()).toContain('still here');
    expect(attempts).toBe(2);
  });
});
