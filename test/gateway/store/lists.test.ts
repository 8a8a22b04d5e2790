// The ListStore contract on both adapters (node:sqlite and PostgreSQL): entries are validated and
// normalised, a duplicate is refused with a clear error, `list` keeps to its scope and
// `forRecipient` gives a recipient its own, its domain's and the global entries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openListStore, type ListStore } from '../../../gateway/store/lists.ts';
import { DIALECTS, openTestSql } from '../../support/databases.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

describe.each(DIALECTS)('ListStore on %s', (dialect) => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: ListStore;
  let clock = T0;

  beforeAll(async () => {
    db = await openTestSql(dialect);
    store = openListStore(db.sql, () => clock);
  });
  afterAll(() => db.close());

  async function add(kind: 'allow' | 'block', scope: 'user' | 'domain' | 'global', owner: string, entry: string) {
    const r = await store.add({ kind, scope, owner, entry, createdBy: 'admin' });
    if (!r.ok) throw new Error(r.error);
    return r.row;
  }

  it('adds a normalised entry and reads it back', async () => {
    clock = T0 + 5;
    const r = await store.add({
      kind: 'block',
      scope: 'user',
      owner: '  Alice@Add.Test ',
      entry: ' Spammer@Evil.TEST ',
      comment: 'line\none\ttab\x7f ' + 'x'.repeat(300),
      createdBy: 'root',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.row).toMatchObject({ kind: 'block', scope: 'user', owner: 'alice@add.test', text: 'spammer@evil.test', createdBy: 'root', createdAt: T0 + 5 });
    expect(typeof r.row.id).toBe('number');
    expect(r.row.comment).toMatch(/^line one tab {2}x+$/);
    expect(r.row.comment).toHaveLength(200);
    expect(await store.get(r.row.id)).toEqual(r.row);
    // the canonical forms of the other entry types
    expect((await add('allow', 'domain', 'add.test', '*@Partner.Test')).text).toBe('*@partner.test');
    expect((await add('allow', 'domain', 'add.test', '192.0.2.0/24')).text).toBe('192.0.2.0/24');
    expect((await add('allow', 'domain', 'add.test', 'good.test')).text).toBe('good.test');
  });

  it('refuses a duplicate entry with a clear error, but not the same text on another list', async () => {
    await add('block', 'domain', 'dup.test', 'evil.test');
    expect(await store.add({ kind: 'block', scope: 'domain', owner: 'DUP.test', entry: 'EVIL.test', createdBy: 'x' })).toEqual({
      ok: false,
      error: 'evil.test is already on this block list',
    });
    await add('allow', 'domain', 'dup.test', 'evil.test'); // other kind
    await add('block', 'domain', 'other-dup.test', 'evil.test'); // other owner
    await add('block', 'user', 'bob@dup.test', 'evil.test'); // other scope
    await add('block', 'global', '', '198.51.100.9');
    expect(await store.add({ kind: 'block', scope: 'global', owner: 'ignored.test', entry: '198.51.100.9', createdBy: 'x' })).toEqual({
      ok: false,
      error: '198.51.100.9 is already on this block list',
    });
    const rows = await store.list({ domains: ['dup.test'] });
    expect(rows.map((r) => `${r.scope}:${r.owner}:${r.kind}:${r.text}`)).toEqual([
      'domain:dup.test:allow:evil.test',
      'domain:dup.test:block:evil.test',
      'user:bob@dup.test:block:evil.test',
    ]);
  });

  it('refuses invalid input', async () => {
    const base = { kind: 'block' as const, scope: 'user' as const, owner: 'a@inv.test', entry: 'evil.test', createdBy: 'x' };
    expect(await store.add({ ...base, kind: 'deny' as never })).toEqual({ ok: false, error: 'kind must be allow or block' });
    expect(await store.add({ ...base, scope: 'planet' as never })).toEqual({ ok: false, error: 'unknown scope' });
    expect(await store.add({ ...base, owner: '  ' })).toEqual({ ok: false, error: 'missing owner' });
    expect(await store.add({ ...base, scope: 'domain', owner: '' })).toEqual({ ok: false, error: 'missing owner' });
    const bad = await store.add({ ...base, entry: 'not a domain' });
    expect(bad.ok).toBe(false);
    expect(await store.add({ ...base, entry: '' })).toEqual({ ok: false, error: 'empty entry' });
    expect(await store.list({ addresses: ['a@inv.test'] })).toEqual([]);
  });

  it('a global entry has no owner', async () => {
    const row = await add('allow', 'global', 'whatever.test', 'trusted-global.test');
    expect(row.owner).toBe('');
  });

  it('gets and removes by id', async () => {
    const row = await add('block', 'user', 'rm@rm.test', 'rm-evil.test');
    expect(await store.get(row.id)).toEqual(row);
    expect(await store.remove(row.id)).toBe(true);
    expect(await store.get(row.id)).toBeUndefined();
    expect(await store.remove(row.id)).toBe(false);
    expect(await store.get(999_999)).toBeUndefined();
    // the same entry can be added again after removal
    expect((await add('block', 'user', 'rm@rm.test', 'rm-evil.test')).id).not.toBe(row.id);
  });

  it('list keeps to its scope: domains, their users, addresses, global, kind', async () => {
    await add('block', 'domain', 'sa.test', 'x1.test');
    await add('allow', 'domain', 'sa.test', 'x2.test');
    await add('block', 'user', 'carol@sa.test', 'x3.test');
    await add('block', 'user', 'Dave@SA.test', 'x4.test');
    await add('block', 'user', 'erin@sub.sa.test', 'x5.test'); // a subdomain is not the domain
    await add('block', 'domain', 'sb.test', 'x6.test');
    await add('block', 'user', 'frank@sb.test', 'x7.test');
    await add('block', 'user', 'carol@sa.testx', 'x8.test'); // the domain must end the owner

    const texts = (rows: { text: string }[]) => rows.map((r) => r.text);
    expect(texts(await store.list({ domains: ['sa.test'] }))).toEqual(['x2.test', 'x1.test', 'x3.test', 'x4.test']);
    expect(texts(await store.list({ domains: ['SA.Test'] }))).toEqual(['x2.test', 'x1.test', 'x3.test', 'x4.test']);
    expect(texts(await store.list({ domains: ['sa.test'], kind: 'allow' }))).toEqual(['x2.test']);
    expect(texts(await store.list({ addresses: ['Frank@SB.test'] }))).toEqual(['x7.test']);
    expect(texts(await store.list({ domains: ['sa.test'], addresses: ['frank@sb.test'] }))).toEqual(['x2.test', 'x1.test', 'x3.test', 'x4.test', 'x7.test']);
    // LIKE wildcards in a domain are literal
    expect(await store.list({ domains: ['%'] })).toEqual([]);
    expect(await store.list({ domains: ['s_.test'] })).toEqual([]);
    // nothing to see
    expect(await store.list({})).toEqual([]);
    expect(await store.list({ domains: [], addresses: [] })).toEqual([]);
    // global rows only with includeGlobal
    const withGlobal = await store.list({ addresses: ['frank@sb.test'], includeGlobal: true });
    expect(withGlobal.some((r) => r.scope === 'global')).toBe(true);
    expect(withGlobal.every((r) => r.scope === 'global' || r.owner === 'frank@sb.test')).toBe(true);
    expect((await store.list({ includeGlobal: true })).every((r) => r.scope === 'global')).toBe(true);
    expect((await store.list({ includeGlobal: true, kind: 'block' })).every((r) => r.scope === 'global' && r.kind === 'block')).toBe(true);
  });

  it('list all: every row, ordered by scope, owner, kind, entry in byte order', async () => {
    await add('block', 'domain', 'a-b.test', 'o1.test');
    await add('block', 'domain', 'ab.test', 'o2.test');
    await add('block', 'domain', 'a.test', 'o3.test');
    await add('block', 'domain', 'a.test', '*@o3.test');
    const all = await store.list({ all: true });
    const key = (r: { scope: string; owner: string; kind: string; text: string }) => [r.scope, r.owner, r.kind, r.text];
    const sorted = [...all].sort((x, y) => {
      const a = key(x);
      const b = key(y);
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
      return 0;
    });
    expect(all).toEqual(sorted);
    expect(all.filter((r) => ['a-b.test', 'a.test', 'ab.test'].includes(r.owner)).map((r) => `${r.owner} ${r.text}`)).toEqual([
      'a-b.test o1.test',
      'a.test *@o3.test',
      'a.test o3.test',
      'ab.test o2.test',
    ]);
    expect(all.length).toBeGreaterThan(15);
    expect((await store.list({ all: true, kind: 'allow' })).every((r) => r.kind === 'allow')).toBe(true);
  });

  it('forRecipient gives the recipient its own, its domain and the global entries', async () => {
    await add('block', 'user', 'gina@fr.test', 'u-block.test');
    await add('allow', 'user', 'gina@fr.test', 'u-allow.test');
    await add('block', 'user', 'hank@fr.test', 'other-user.test');
    await add('block', 'domain', 'fr.test', 'd-block.test');
    await add('block', 'domain', 'other-fr.test', 'other-domain.test');
    const mine = await store.forRecipient('Gina@FR.test');
    const texts = mine.map((e) => `${e.scope}:${e.kind}:${e.text}`);
    expect(texts).toEqual(
      expect.arrayContaining([
        'user:block:u-block.test',
        'user:allow:u-allow.test',
        'domain:block:d-block.test',
        'global:block:198.51.100.9',
        'global:allow:trusted-global.test',
      ]),
    );
    expect(texts.some((t) => t.includes('other-'))).toBe(false);
    expect(mine.filter((e) => e.scope === 'global')).toHaveLength((await store.list({ includeGlobal: true })).length);
    expect(mine.filter((e) => e.scope === 'user')).toHaveLength(2);
    expect(mine.filter((e) => e.scope === 'domain')).toHaveLength(1);
    for (const e of mine) expect(Object.keys(e).sort()).toEqual(['kind', 'scope', 'text']);
    // a recipient with nothing of its own still gets the global entries
    expect((await store.forRecipient('nobody@nowhere.test')).every((e) => e.scope === 'global')).toBe(true);
    expect((await store.forRecipient('nobody@nowhere.test')).length).toBeGreaterThan(0);
  });
});
