// DomainStore: hosted domains kept in the metadata database (table in migrations.ts, 0005).
// Contract: settings are stored as the administrator wrote them (the input of the file's
// schema, JSON), after gateway/config/hosted-domains.ts accepted them; every change bumps
// config_version in the same transaction, so a process that sees the version change sees the
// change. Reading back validates again (gateway/domains/sync.ts): a row the running version's
// schema refuses is logged and left out, never half-applied.
import { q, type Sql } from './sql.ts';

export interface StoredDomain {
  name: string;
  /** The domain's settings, as in the file's domains.<name>. */
  settings: Record<string, unknown>;
  /** Policy keys (dotted prefixes, rules/policy-bounds.ts) the domain's admins may change. */
  adminMay: string[];
  updatedAt: number;
  updatedBy: string;
}

export interface DomainStore {
  list(): Promise<StoredDomain[]>;
  get(name: string): Promise<StoredDomain | undefined>;
  /** Adds or replaces a domain. */
  put(d: { name: string; settings: Record<string, unknown>; adminMay: string[]; by: string }): Promise<void>;
  /** false: there was no such domain in the database. */
  remove(name: string): Promise<boolean>;
  /** Changes with every put and remove (of any process). */
  version(): Promise<number>;
}

interface Row {
  name: string;
  settings: string;
  admin_may: string;
  updated_at: number;
  updated_by: string;
}

const toDomain = (r: Row): StoredDomain => ({
  name: r.name,
  settings: JSON.parse(r.settings) as Record<string, unknown>,
  adminMay: JSON.parse(r.admin_may) as string[],
  updatedAt: Number(r.updated_at),
  updatedBy: r.updated_by,
});

export function openDomainStore(sql: Sql, now: () => number = Date.now): DomainStore {
  const bump = (tx: Sql) =>
    tx.run(q`INSERT INTO config_version (id, version) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET version = config_version.version + 1`);
  return {
    async list() {
      return (await sql.all<Row>(q`SELECT name, settings, admin_may, updated_at, updated_by FROM hosted_domains ORDER BY name`)).map(toDomain);
    },
    async get(name) {
      const r = await sql.one<Row>(q`SELECT name, settings, admin_may, updated_at, updated_by FROM hosted_domains WHERE name = ${name.toLowerCase()}`);
      return r && toDomain(r);
    },
    async put(d) {
      await sql.transaction(async (tx) => {
        await tx.run(
          q`INSERT INTO hosted_domains (name, settings, admin_may, updated_at, updated_by)
            VALUES (${d.name.toLowerCase()}, ${JSON.stringify(d.settings)}, ${JSON.stringify(d.adminMay)}, ${now()}, ${d.by})
            ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, admin_may = excluded.admin_may, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
        );
        await bump(tx);
      });
    },
    async remove(name) {
      return sql.transaction(async (tx) => {
        const n = await tx.run(q`DELETE FROM hosted_domains WHERE name = ${name.toLowerCase()}`);
        if (n > 0) await bump(tx);
        return n > 0;
      });
    },
    async version() {
      return Number((await sql.one<{ version: number }>(q`SELECT version FROM config_version WHERE id = 1`))?.version ?? 0);
    },
  };
}
