// Clients that drop the connection in the middle of DATA (found by the soak): smtp-server destroys
// the message stream with an error at that moment, which may come before the spool has opened its
// file. Nothing may escape as an uncaught 'error' (the process guard would log it, and too many end
// the process); the listener keeps answering. The gateway runs as a process: its log is read.
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../gateway/services/managed.ts';
import { startMailbox } from '../../gateway/demo/mailbox.ts';
import { gatewayProcess, greets } from '../support/gateway-process.ts';
import { testConfigInput } from '../support/gateway.ts';
import { RawSmtp } from '../support/smtp-client.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One client: a transaction up to DATA, part of the body, then the connection is dropped. */
async function dropMidData(port: number, n: number): Promise<void> {
  const c = await RawSmtp.connect(port);
  try {
    await c.hello();
    await c.cmd('MAIL FROM:<bob@sender.test>');
    await c.cmd('RCPT TO:<alice@example.test>');
    // DATA and the first body bytes in one segment, then the drop: the close reaches the server
    // while it is still setting up the message (the trace headers, the spool file being opened).
    c.write(`DATA\r\nSubject: dropped ${n}\r\n\r\n${'x'.repeat(n % 3 === 0 ? 70_000 : 50)}`);
  } finally {
    c.destroy();
  }
}

describe('a client that drops the connection mid-DATA', () => {
  it('raises no error outside the session, in many concurrent sessions, and the listener keeps answering', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-drop-'));
    cleanups.push(() => (process.env.MAILMOAT_KEEP_TEST_DIR ? Promise.resolve() : fs.rm(dataDir, { recursive: true, force: true })));
    const mailbox = await startMailbox({ dir: path.join(dataDir, 'mailbox'), host: '127.0.0.1', port: 0 });
    cleanups.push(() => mailbox.close());
    const smtpPort = await freePort();
    const input = testConfigInput(dataDir, mailbox.port, {
      smtp: { listen: { host: '127.0.0.1', port: smtpPort }, maxMessageBytes: 200_000, maxRecipients: 5, maxClients: 200 },
      console: { enabled: false },
      log: { level: 'info' },
    });
    const configFile = path.join(dataDir, 'mailmoat.yaml');
    await fs.writeFile(configFile, JSON.stringify(input));
    const gateway = gatewayProcess({ configFile, dataDir, smtpPort, maxRestarts: 0 });
    cleanups.push(() => gateway.stop());
    await gateway.start();

    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 30 }, (_, i) => dropMidData(smtpPort, round * 30 + i).catch(() => {})));
    }
    await new Promise((r) => setTimeout(r, 500)); // the sessions' ends are logged

    expect(await greets(smtpPort, 2_000)).toBe(true);
    const log = await fs.readFile(gateway.logFile, 'utf8');
    const escaped = log.split('\n').filter((l) => l.includes('an error escaped'));
    expect(escaped.map((l) => l.slice(0, 300))).toEqual([]);
    expect(gateway.unexpectedExits).toEqual([]);
    // Nothing of the dropped messages is left half-received.
    expect(await fs.readdir(path.join(input.dataDir as string, 'spool', 'incoming'))).toEqual([]);
  });
});
