// The MetadataStore contract, run against both adapters (node:sqlite and PostgreSQL): the same
// calls must give the same answers, the compare-and-set must hold under concurrency, and the
// console's searches must keep their tenant scope on either database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScanReport } from '../../../scanners/types.ts';
import { openMetadataStore, type MetadataStore } from '../../../gateway/store/metadata.ts';
import type { Sql } from '../../../gateway/store/sql.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

const report = (o: { score?: number; viruses?: string[] }): ScanReport => ({
  virus: o.viruses ? { status: 'infected', viruses: o.viruses } : { status: 'clean' },
  spam: o.score === undefined ? { status: 'skipped', reason: 'test' } : { status: 'scored', score: o.score, threshold: 5, rules: [] },
});

describe.each(DIALECTS)('MetadataStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: MetadataStore;
  let clock = T0;

  async function receive(id: string, rcptTo: string[], o: { at?: number; from?: string; ip?: string } = {}) {
    await store.recordReceived({
      id,
      receivedAt: o.at ?? T0,
      clientIp: o.ip ?? '192.0.2.1',
      helo: 'mx.sender.test',
      mailFrom: o.from ?? 'bob@sender.test',
      rcptTo,
      size: 100,
    });
  }

  beforeAll(async () => {
    db = await openTestSql(dialect);
    store = openMetadataStore(db.sql, () => clock++);
    // Two tenants, spam and a virus, one message split over both domains.
    await receive('m1', ['alice@a.test'], { at: T0 });
    await store.recordVerdict('m1', { verdict: 'spam', reason: 'score 7.5', report: report({ score: 7.5 }), subject: 'Cheap Pills' });
    await receive('m2', ['Carol@B.test'], { at: T0 + HOUR, from: 'eve@evil.test', ip: '198.51.100.7' });
    await store.recordVerdict('m2', { verdict: 'virus', reason: 'Eicar', report: report({ viruses: ['Eicar-Signature', 'Other.Virus'] }), subject: 'invoice' });
    await store.transition('m2', ['queued'], 'quarantined');
    await receive('m3', ['alice@a.test', 'dave@b.test'], { at: T0 + 2 * HOUR, from: 'eve@evil.test' });
    await store.recordVerdict('m3', { verdict: 'spam', reason: 'score 12', report: report({ score: 12 }), subject: '100% off_sale' });
    await store.recordRefusal({
      at: T0 + 30 * 60_000,
      clientIp: '203.0.113.9',
      helo: 'bad.test',
      mailFrom: 'x@bad.test',
      recipient: 'alice@a.test',
      stage: 'rcpt',
      reply: '554 5.7.1 blocked using zen',
    });
    await store.recordRefusal({
      at: T0 + 40 * 60_000,
      clientIp: '203.0.113.9',
      helo: 'bad.test',
      mailFrom: null,
      recipient: null,
      stage: 'connect',
      reply: '421 4.7.0 too many',
    });
  });
  afterAll(() => db.close());

  it('records a message once and reads it back whole', async () => {
    await receive('m1', ['someone@else.test']); // a second insert of the same id is ignored
    const m = await store.get('m1');
    expect(m).toMatchObject({ id: 'm1', receivedAt: T0, rcptTo: ['alice@a.test'], status: 'queued', verdict: 'spam', subject: 'Cheap Pills' });
    expect(m?.report?.spam).toEqual({ status: 'scored', score: 7.5, threshold: 5, rules: [] });
    expect(await store.get('nope')).toBeUndefined();
  });

  it('group commit: messages accepted at the same moment are recorded in one transaction, each caller answered after it', async () => {
    const own = await openTestSql(dialect);
    try {
      const commits = { transactions: 0, alone: 0 };
      const counted = {
        ...own.sql,
        transaction: ((fn) => (commits.transactions++, own.sql.transaction(fn))) as Sql['transaction'],
        run: ((query) => (commits.alone++, own.sql.run(query))) as Sql['run'],
      };
      const grouped = openMetadataStore(counted);
      const accept = (id: string) =>
        grouped.recordReceived({
          id,
          receivedAt: T0,
          clientIp: '192.0.2.1',
          helo: 'mx.sender.test',
          mailFrom: 'bob@sender.test',
          rcptTo: ['alice@a.test'],
          size: 100,
        });
      const ids = Array.from({ length: 20 }, (_, i) => `gc${i}`);
      await Promise.all(ids.map(accept));
      expect(commits).toEqual({ transactions: 1, alone: 0 });
      for (const id of ids) expect((await grouped.get(id))?.status).toBe('queued');
      // One at a time: a plain insert, no transaction around it.
      await accept('gc-alone');
      expect(commits).toEqual({ transactions: 1, alone: 1 });
      // A commit that fails rejects every caller whose row it held.
      await own.close();
      const failed = await Promise.allSettled(['x1', 'x2', 'x3'].map(accept));
      expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    } finally {
      await own.close().catch(() => {});
    }
  });

  it('transition is a compare-and-set that exactly one of many concurrent callers wins', async () => {
    await receive('cas', ['alice@a.test']);
    await store.transition('cas', ['queued'], 'quarantined');
    const wins = await Promise.all(Array.from({ length: 8 }, () => store.transition('cas', ['quarantined'], 'releasing', '250 ok')));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await store.transition('cas', ['quarantined'], 'deleted')).toBe(false);
    expect(await store.get('cas')).toMatchObject({ status: 'releasing', lastReply: '250 ok' });
    expect(await store.transition('cas', [], 'deleted')).toBe(false);
  });

  it('keeps events in order and never overwrites a delivered recipient', async () => {
    await store.addEvent('m1', 'scanned', 'spam 7.5');
    await store.addEvent('m1', 'tagged', '{Spam?}');
    expect((await store.events('m1')).map((e) => e.kind)).toEqual(['scanned', 'tagged']);
    await store.recordDelivery('m1', 'alice@a.test', 'deferred', '451 try later');
    await store.recordDelivery('m1', 'alice@a.test', 'delivered', '250 ok');
    await store.recordDelivery('m1', 'alice@a.test', 'failed', '550 late failure');
    expect(await store.deliveries('m1')).toEqual([expect.objectContaining({ recipient: 'alice@a.test', outcome: 'delivered', reply: '250 ok' })]);
  });

  it('lists, counts and finds the messages still in flight', async () => {
    expect((await store.list({ limit: 10 })).map((m) => m.id).slice(0, 3)).toEqual(['m3', 'm2', 'm1']);
    expect((await store.list({ status: 'quarantined', limit: 10 })).map((m) => m.id)).toEqual(['m2']);
    expect((await store.inFlight(10)).map((m) => m.id)).toContain('m1');
    expect(await store.countByStatus()).toMatchObject({ queued: 2, quarantined: 1, releasing: 1 });
    await store.setRecipients('m3', ['alice@a.test']);
    expect((await store.get('m3'))?.rcptTo).toEqual(['alice@a.test']);
    await store.setRecipients('m3', ['alice@a.test', 'dave@b.test']);
  });

  it('searches only within a tenant scope, with filters and paging', async () => {
    const a = { domains: ['a.test'], addresses: [] };
    const b = { domains: ['b.test'], addresses: [] };
    const ids = async (s: Parameters<MetadataStore['searchMessages']>[0]) => (await store.searchMessages(s)).rows.map((m) => m.id);
    expect(await ids({ scope: b, limit: 10 })).toEqual(['m3', 'm2']); // Carol@B.test matches b.test case-insensitively
    expect(await ids({ scope: { domains: [], addresses: ['carol@b.test'] }, limit: 10 })).toEqual(['m2']);
    expect(await ids({ scope: { domains: [], addresses: [] }, limit: 10 })).toEqual([]);
    expect(await ids({ scope: a, verdict: 'spam', limit: 10 })).toEqual(['m3', 'm1']);
    expect(await ids({ scope: a, minScore: 10, limit: 10 })).toEqual(['m3']);
    expect(await ids({ scope: a, maxScore: 10, verdict: 'spam', limit: 10 })).toEqual(['m1']);
    expect(await ids({ scope: { all: true }, sender: 'EVE@', limit: 10 })).toEqual(['m3', 'm2']);
    expect(await ids({ scope: { all: true }, q: '100%', limit: 10 })).toEqual(['m3']); // % is literal, not a wildcard
    expect(await ids({ scope: { all: true }, q: 'off_s', limit: 10 })).toEqual(['m3']);
    expect(await ids({ scope: { all: true }, domain: 'B.TEST', limit: 10 })).toEqual(['m3', 'm2']);
    expect(await ids({ scope: { all: true }, recipient: 'dave', limit: 10 })).toEqual(['m3']);
    expect(await ids({ scope: { all: true }, clientIp: '198.51.100.', limit: 10 })).toEqual(['m2']);
    expect(await ids({ scope: { all: true }, statuses: ['quarantined'], limit: 10 })).toEqual(['m2']);
    expect(await ids({ scope: { all: true }, from: T0 + HOUR, to: T0 + 2 * HOUR, limit: 10 })).toEqual(['m2']);
    const page = await store.searchMessages({ scope: a, limit: 1, offset: 1 });
    expect(page.total).toBe(3);
    expect(page.rows.map((m) => m.id)).toEqual(['m1']);
  });

  it('merges refusals into the message log, scoped by their recipient', async () => {
    const all = await store.searchLog({ scope: { all: true }, limit: 20 });
    const refusals = all.rows.filter((r) => r.kind === 'refusal');
    expect(refusals.map((r) => r.detail)).toEqual(['421 4.7.0 too many', '554 5.7.1 blocked using zen']);
    expect(refusals[1]).toMatchObject({ recipients: ['alice@a.test'], status: 'refused', stage: 'rcpt', clientIp: '203.0.113.9' });
    expect(refusals[0]?.recipients).toEqual([]);
    const a = await store.searchLog({ scope: { domains: ['a.test'], addresses: [] }, limit: 20 });
    expect(a.rows.filter((r) => r.kind === 'refusal').map((r) => r.stage)).toEqual(['rcpt']); // the connect refusal has no recipient
    const b = await store.searchLog({ scope: { domains: ['b.test'], addresses: [] }, status: 'refused', limit: 20 });
    expect(b.total).toBe(0);
    const byId = await store.searchLog({ scope: { all: true }, id: refusals[1]!.id, limit: 5 });
    expect(byId.rows.map((r) => r.detail)).toEqual(['554 5.7.1 blocked using zen']);
    const found = await store.searchLog({ scope: { all: true }, q: 'zen', limit: 5 });
    expect(found.rows).toHaveLength(1);
  });

  it('counts for the dashboard: per hour, top senders, top viruses, statuses', async () => {
    const a = { domains: ['a.test'], addresses: [] };
    const hours = await store.hourlyCounts(a, T0);
    expect(hours).toEqual(
      expect.arrayContaining([
        { hour: T0, category: 'spam', n: 1 },
        { hour: T0, category: 'refused', n: 1 },
        { hour: T0 + 2 * HOUR, category: 'spam', n: 1 },
      ]),
    );
    expect(hours.some((h) => h.category === 'virus')).toBe(false); // m2 is b.test's
    expect(await store.topSenders({ all: true }, { since: T0, verdicts: ['spam', 'virus'], limit: 5 })).toEqual([
      { sender: 'eve@evil.test', n: 2 },
      { sender: 'bob@sender.test', n: 1 },
    ]);
    expect(await store.topSenders({ all: true }, { since: T0, verdicts: [], limit: 5 })).toEqual([]);
    expect(await store.topViruses({ all: true }, { since: T0, limit: 5 })).toEqual([
      { name: 'Eicar-Signature', n: 1 },
      { name: 'Other.Virus', n: 1 },
    ]);
    expect(await store.topViruses(a, { since: T0, limit: 5 })).toEqual([]);
    expect(await store.statusCounts({ domains: ['b.test'], addresses: [] })).toEqual({ quarantined: 1, queued: 1 });
  });

  it('keeps the SMTP refusals apart, newest first', async () => {
    const r = await store.refusals({ limit: 1 });
    expect(r).toEqual([
      { at: T0 + 40 * 60_000, clientIp: '203.0.113.9', helo: 'bad.test', mailFrom: null, recipient: null, stage: 'connect', reply: '421 4.7.0 too many' },
    ]);
  });

  it('retention: finds the old messages whose body may be kept, and marks them once', async () => {
    const OLD = T0 - 100 * 24 * HOUR;
    const CUT = T0 - 50 * 24 * HOUR;
    const old = async (id: string, status: 'quarantined' | 'released' | 'delivered' | 'failed', at = OLD) => {
      await receive(id, ['alice@a.test'], { at });
      await store.transition(id, ['queued'], status);
    };
    await old('r-quar', 'quarantined');
    await old('r-rel', 'released', OLD + 1);
    await old('r-del', 'delivered', OLD + 2);
    await old('r-fail', 'failed', OLD + 3);
    await old('r-young', 'quarantined', CUT);
    expect((await store.expiredKept(CUT, 10)).map((m) => m.id)).toEqual(['r-quar', 'r-rel', 'r-fail']);
    expect((await store.expiredKept(CUT, 1)).map((m) => m.id)).toEqual(['r-quar']);
    const wins = await Promise.all(Array.from({ length: 8 }, () => store.addEventOnce('r-rel', 'expired', 'no copy kept')));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect((await store.events('r-rel')).filter((e) => e.kind === 'expired')).toHaveLength(1);
    expect((await store.expiredKept(CUT, 10)).map((m) => m.id)).toEqual(['r-quar', 'r-fail']);
  });

  it('retention: purges final log rows with their events and deliveries, never mail in flight or in quarantine', async () => {
    const OLD = T0 - 100 * 24 * HOUR;
    const CUT = T0 - 50 * 24 * HOUR;
    await receive('p-fly', ['alice@a.test'], { at: OLD });
    await store.transition('p-fly', ['queued'], 'deferred');
    await store.addEvent('r-del', 'delivered', 'alice@a.test: 250 ok');
    await store.recordDelivery('r-del', 'alice@a.test', 'delivered', '250 ok');
    await store.recordRefusal({ at: OLD, clientIp: '203.0.113.9', helo: 'old.test', mailFrom: null, recipient: null, stage: 'connect', reply: '421 old' });
    await store.recordRefusal({
      at: OLD + 1,
      clientIp: '203.0.113.9',
      helo: 'old.test',
      mailFrom: null,
      recipient: null,
      stage: 'connect',
      reply: '421 old too',
    });
    // The limit bounds each kind; oldest first.
    expect(await store.purgeLog(CUT, 1)).toEqual({ messages: 1, refusals: 1 });
    expect(await store.get('r-rel')).toBeUndefined();
    expect(await store.events('r-rel')).toEqual([]);
    expect(await store.purgeLog(CUT, 500)).toEqual({ messages: 2, refusals: 1 });
    expect(await store.get('r-del')).toBeUndefined();
    expect(await store.get('r-fail')).toBeUndefined();
    expect(await store.events('r-del')).toEqual([]);
    expect(await store.deliveries('r-del')).toEqual([]);
    expect(await store.get('p-fly')).toMatchObject({ status: 'deferred' });
    expect(await store.get('r-quar')).toMatchObject({ status: 'quarantined' });
    expect(await store.get('r-young')).toMatchObject({ status: 'quarantined' });
    expect(await store.get('m1')).toBeDefined();
    expect((await store.refusals({ limit: 10 })).map((r) => r.reply)).toEqual(['421 4.7.0 too many', '554 5.7.1 blocked using zen']);
    expect(await store.purgeLog(CUT, 500)).toEqual({ messages: 0, refusals: 0 });
  });
  it('a step writes its status, verdict, recipients, deliveries and events together, or nothing when its compare-and-set fails', async () => {
    await receive('s1', ['a@a.test', 'b@a.test'], { at: T0 + 5 * HOUR });
    const v = { verdict: 'clean', reason: 'ok', report: report({ score: 1 }), subject: 'hello' };
    const refused = await store.step({
      id: 's1',
      from: ['delivering'],
      to: 'delivered',
      lastReply: '250 no',
      verdict: v,
      rcptTo: ['a@a.test'],
      deliveries: [{ recipient: 'a@a.test', outcome: 'delivered', reply: '250 no' }],
      events: [{ kind: 'delivered', detail: 'no' }],
    });
    expect(refused).toBe(false);
    expect(await store.get('s1')).toMatchObject({ status: 'queued', verdict: null, subject: null, lastReply: null, rcptTo: ['a@a.test', 'b@a.test'] });
    expect(await store.deliveries('s1')).toEqual([]);
    expect(await store.events('s1')).toEqual([]);

    expect(
      await store.step({
        id: 's1',
        from: ['queued'],
        to: 'delivering',
        lastReply: '250 yes',
        verdict: v,
        rcptTo: ['a@a.test'],
        events: [{ kind: 'planned', detail: 'yes' }],
      }),
    ).toBe(true);
    expect(await store.get('s1')).toMatchObject({
      status: 'delivering',
      verdict: 'clean',
      reason: 'ok',
      subject: 'hello',
      lastReply: '250 yes',
      rcptTo: ['a@a.test'],
    });
    expect((await store.get('s1'))!.report).toEqual(v.report);
    // Without a move: the verdict is written whatever the status, and the last reply is kept.
    expect(
      await store.step({ id: 's1', verdict: { ...v, verdict: 'spam' }, lastReply: 'ignored', events: [{ kind: 'note', detail: 'n', data: { x: 1 } }] }),
    ).toBe(true);
    expect(await store.get('s1')).toMatchObject({ status: 'delivering', verdict: 'spam', lastReply: '250 yes' });
    expect((await store.events('s1')).map((e) => [e.kind, e.detail, e.data])).toEqual([
      ['planned', 'yes', null],
      ['note', 'n', { x: 1 }],
    ]);
    // An empty `from` never matches.
    expect(await store.step({ id: 's1', from: [], to: 'delivered', events: [{ kind: 'x', detail: 'x' }] })).toBe(false);
    expect(await store.events('s1')).toHaveLength(2);
  });
  it('concurrent steps each get their own answer, and a step that fails fails only its own caller', async () => {
    const ids = ['c1', 'c2', 'c3', 'c4'];
    for (const id of ids) await receive(id, ['a@a.test'], { at: T0 + 6 * HOUR });
    const ev = (detail: string) => [{ kind: 'planned', detail }];
    const outcomes = await Promise.allSettled([
      store.step({ id: 'c1', from: ['queued'], to: 'delivering', events: ev('c1 first') }),
      store.step({ id: 'c2', from: ['delivering'], to: 'delivered', events: ev('c2 refused') }),
      // A statement that fails (kind is NOT NULL): only this caller hears of it.
      store.step({ id: 'c3', from: ['queued'], to: 'delivering', events: [{ kind: null as never, detail: 'bad' }] }),
      store.step({ id: 'c4', from: ['queued'], to: 'delivering', events: ev('c4') }),
    ]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'failed'))).toEqual([true, false, 'failed', true]);
    // Its caller hears the database's own error.
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/NOT NULL|null value/i);
    expect(await Promise.all(ids.map(async (id) => (await store.get(id))!.status))).toEqual(['delivering', 'queued', 'queued', 'delivering']);
    expect((await store.events('c1')).map((e) => e.detail)).toEqual(['c1 first']);
    expect(await store.events('c2')).toEqual([]);
    expect(await store.events('c3')).toEqual([]);
    expect((await store.events('c4')).map((e) => e.detail)).toEqual(['c4']);
  });
});
