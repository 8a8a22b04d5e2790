// The console and the learned filter (issue 19): learn buttons teach it (an admin with full
// weight, a user as one report), and superadmins snapshot and roll back its models.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, rawMessage, startHarness, type Harness } from './harness.ts';

describe('console and the learned filter', () => {
  let h: Harness;
  let root: Client;
  let admin: Client;
  let user: Client;
  const spamText = 'Buy cheap pills online now, limited offer, click here to claim your prize';
  const raw = rawMessage({ to: 'alice@a.test', subject: 'cheap pills', text: spamText });
  const score = async () => {
    const [s] = (await h.deps.learner!.score(Buffer.from(raw), ['a.test'])).values();
    return s.status === 'scored' ? s.logOdds : NaN;
  };

  beforeAll(async () => {
    h = await startHarness({ learner: true });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('alice', 'user', { addresses: ['alice@a.test'] });
    root = new Client(h.app);
    admin = new Client(h.app);
    user = new Client(h.app);
    await root.login('root');
    await admin.login('admina');
    await user.login('alice');
  });
  afterAll(async () => h?.close());

  let confirmed = 0;
  it('a user’s learn button counts as one report, a domain admin’s confirms it with full weight', async () => {
    const id = await h.addMessage({ rcpt: ['alice@a.test'], raw, subject: 'cheap pills' });
    const snap = await root.post('/learner/snapshot', { model: 'a.test', note: 'before anyone learned' }, { csrfFrom: '/learner' });
    expect(snap.statusCode).toBe(303);
    expect(await score()).toBe(0);
    await user.post(`/messages/${id}/learn-spam`, {});
    expect((await user.get(`/messages/${id}`)).body).toContain('learned filter: learned as spam for a.test, one person&#39;s report: weight 0.25');
    const afterUser = await score();
    expect(afterUser).toBeGreaterThan(0);
    await admin.post(`/messages/${id}/learn-spam`, {});
    expect((await admin.get(`/messages/${id}`)).body).toContain('confirmed by an administrator (weight 0.75, topped up to 1)');
    confirmed = await score();
    expect(confirmed).toBeGreaterThan(afterUser);
  });

  it('the scan report shows the learned filter’s probability, its points and the text that drove it', async () => {
    const id = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'prize' });
    await h.store.recordVerdict(id, {
      verdict: 'spam',
      reason: 'spam score 6.0',
      subject: 'prize',
      report: {
        virus: { status: 'clean' },
        spam: { status: 'scored', score: 2, threshold: 5, rules: [] },
        learner: { status: 'scored', logOdds: 4, probability: 0.982, trained: 900, models: ['*', 'a.test'], spamSigns: ['claim your <prize>'], hamSigns: [] },
        score: { spam: 2, urls: 0, auth: 0, learner: 4, total: 6, threshold: 5, highThreshold: 10 },
      },
    });
    const page = (await admin.get(`/messages/${id}`)).body;
    expect(page).toContain('<dt>Learned filter</dt>');
    expect(page).toMatch(
      /probability of spam <b>98\.2 %<\/b> \(log-odds 4\.00; models global \+ a\.test, 900 learned\): <b>\+4\.0<\/b> points in the spam score/,
    );
    expect(page).toContain('“claim your &lt;prize&gt;”');
  });

  it('superadmins see the snapshots and roll back with one click; others get no such page', async () => {
    const page = (await root.get('/learner')).body;
    expect(page).toContain('Learned filter');
    expect(page).toContain('before anyone learned');
    const id = /action="\/learner\/rollback\/(\d+)"/.exec(page)![1];
    const res = await root.post(`/learner/rollback/${id}`, {}, { csrfFrom: '/learner' });
    expect(res.statusCode).toBe(303);
    expect((await root.get('/learner')).body).toMatch(/The model a\.test rolled back to snapshot \d+/);
    // The domain's model is back to empty; what remains is the global model's bounded share.
    const after = await score();
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThan(confirmed * 0.3);
    expect((await admin.get('/learner')).statusCode).toBe(404);
    expect((await user.get('/learner')).statusCode).toBe(404);
    expect((await h.audit.list({ action: 'learner-rollback', limit: 10 })).rows).toHaveLength(1);
  });
});
