// The demo/test mailbox (the downstream server of `npm start` and of the tests) survives a sender
// that resets its connection in the middle of a transaction, as a killed gateway does.
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMailbox } from '../../gateway/demo/mailbox.ts';
import { sendRaw } from '../support/gateway.ts';

describe('demo mailbox', () => {
  it('keeps serving after a sender resets its connection during DATA', async () => {
    const mailbox = await startMailbox({ dir: mkdtempSync(path.join(os.tmpdir(), 'mailmoat-box-')), host: '127.0.0.1', port: 0 });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const socket = net.connect({ host: '127.0.0.1', port: mailbox.port });
      socket.on('error', () => {});
      let seen = '';
      const waitFor = (text: string) =>
        new Promise<void>((resolve) => {
          const check = () => (seen.includes(text) ? resolve() : socket.once('data', (d) => ((seen += String(d)), check())));
          check();
        });
      await waitFor('220 ');
      socket.write('EHLO dying.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
      await waitFor('354 ');
      socket.write('Subject: half\r\n\r\nhalf a mess');
      socket.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 200));
      expect(uncaught).toEqual([]);
      const next = await sendRaw(mailbox.port, { from: 'a@b.test', to: ['alice@example.test'] }, 'Subject: whole\r\n\r\nbody\r\n');
      expect(next.code).toBe(250);
    } finally {
      process.off('uncaughtException', onUncaught);
      await mailbox.close();
    }
  });
});
