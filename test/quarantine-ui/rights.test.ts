// Release rights per verdict class on every console path, release requests, and the holes found
// in the console (split ids, another tenant's recipients in the history) — through app.inject on
// real stores, on SQLite and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, fakeId, rawMessage, startHarness, type Harness } from './harness.ts';
import { DIALECTS } from '../support/databases.ts';
import { silentLogger } from '../../gateway/log.ts';
import { sendDigests } from '../../quarantine-ui/lib/digest.ts';
import { block, linkIn, pathIn, readDigest } from './digest-mail.ts';

const DOWN = [{ host: '127.0.0.1', port: 1 }];

describe.each(DIALECTS)('release rights and requests on %s', (database) => {
  let h: Harness;
  let root: Client;
  let admina: Client;
  let adminb: Client;
  let alice: Client; // end user alice@a.test
  let bob: Client; // end user bob@b.test

  beforeAll(async () => {
    h = await startHarness({
      database,
      config: {
        domains: {
          'a.test': { downstream: DOWN },
          // b.test keeps even spam for its administrators
          'b.test': { downstream: DOWN, releaseRights: { 'high-spam': { release: 'admin' } } },
        },
      },
    });
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('adminb', 'domainadmin', { domains: ['b.test'] });
    await h.addAccount('alice', 'user', { addresses: ['alice@a.test'] });
    await h.addAccount('bob', 'user', { addresses: ['bob@b.test'] });
    root = new Client(h.app);
    admina = new Client(h.app);
    adminb = new Client(h.app);
    alice = new Client(h.app);
    bob = new Client(h.app);
    for (const [c, name] of [
      [root, 'root'],
      [admina, 'admina'],
      [adminb, 'adminb'],
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const)
      await c.login(name);
  });
  afterAll(async () => h?.close());

  const virusFor = (rcpt: string, subject: string) =>
    h.addMessage({ rcpt: [rcpt], verdict: 'virus', subject, raw: rawMessage({ to: rcpt, subject, html: '<p>open the attachment</p>' }) });

  it('an end user on a virus sees no release, no download and no preview; forged posts are 403 with an audit row', async () => {
    const id = await virusFor('alice@a.test', 'your invoice');
    const page = await alice.get(`/messages/${id}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain(`/messages/${id}/release"`);
    expect(page.body).not.toContain(`/messages/${id}/release-allow"`);
    expect(page.body).not.toContain(`/messages/${id}/raw`);
    expect(page.body).not.toContain(`/messages/${id}/preview`);
    expect(page.body).toContain('Only an administrator may release a message held as virus.');
    expect(page.body).toContain(`/messages/${id}/request-release`);
    for (const action of ['release', 'release-allow']) {
      const res = await alice.post(`/messages/${id}/${action}`, {}, { csrfFrom: `/messages/${id}` });
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('Only an administrator may release a message held as virus.');
      expect((await h.audit.list({ actor: 'alice', messageId: id, limit: 1 })).rows[0]).toMatchObject({
        action,
        outcome: 'denied',
        detail: 'Only an administrator may release a message held as virus.',
      });
    }
    for (const [suffix, right] of [
      ['raw', 'download'],
      ['preview', 'preview'],
    ]) {
      const res = await alice.get(`/messages/${id}/${suffix}`);
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain(`Only an administrator may ${right} a message held as virus.`);
      expect((await h.audit.list({ actor: 'alice', messageId: id, limit: 1 })).rows[0]).toMatchObject({ action: right, outcome: 'denied' });
    }
    // bulk: refused too
    await alice.post('/quarantine/bulk', { action: 'release', id: [id] });
    expect((await alice.get('/quarantine')).body).toContain(`${id}: Only an administrator may release a message held as virus.`);
    expect((await h.store.get(id))!.status).toBe('quarantined');
    expect(h.released).not.toContain(id);
    // the domain admin may do all of it
    const admin = await admina.get(`/messages/${id}`);
    expect(admin.body).toContain(`/messages/${id}/release"`);
    expect(admin.body).toContain(`/messages/${id}/raw`);
    expect((await admina.get(`/messages/${id}/raw`)).statusCode).toBe(200);
    expect((await admina.get(`/messages/${id}/preview`)).body).toContain('open the attachment');
  });

  it('spam stays the recipient’s to release, unless the domain says otherwise', async () => {
    const a = await h.addMessage({ rcpt: ['alice@a.test'], subject: 'cheap pills' });
    expect((await alice.get(`/messages/${a}`)).body).toContain(`/messages/${a}/release"`);
    expect((await alice.post(`/messages/${a}/release`, {}, { csrfFrom: `/messages/${a}` })).statusCode).toBe(303);
    expect(h.released).toContain(a);
    const b = await h.addMessage({ rcpt: ['bob@b.test'], subject: 'cheap pills for b' });
    expect((await bob.get(`/messages/${b}`)).body).not.toContain(`/messages/${b}/release"`);
    expect((await bob.post(`/messages/${b}/release`, {}, { csrfFrom: `/messages/${b}` })).statusCode).toBe(403);
    expect((await adminb.post(`/messages/${b}/release`, {}, { csrfFrom: `/messages/${b}` })).statusCode).toBe(303);
    expect(h.released).toContain(b);
  });

  it('a user asks, the domain admin sees a badge and approves: released once, all audited', async () => {
    const id = await virusFor('alice@a.test', 'contract draft');
    const ask = await alice.post(`/messages/${id}/request-release`, { note: 'I expect this from a client' }, { csrfFrom: `/messages/${id}` });
    expect(ask.statusCode).toBe(303);
    expect((await alice.get(`/messages/${id}`)).body).toContain('You have asked for its release');
    // asked once
    await alice.post(`/messages/${id}/request-release`, {}, { csrfFrom: `/messages/${id}` });
    expect((await h.requests.forMessage(id)).length).toBe(1);
    const [request] = await h.requests.forMessage(id);
    expect(request).toMatchObject({ requester: 'alice', recipient: 'alice@a.test', domain: 'a.test', note: 'I expect this from a client', status: 'pending' });
    // the domain's admin address hears of it by mail (postmaster@ unless policy.adminAddress says otherwise)
    const told = h.notices.filter((n) => n.subject === 'Release request from alice@a.test' && n.text.includes('contract draft'));
    expect(told.map((n) => n.to)).toEqual(['postmaster@a.test']);
    expect(told[0]!.text).toContain('Note: I expect this from a client');
    // A's admin sees it, with a count in the navigation; B's admin does not
    const list = await admina.get('/requests');
    expect(list.body).toContain('contract draft');
    expect(list.body).toMatch(/Release requests <span class="badge count"[^>]*>\d+<\/span>/);
    expect((await adminb.get('/requests')).body).not.toContain('contract draft');
    expect((await adminb.post(`/requests/${request!.id}/approve`, {}, { csrfFrom: '/requests' })).statusCode).toBe(404);
    // a user cannot approve their own request
    expect((await alice.post(`/requests/${request!.id}/approve`, {}, { csrfFrom: '/requests' })).statusCode).toBe(404);
    expect(h.released).not.toContain(id);
    const ok = await admina.post(`/requests/${request!.id}/approve`, {}, { csrfFrom: '/requests' });
    expect(ok.statusCode).toBe(303);
    expect(h.released.filter((x) => x === id)).toHaveLength(1);
    const again = await admina.post(`/requests/${request!.id}/approve`, {}, { csrfFrom: '/requests' });
    expect(again.statusCode).toBe(409);
    expect(h.released.filter((x) => x === id)).toHaveLength(1);
    expect(await h.requests.get(request!.id)).toMatchObject({ status: 'approved', decidedBy: 'admina' });
    const audit = (await h.audit.list({ messageId: id, limit: 20 })).rows.map((r) => `${r.actor} ${r.action} ${r.outcome}`);
    expect(audit).toEqual(
      expect.arrayContaining([
        'alice release-request ok',
        'alice release-request denied',
        'adminb release-request-approve denied',
        'admina release-request-approve ok',
      ]),
    );
  });

  it('a denied request is told to the user, in the console and by mail', async () => {
    const id = await virusFor('alice@a.test', 'totally safe.exe');
    await alice.post(`/messages/${id}/request-release`, {}, { csrfFrom: `/messages/${id}` });
    const [request] = await h.requests.forMessage(id);
    const res = await admina.post(
      `/requests/${request!.id}/deny`,
      { answer: 'It carries a virus; ask the sender to send it again.' },
      { csrfFrom: '/requests' },
    );
    expect(res.statusCode).toBe(303);
    expect(h.released).not.toContain(id);
    expect((await h.store.get(id))!.status).toBe('quarantined');
    const mine = await alice.get('/requests');
    expect(mine.body).toContain('totally safe.exe');
    expect(mine.body).toContain('denied');
    expect(mine.body).toContain('It carries a virus; ask the sender to send it again.');
    const notice = h.notices.find((n) => n.to === 'alice@a.test' && n.text.includes('totally safe.exe'));
    expect(notice).toMatchObject({ to: 'alice@a.test', subject: 'Your release request was denied' });
    expect(notice!.text).toContain('Answer: It carries a virus');
    expect((await h.audit.list({ actor: 'admina', messageId: id, limit: 1 })).rows[0]).toMatchObject({ action: 'release-request-deny', outcome: 'ok' });
  });

  it('the digest has no release link for a virus, but a request link that asks; a forged release post is 403', async () => {
    await h.addAccount('dora', 'user', { addresses: ['dora@a.test'] });
    const virus = await virusFor('dora@a.test', 'digest virus');
    const spam = await h.addMessage({ rcpt: ['dora@a.test'], subject: 'digest spam' });
    const sent: string[] = [];
    await sendDigests({
      config: h.deps.config,
      store: h.store,
      accounts: h.accounts,
      digests: h.digests,
      secret: h.deps.secret,
      publicUrl: 'https://console.example.test/',
      logger: silentLogger(),
      now: Date.now,
      submit: async (_e, raw) => {
        sent.push(raw.toString());
        return 'X';
      },
    });
    const mail = await readDigest(sent.find((m) => /^To: <?dora@a\.test>?\r?$/m.test(m))!);
    expect(linkIn(block(mail, 'digest virus'), 'Release it')).toBeUndefined();
    const requestLink = pathIn(block(mail, 'digest virus'), 'Request release (an administrator decides)')!.slice(1);
    expect(linkIn(block(mail, 'digest spam'), 'Release it')).toMatch(/^https:\/\/console\.example\.test\/d\/\S+$/);
    const anon = new Client(h.app);
    const page = await anon.get(`/${requestLink}`);
    expect(page.body).toContain('Request release');
    expect(page.body).not.toContain('Release this message');
    const forged = await anon.post(`/${requestLink}`, {}, { csrfFrom: `/${requestLink}` });
    expect(forged.statusCode).toBe(403);
    expect(forged.body).toContain('Only an administrator may release a message held as virus.');
    expect((await h.audit.list({ actor: 'digest:dora@a.test', messageId: virus, limit: 1 })).rows[0]).toMatchObject({
      action: 'digest-release',
      outcome: 'denied',
    });
    expect(h.released).not.toContain(virus);
    const asked = await anon.post(`/${requestLink}`, { action: 'request', note: 'from the digest' }, { csrfFrom: `/${requestLink}` });
    expect(asked.statusCode).toBe(200);
    expect(asked.body).toContain('Your request has been sent to the administrators of a.test.');
    expect((await h.requests.forMessage(virus))[0]).toMatchObject({
      requester: 'digest:dora@a.test',
      recipient: 'dora@a.test',
      note: 'from the digest',
      status: 'pending',
    });
    expect(spam).toBeTruthy();
  });

  it('a split-off message (<id>-2) can be opened, previewed, downloaded and released', async () => {
    const id = `${fakeId()}-2`;
    await h.addMessage({
      id,
      rcpt: ['alice@a.test'],
      subject: 'split copy',
      raw: rawMessage({ to: 'alice@a.test', subject: 'split copy', html: '<p>the split body</p>' }),
    });
    expect((await root.get('/quarantine?q=split%20copy')).body).toContain(`/messages/${id}"`);
    expect((await root.get(`/messages/${id}`)).statusCode).toBe(200);
    expect((await root.get(`/messages/${id}/preview`)).body).toContain('the split body');
    expect((await root.get(`/messages/${id}/raw`)).statusCode).toBe(200);
    expect((await root.post(`/messages/${id}/release`, {}, { csrfFrom: `/messages/${id}` })).statusCode).toBe(303);
    expect(h.released).toContain(id);
    await root.post('/quarantine/bulk', { action: 'delete', id: [`${fakeId()}-n1`] });
    expect((await root.get('/quarantine')).body).toContain('-n1: not found');
  });

  it('a message shared with another tenant shows none of its recipients or their servers’ replies', async () => {
    const id = await h.addMessage({ rcpt: ['alice@a.test', 'hidden@b.test'], subject: 'shared', status: 'delivered' });
    await h.store.recordDelivery(id, 'alice@a.test', 'delivered', '250 2.0.0 Ok: queued as A1');
    await h.store.recordDelivery(id, 'hidden@b.test', 'delivered', '250 Stored as SECRET-B-42');
    await h.store.addEvent(id, 'delivered', 'alice@a.test: 250 2.0.0 Ok: queued as A1; hidden@b.test: 250 Stored as SECRET-B-42');
    await h.store.addEvent(id, 'split', 'hidden@b.test split off into X-2');
    for (const c of [admina, alice]) {
      const page = await c.get(`/messages/${id}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('queued as A1');
      expect(page.body).not.toContain('hidden@b.test');
      expect(page.body).not.toContain('SECRET-B-42');
      expect(page.body).toContain('another recipient split off into X-2');
    }
    const all = await root.get(`/messages/${id}`);
    expect(all.body).toContain('hidden@b.test');
    expect(all.body).toContain('SECRET-B-42');
  });
});
