// Where the learner's models live (issue 19): in the metadata database, so that every node scores
// with the same models (SQLite on one machine, PostgreSQL for several). A model row carries a
// version: an update is a compare-and-set on it, so two nodes learning at once never lose a step
// (the loser reloads and applies its step again). Snapshots are whole copies, for rollback; learn
// events are kept for the guards (a reporter's rate, distinct reporters agreeing on a message).
import { blobToBuffer, q, type Sql } from './sql.ts';

export interface StoredModel {
  version: number;
  data: Buffer;
}

export interface SnapshotInfo {
  id: number;
  name: string;
  at: number;
  by: string;
  note: string;
  bytes: number;
}

export interface LearnEvent {
  reporter: string;
  /** The domain the report is about; '*' for the global model only (an administrator's or the CLI's). */
  domain: string;
  sha256: string;
  class: 'spam' | 'ham';
  weight: number;
}

export interface LearnerStore {
  /** The current version of each named model that exists. */
  versions(names: readonly string[]): Promise<Map<string, number>>;
  load(name: string): Promise<StoredModel | undefined>;
  /** Writes the model if its version is still `expected` (null: it must not exist yet); false: someone else wrote first. */
  save(name: string, expected: number | null, data: Buffer): Promise<boolean>;
  snapshot(name: string, by: string, note: string, data: Buffer): Promise<number>;
  snapshots(limit: number): Promise<SnapshotInfo[]>;
  snapshotData(id: number): Promise<(SnapshotInfo & { data: Buffer }) | undefined>;
  recordEvent(e: LearnEvent): Promise<void>;
  /** How many learn events this reporter caused since `since` (ms). */
  eventsSince(reporter: string, since: number): Promise<number>;
  /** The reporters who reported this message as this class before, with the weight applied so far. */
  reportsOf(sha256: string, cls: 'spam' | 'ham'): Promise<{ reporters: string[]; weight: number }>;
}

export function openLearnerStore(sql: Sql, now: () => number = Date.now): LearnerStore {
  return {
    async versions(names) {
      const out = new Map<string, number>();
      if (names.length === 0) return out;
      const rows = await sql.all<{ name: string; version: number }>(
        q`SELECT name, version FROM learner_models WHERE name IN (${q.join(names.map((n) => q`${n}`))})`,
      );
      for (const r of rows) out.set(r.name, Number(r.version));
      return out;
    },
    async load(name) {
      const r = await sql.one<{ version: number; data: Uint8Array }>(q`SELECT version, data FROM learner_models WHERE name = ${name}`);
      return r && { version: Number(r.version), data: blobToBuffer(r.data) };
    },
    async save(name, expected, data) {
      if (expected === null) {
        return (
          (await sql.run(
            q`INSERT INTO learner_models (name, version, updated_at, data) VALUES (${name}, 1, ${now()}, ${data}) ON CONFLICT (name) DO NOTHING`,
          )) === 1
        );
      }
      return (
        (await sql.run(
          q`UPDATE learner_models SET version = ${expected + 1}, updated_at = ${now()}, data = ${data} WHERE name = ${name} AND version = ${expected}`,
        )) === 1
      );
    },
    async snapshot(name, by, note, data) {
      const r = await sql.one<{ id: number }>(
        q`INSERT INTO learner_snapshots (name, at, by_whom, note, data) VALUES (${name}, ${now()}, ${by}, ${note.slice(0, 500)}, ${data}) RETURNING id`,
      );
      return Number(r!.id);
    },
    async snapshots(limit) {
      const rows = await sql.all<{ id: number; name: string; at: number; by_whom: string; note: string; bytes: number }>(
        q`SELECT id, name, at, by_whom, note, LENGTH(data) AS bytes FROM learner_snapshots ORDER BY id DESC LIMIT ${limit}`,
      );
      return rows.map((r) => ({ id: Number(r.id), name: r.name, at: Number(r.at), by: r.by_whom, note: r.note, bytes: Number(r.bytes) }));
    },
    async snapshotData(id) {
      const r = await sql.one<{ id: number; name: string; at: number; by_whom: string; note: string; data: Uint8Array }>(
        q`SELECT id, name, at, by_whom, note, data FROM learner_snapshots WHERE id = ${id}`,
      );
      if (!r) return undefined;
      const data = blobToBuffer(r.data);
      return { id: Number(r.id), name: r.name, at: Number(r.at), by: r.by_whom, note: r.note, bytes: data.length, data };
    },
    async recordEvent(e) {
      await sql.run(
        q`INSERT INTO learner_events (at, reporter, domain, sha256, class, weight) VALUES (${now()}, ${e.reporter}, ${e.domain}, ${e.sha256}, ${e.class}, ${e.weight})`,
      );
    },
    async eventsSince(reporter, since) {
      const r = await sql.one<{ n: number }>(q`SELECT COUNT(*) AS n FROM learner_events WHERE reporter = ${reporter} AND at >= ${since}`);
      return Number(r?.n ?? 0);
    },
    async reportsOf(sha256, cls) {
      const rows = await sql.all<{ reporter: string; weight: number }>(
        q`SELECT reporter, weight FROM learner_events WHERE sha256 = ${sha256} AND class = ${cls}`,
      );
      return { reporters: [...new Set(rows.map((r) => r.reporter))], weight: rows.reduce((s, r) => s + Number(r.weight), 0) };
    },
  };
}
