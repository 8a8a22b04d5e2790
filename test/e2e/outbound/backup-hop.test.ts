// Issue 18, the provider whose first relay refuses (Tornevall style): a next hop marked `backup`
// takes what the first refused with a 5xx; without the mark a 5xx is final (a bounce).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailboxMessages, sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../../support/gateway.ts';
import { startMailbox, type Mailbox } from '../../../gateway/demo/mailbox.ts';

describe('relay hops: backup on 5xx', () => {
  let gw: TestGateway;
  let refusing: Mailbox;
  let backup: Mailbox;
  const backupDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-backup-'));
  beforeAll(async () => {
    refusing = await startMailbox({
      dir: mkdtempSync(path.join(os.tmpdir(), 'mailmoat-refusing-')),
      host: '127.0.0.1',
      port: 0,
      hooks: { refuseRecipient: () => ({ code: 554, text: '5.7.1 Relay access denied' }) },
    });
    backup = await startMailbox({ dir: backupDir, host: '127.0.0.1', port: 0 });
    const first = { host: '127.0.0.1', port: refusing.port };
    const second = { host: '127.0.0.1', port: backup.port };
    gw = await startTestGateway({
      domains: {
        'backup.test': { downstream: [first, { ...second, backup: true }] },
        'nobackup.test': { downstream: [first, second] },
      },
      overrides: {
        inline: { enabled: false },
        checks: { trusted: { networks: [] }, helo: { enabled: false }, rdns: { enabled: false }, spf: { enabled: false } },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await refusing?.close();
    await backup?.close();
  });

  it('the first hop refuses with 554: the backup hop gets the message', async () => {
    const sent = await sendRaw(
      gw.smtpPort,
      { from: 'a@sender.test', to: ['bob@backup.test'] },
      'From: a@sender.test\r\nTo: bob@backup.test\r\nSubject: via backup\r\n\r\nhi\r\n',
    );
    await waitForStatus(gw, sent.id!, ['delivered']);
    expect((await mailboxMessages({ mailboxDir: backupDir }, 'bob@backup.test')).length).toBe(1);
  });

  it('without the backup mark the 554 is final', async () => {
    const sent = await sendRaw(
      gw.smtpPort,
      { from: 'a@sender.test', to: ['bob@nobackup.test'] },
      'From: a@sender.test\r\nTo: bob@nobackup.test\r\nSubject: no backup\r\n\r\nhi\r\n',
    );
    await waitForStatus(gw, sent.id!, ['failed']);
    expect((await mailboxMessages({ mailboxDir: backupDir }, 'bob@nobackup.test')).length).toBe(0);
  });
});
