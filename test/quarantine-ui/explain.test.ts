// The console explains a verdict: the message list shows the plain reason, and the message view
// lists every SpamAssassin rule with its score and description, the other classes found, and the
// X-Spam-* headers as the score decided them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startHarness, type Harness } from './harness.ts';
import type { ScanReport } from '../../scanners/types.ts';

describe('plain reasons in the console', () => {
  let h: Harness;
  let root: Client;
  let id: string;
  const reason = 'SpamAssassin score 999.7, 10.0 or more is high spam; strongest signs: Generic Test for Unsolicited Bulk Email (+1000.0)';

  beforeAll(async () => {
    h = await startHarness();
    await h.addAccount('root', 'superadmin');
    id = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'your account' });
    const report: ScanReport = {
      virus: { status: 'clean' },
      spam: {
        status: 'scored',
        score: 999.7,
        threshold: 5,
        rules: ['GTUBE', 'MISSING_MID'],
        details: [
          { rule: 'MISSING_MID', score: 0.6, description: 'Missing Message-Id: header' },
          { rule: 'GTUBE', score: 1000, description: 'Generic Test for Unsolicited Bulk Email' },
        ],
      },
      outcome: {
        recipients: ['alice@a.test'],
        class: 'high-spam',
        classes: ['phishing', 'high-spam'],
        action: 'quarantine',
        reasons: [reason, 'a link shows www.paypal.com but goes to evil-login.example.net'],
        rules: [],
        headers: [
          ['X-Spam-Flag', 'YES'],
          ['X-Spam-Status', 'Yes, score=999.7 required=5.0 tests=GTUBE,MISSING_MID'],
        ],
      },
    };
    await h.store.recordVerdict(id, { verdict: 'high-spam', reason, report, subject: 'your account' });
    root = new Client(h.app);
    await root.login('root');
  });
  afterAll(async () => h?.close());

  it('the message list says why in words', async () => {
    const page = (await root.get('/quarantine')).body;
    expect(page).toContain('SpamAssassin score 999.7, 10.0 or more is high spam');
  });

  it('the message view lists each rule with its score and description, strongest first', async () => {
    const page = (await root.get(`/messages/${id}`)).body;
    const gtube = page.indexOf('<td class="mono">1000.0</td><td class="mono">GTUBE</td><td>Generic Test for Unsolicited Bulk Email</td>');
    const mid = page.indexOf('<td class="mono">0.6</td><td class="mono">MISSING_MID</td><td>Missing Message-Id: header</td>');
    expect(gtube).toBeGreaterThan(0);
    expect(mid).toBeGreaterThan(gtube);
    expect(page).toContain('Also found: phishing (the strictest action of all of them was taken)');
    expect(page).toContain('X-Spam-Flag: YES');
    expect(page).toContain('a link shows www.paypal.com but goes to evil-login.example.net');
  });
});
