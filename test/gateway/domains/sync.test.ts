// The database's domains over the file's, swapped into the live config; a file reload stays
// merged; a row the schema refuses is left out, the others apply.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/load.ts';
import { liveConfig } from '../../../gateway/config/live.ts';
import { planReload } from '../../../gateway/config/reload.ts';
import { startDomainSync, type DomainSync } from '../../../gateway/domains/sync.ts';
import { saveDomain } from '../../../gateway/domains/manage.ts';
import { silentLogger } from '../../../gateway/log.ts';
import { openDomainStore, type DomainStore } from '../../../gateway/store/domains.ts';
import { q } from '../../../gateway/store/sql.ts';
import { MINIMAL_CONFIG } from '../../support/config.ts';
import { openTestSql } from '../../support/databases.ts';

const file = (extra = '') => parseConfig(`${MINIMAL_CONFIG}${extra}`, '/etc/mailmoat/mailmoat.yaml');

describe('hosted domains from the database in the live config', () => {
  let db: Awaited<ReturnType<typeof openTestSql>>;
  let store: DomainStore;
  let sync: DomainSync | undefined;
  beforeEach(async () => {
    db = await openTestSql('sqlite');
    store = openDomainStore(db.sql);
  });
  afterEach(async () => {
    sync?.stop();
    await db.close();
  });

  it('the database wins for the domains it holds; the file stays the base, also after a file reload', async () => {
    const live = liveConfig(file());
    sync = await startDomainSync({ store, live, logger: silentLogger(), intervalMs: 60_000 });
    expect(await saveDomain(store, 'example.test', { downstream: [{ host: '10.0.0.9' }] }, [], 't')).toMatchObject({ ok: true });
    expect(await saveDomain(store, 'db.test', { downstream: [{ host: '10.0.0.8' }] }, [], 't')).toMatchObject({ ok: true });
    expect(await sync.refresh()).toBe(true);
    expect(await sync.refresh()).toBe(false); // nothing changed since
    expect(Object.keys(live.config.domains).sort()).toEqual(['db.test', 'example.test']);
    expect(live.config.domains['example.test']!.downstream[0]!.host).toBe('10.0.0.9');

    // SIGHUP: the file's new config becomes the base, and the database's domains stay merged over it.
    const reloaded = file('  file2.test:\n    downstream: [{ host: 10.0.0.7 }]\n');
    live.swap(planReload(live.current, reloaded).config);
    expect(Object.keys(live.config.domains).sort()).toEqual(['db.test', 'example.test', 'file2.test']);
    expect(live.config.domains['example.test']!.downstream[0]!.host).toBe('10.0.0.9');
    expect(Object.keys(sync.fileDomains()).sort()).toEqual(['example.test', 'file2.test']);

    await store.remove('example.test');
    await sync.refresh();
    expect(live.config.domains['example.test']!.downstream[0]!.host).toBe(file().domains['example.test']!.downstream[0]!.host);
  });

  it('a stored row the schema refuses is left out; the others apply', async () => {
    await saveDomain(store, 'good.test', { downstream: [{ host: '10.0.0.8' }] }, [], 't');
    await db.sql.run(
      q`INSERT INTO hosted_domains (name, settings, admin_may, updated_at, updated_by) VALUES ('broken.test', '{"downstream":[]}', '[]', 0, 'x')`,
    );
    const live = liveConfig(file());
    sync = await startDomainSync({ store, live, logger: silentLogger(), intervalMs: 60_000 });
    expect(Object.keys(live.config.domains).sort()).toEqual(['example.test', 'good.test']);
  });
});
