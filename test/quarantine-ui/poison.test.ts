// Messages held as poison in the console: the message log and the message page show the state to
// everyone who can see the message; a domain admin (for all its recipients) or the superadmin
// processes it once more or deletes it; an end user cannot, and another tenant gets a 404.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startHarness, type Harness } from './harness.ts';
import { deletePoison, releasePoison, POISON_EVENT } from '../../gateway/poison.ts';
import { Spool } from '../../gateway/spool/spool.ts';
import { silentLogger } from '../../gateway/log.ts';
import type { JobQueue, QueueName } from '../../gateway/store/queue.ts';

describe('a message held as poison in the console', () => {
  let h: Harness;
  const enqueued: { queue: QueueName; id: string }[] = [];
  const hold = async (rcpt: string[]) => {
    const id = await h.addMessage({ rcpt, status: 'delivered', subject: 'crashes the scan' });
    await h.store.transition(id, ['delivered'], 'held', 'poison: 3 faults');
    await h.store.addEvent(id, POISON_EVENT, 'held after its scan job faulted 3 times; was queued; 3 faults; the last: unexpected error: boom');
    return id;
  };

  beforeAll(async () => {
    h = await startHarness();
    // The queue is Redis in production; here only what a release asks of it is recorded.
    const queue = {
      hasJob: async () => false,
      removeJob: async () => true,
      enqueue: async (queue: QueueName, id: string) => void enqueued.push({ queue, id }),
    } as unknown as JobQueue;
    const spool = new Spool(path.join(h.dir, 'spool'));
    await spool.init();
    const deps = { store: h.store, queue, spool, logger: silentLogger() };
    h.deps.poison = { release: (id, by) => releasePoison(deps, id, by), remove: (id, by) => deletePoison(deps, id, by) };
    await h.addAccount('root', 'superadmin');
    await h.addAccount('admina', 'domainadmin', { domains: ['a.test'] });
    await h.addAccount('adminb', 'domainadmin', { domains: ['b.test'] });
    await h.addAccount('alice', 'user', { addresses: ['alice@a.test'] });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is shown as "held: poison" and a domain admin processes it once more', async () => {
    const id = await hold(['alice@a.test']);
    const a = new Client(h.app);
    await a.login('admina');
    expect((await a.get(`/log?id=${id}`)).body).toContain('held: poison');
    const page = await a.get(`/messages/${id}`);
    expect(page.body).toContain('Held as poison');
    expect(page.body).toContain(`/messages/${id}/poison-release`);
    expect(page.body).toContain('unexpected error: boom'); // the error, in its history

    const res = await a.post(`/messages/${id}/poison-release`, {}, { csrfFrom: `/messages/${id}` });
    expect(res.statusCode).toBe(303);
    expect((await h.store.get(id))?.status).toBe('queued');
    expect(enqueued).toContainEqual({ queue: 'scan', id });
    expect((await a.get(`/messages/${id}`)).body).toContain('Processed once more');
  });

  it('lets the superadmin delete it, keeps end users to looking, and hides it from other tenants', async () => {
    const id = await hold(['alice@a.test']);
    const alice = new Client(h.app);
    await alice.login('alice');
    const seen = await alice.get(`/messages/${id}`);
    expect(seen.body).toContain('held: poison');
    expect(seen.body).not.toContain('/poison-release');
    await alice.post(`/messages/${id}/poison-release`, {}, { csrfFrom: `/messages/${id}` });
    expect((await h.store.get(id))?.status).toBe('held');

    const b = new Client(h.app);
    await b.login('adminb');
    expect((await b.post(`/messages/${id}/poison-delete`, {}, { csrfFrom: '/log' })).statusCode).toBe(404);
    expect((await h.store.get(id))?.status).toBe('held');

    const root = new Client(h.app);
    await root.login('root');
    await root.post(`/messages/${id}/poison-delete`, {}, { csrfFrom: `/messages/${id}` });
    expect((await h.store.get(id))?.status).toBe('deleted');
    expect((await h.audit.list({ messageId: id, limit: 20 })).rows.map((r) => `${r.action}:${r.outcome}`)).toEqual(
      expect.arrayContaining(['poison-release:denied', 'poison-delete:denied', 'poison-delete:ok']),
    );
  });
});
