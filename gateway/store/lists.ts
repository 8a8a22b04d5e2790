// ListStore: allow and block lists, kept in the gateway's metadata database (SQLite or PostgreSQL
// through sql.ts; the table is in migrations.ts) so that the console writes them and the SMTP front
// and the scan pipeline read them (a new entry has effect on the next message, with no reload).
// Entries are validated and normalised by rules/lists.ts before they are stored; `forRecipient`
// returns what decideLists needs for one recipient.
//
// Scopes: "user" entries belong to one recipient address, "domain" entries to one hosted domain,
// "global" entries (superadmin only) to every recipient.
import { parseListEntry, entryText, type ListKind, type ListScope, type ScopedEntry } from '../../rules/lists.ts';
import { q, type Query, type Sql } from './sql.ts';

export interface ListRow {
  id: number;
  kind: ListKind;
  scope: ListScope;
  /** The recipient address (user scope), the domain (domain scope) or "" (global). */
  owner: string;
  text: string;
  comment: string;
  createdBy: string;
  createdAt: number;
}

export type AddResult = { ok: true; row: ListRow } | { ok: false; error: string };

export interface ListStore {
  add(e: { kind: ListKind; scope: ListScope; owner: string; entry: string; comment?: string; createdBy: string }): Promise<AddResult>;
  get(id: number): Promise<ListRow | undefined>;
  remove(id: number): Promise<boolean>;
  /**
   * Rows a scope may see: `all`, or the domain lists of `domains` and the user lists of addresses
   * in them, the user lists of `addresses`, and with `includeGlobal` the global rows.
   */
  list(f: { domains?: string[]; addresses?: string[]; includeGlobal?: boolean; kind?: ListKind; all?: boolean }): Promise<ListRow[]>;
  /** Every entry that applies to mail for this recipient: its own, its domain's and the global ones. */
  forRecipient(address: string): Promise<ScopedEntry[]>;
}

interface Row {
  id: number;
  kind: ListKind;
  scope: ListScope;
  owner: string;
  entry: string;
  comment: string;
  created_by: string;
  created_at: number;
}

const toRow = (r: Row): ListRow => ({
  id: r.id,
  kind: r.kind,
  scope: r.scope,
  owner: r.owner,
  text: r.entry,
  comment: r.comment,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

export function openListStore(sql: Sql, now: () => number = Date.now): ListStore {
  const cols = q`id, kind, scope, owner, entry, comment, created_by, created_at`;
  // Byte order for text, as SQLite sorts it, whatever the PostgreSQL database's collation.
  const byBytes = (col: string) => (sql.dialect === 'postgres' ? q.raw(`${col} COLLATE "C"`) : q.raw(col));
  return {
    async add(e) {
      if (e.kind !== 'allow' && e.kind !== 'block') return { ok: false, error: 'kind must be allow or block' };
      if (!['user', 'domain', 'global'].includes(e.scope)) return { ok: false, error: 'unknown scope' };
      const parsed = parseListEntry(e.entry);
      if (!parsed.ok) return { ok: false, error: parsed.error };
      const owner = e.scope === 'global' ? '' : e.owner.trim().toLowerCase();
      if (e.scope !== 'global' && owner === '') return { ok: false, error: 'missing owner' };
      const text = entryText(parsed.entry);
      const comment = (e.comment ?? '')
        .replace(/[\x00-\x1f\x7f]/g, ' ')
        .trim()
        .slice(0, 200);
      const r = await sql.one<Row>(
        q`INSERT INTO list_entries (kind, scope, owner, entry, comment, created_by, created_at)
          VALUES (${e.kind}, ${e.scope}, ${owner}, ${text}, ${comment}, ${e.createdBy}, ${now()})
          ON CONFLICT (scope, owner, kind, entry) DO NOTHING
          RETURNING ${cols}`,
      );
      if (!r) return { ok: false, error: `${text} is already on this ${e.kind} list` };
      return { ok: true, row: toRow(r) };
    },
    async get(id) {
      const r = await sql.one<Row>(q`SELECT ${cols} FROM list_entries WHERE id = ${id}`);
      return r && toRow(r);
    },
    async remove(id) {
      return (await sql.run(q`DELETE FROM list_entries WHERE id = ${id}`)) === 1;
    },
    async list(f) {
      const where: Query[] = [];
      if (!f.all) {
        const ors: Query[] = [];
        for (const d of (f.domains ?? []).map((x) => x.toLowerCase())) {
          const pattern = `%@${d.replace(/[\\%_]/g, (c) => `\\${c}`)}`;
          ors.push(q`(scope = 'domain' AND owner = ${d})`, q`(scope = 'user' AND lower(owner) LIKE ${pattern} ESCAPE '\\')`);
        }
        for (const a of (f.addresses ?? []).map((x) => x.toLowerCase())) ors.push(q`(scope = 'user' AND owner = ${a})`);
        if (f.includeGlobal) ors.push(q`scope = 'global'`);
        if (ors.length === 0) return [];
        where.push(q`(${q.join(ors, q` OR `)})`);
      }
      if (f.kind) where.push(q`kind = ${f.kind}`);
      const w = where.length ? q`WHERE ${q.join(where, q` AND `)}` : q``;
      const rows = await sql.all<Row>(
        q`SELECT ${cols} FROM list_entries ${w} ORDER BY ${byBytes('scope')}, ${byBytes('owner')}, ${byBytes('kind')}, ${byBytes('entry')}`,
      );
      return rows.map(toRow);
    },
    async forRecipient(address) {
      const a = address.toLowerCase();
      const domain = a.slice(a.lastIndexOf('@') + 1);
      const rows = await sql.all<{ kind: ListKind; scope: ListScope; entry: string }>(
        q`SELECT kind, scope, entry FROM list_entries
          WHERE (scope = 'user' AND owner = ${a}) OR (scope = 'domain' AND owner = ${domain}) OR scope = 'global'
          ORDER BY id`,
      );
      return rows.map((r) => ({ kind: r.kind, scope: r.scope, text: r.entry }));
    },
  };
}
