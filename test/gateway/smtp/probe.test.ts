import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailbox, type Mailbox } from '../../../gateway/demo/mailbox.ts';
import { createRecipientProber } from '../../../gateway/smtp/probe.ts';
import { closedPort } from '../../support/ports.ts';

let mailbox: Mailbox;
const asked: string[] = [];
beforeAll(async () => {
  mailbox = await startMailbox({
    dir: mkdtempSync(path.join(os.tmpdir(), 'mailmoat-probe-')),
    host: '127.0.0.1',
    port: 0,
    hooks: {
      refuseRecipient: (a) => {
        asked.push(a);
        return a.startsWith('ghost') ? { code: 550, text: '5.1.1 no such user' } : a.startsWith('later') ? { code: 451, text: '4.3.0 later' } : undefined;
      },
    },
  });
});
afterAll(() => mailbox.close());

describe('recipient probe', () => {
  it('exists / unknown / failed; answers are cached, failures are not; a dead host moves on to the next', async () => {
    let now = 0;
    const prober = createRecipientProber({ helo: 'mx.test', now: () => now });
    const dead = await closedPort();
    const o = {
      hosts: [
        { host: '127.0.0.1', port: dead },
        { host: '127.0.0.1', port: mailbox.port },
      ],
      timeoutMs: 2_000,
      positiveTtlSec: 60,
      negativeTtlSec: 10,
    };
    expect(await prober.verify('alice@a.test', o)).toEqual({ status: 'exists' });
    expect(await prober.verify('ghost@a.test', o)).toEqual({ status: 'unknown', reply: '550 5.1.1 no such user' });
    expect(await prober.verify('later@a.test', o)).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/ECONNREFUSED.*answered 451 4\.3\.0 later/),
    });
    const before = asked.length;
    await Promise.all([prober.verify('ALICE@a.test', o), prober.verify('ghost@a.test', o)]);
    expect(asked.length).toBe(before); // both cached
    await prober.verify('later@a.test', o);
    expect(asked.length).toBe(before + 1); // a failure is asked again
    now = 11_000; // the negative answer expired, the positive one did not
    await prober.verify('ghost@a.test', o);
    await prober.verify('alice@a.test', o);
    expect(asked.length).toBe(before + 2);
  });
});
