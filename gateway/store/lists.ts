// ListStore: allow and block lists, kept in the gateway's SQLite file so that the console writes
// them and the SMTP front and the scan pipeline read them (a new entry has effect on the next
// message, with no reload). Entries are validated and normalised by rules/lists.ts before they are
// stored; `forRecipient` returns what decideLists needs for one recipient.
//
// Scopes: "user" entries belong to one recipient address, "domain" entries to one hosted domain,
// "global" entries (superadmin only) to every recipient.
import type { DatabaseSync } from 'node:sqlite';
import { parseListEntry, entryText, type ListKind, type ListScope, type ScopedEntry } from '../../rules/lists.ts';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS list_entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),
  scope TEXT NOT NULL CHECK (scope IN ('user', 'domain', 'global')),
  owner TEXT NOT NULL,
  entry TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '',
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (scope, owner, kind, entry)
);
CREATE INDEX IF NOT EXISTS list_entries_owner ON list_entries (owner);
`;

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

export function openListStore(db: DatabaseSync, now: () => number = Date.now): ListStore {
  db.exec(SCHEMA);
  const cols = 'id, kind, scope, owner, entry, comment, created_by, created_at';
  return {
    add(e) {
      if (e.kind !== 'allow' && e.kind !== 'block') return { ok: false, error: 'kind must be allow or block' };
      if (!['user', 'domain', 'global'].includes(e.scope)) return { ok: false, error: 'unknown scope' };
      const parsed = parseListEntry(e.entry);
      if (!parsed.ok) return { ok: false, error: parsed.error };
      const owner = e.scope === 'global' ? '' : e.owner.trim().toLowerCase();
      if (e.scope !== 'global' && owner === '') return { ok: false, error: 'missing owner' };
      const text = entryText(parsed.entry);
      const comment = (e.comment ?? '').replace(/[\x00-\x1f\x7f]/g, ' ').trim().slice(0, 200);
      const r = db
        .prepare(`INSERT OR IGNORE INTO list_entries (kind, scope, owner, entry, comment, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
        .run(e.kind, e.scope, owner, text, comment, e.createdBy, now());
      if (r.changes === 0) return { ok: false, error: `${text} is already on this ${e.kind} list` };
      return { ok: true, row: this.get(Number(r.lastInsertRowid))! };
    },
    get(id) {
      const r = db.prepare(`SELECT ${cols} FROM list_entries WHERE id = ?`).get(id) as Row | undefined;
      return r && toRow(r);
    },
    remove(id) {
      return db.prepare('DELETE FROM list_entries WHERE id = ?').run(id).changes === 1;
    },
    list(f) {
      const where: string[] = [];
      const args: string[] = [];
      if (!f.all) {
        const ors: string[] = [];
        for (const d of (f.domains ?? []).map((x) => x.toLowerCase())) {
          ors.push(`(scope = 'domain' AND owner = ?)`, `(scope = 'user' AND owner LIKE ? ESCAPE '\\')`);
          args.push(d, `%@${d.replace(/[\\%_]/g, (c) => `\\${c}`)}`);
        }
        for (const a of (f.addresses ?? []).map((x) => x.toLowerCase())) (ors.push(`(scope = 'user' AND owner = ?)`), args.push(a));
        if (f.includeGlobal) ors.push(`scope = 'global'`);
        if (ors.length === 0) return [];
        where.push(`(${ors.join(' OR ')})`);
      }
      if (f.kind) (where.push('kind = ?'), args.push(f.kind));
      const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
      return (db.prepare(`SELECT ${cols} FROM list_entries ${w} ORDER BY scope, owner, kind, entry`).all(...args) as unknown as Row[]).map(toRow);
    },
    forRecipient(address) {
      const a = address.toLowerCase();
      const domain = a.slice(a.lastIndexOf('@') + 1);
      const rows = db
        .prepare(
          `SELECT kind, scope, entry FROM list_entries
           WHERE (scope = 'user' AND owner = ?) OR (scope = 'domain' AND owner = ?) OR scope = 'global'`,
        )
        .all(a, domain) as unknown as { kind: ListKind; scope: ListScope; entry: string }[];
      return rows.map((r) => ({ kind: r.kind, scope: r.scope, text: r.entry }));
    },
  };
}
