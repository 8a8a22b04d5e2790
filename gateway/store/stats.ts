// StatsStore: the numbers over time (gateway/stats.ts counts them, the console's Numbers page and
// the daily summary read them). One row per (domain, hour, kind) with a count. Contract: `add`
// ADDS to the stored counts (INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n), so any
// number of processes on any number of machines can write the same rows without losing counts;
// rows are written in key order so that two PostgreSQL writers never deadlock on each other.
// Rows older than ROLLUP_AFTER_MS are rolled up into one row per day (at the day's 00:00 hour):
// the roll-up deletes with RETURNING before it adds, so of two nodes rolling up at once only the
// one whose DELETE took a row adds it. Everything older than KEEP_MS goes.
import { q, type Sql } from './sql.ts';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** Hourly rows are kept for a week and a day (the 7-day view is by hour), then rolled up per day. */
export const ROLLUP_AFTER_MS = 8 * DAY_MS;
/** Daily rows are kept 400 days: a year back, and the same month last year. */
export const KEEP_MS = 400 * DAY_MS;

/**
 * What is counted, per message and hosted recipient domain (a message to two people at a.test
 * counts once for a.test): received (accepted with a 250), refused (at SMTP time, one per
 * refusal), spam / virus (the verdict), quarantined (held), delivered / deferred / failed (what
 * the downstream answered: deferred once per message, at its first deferral).
 */
export const STAT_KINDS = ['received', 'refused', 'spam', 'virus', 'quarantined', 'delivered', 'deferred', 'failed'] as const;
export type StatKind = (typeof STAT_KINDS)[number];

export interface StatRow {
  domain: string;
  /** Start of the hour (or of the day, for rolled-up rows), epoch ms UTC. */
  hour: number;
  kind: StatKind;
  n: number;
}

/** Whose numbers: every domain ('' included), or these domains only. */
export type StatsScope = { all: true } | { all?: false; domains: string[] };

export interface StatsStore {
  /** Adds the counts in one transaction. */
  add(rows: StatRow[]): Promise<void>;
  /** Summed counts in [since, until), per bucket of `bucketMs` (aligned to UTC), domain and kind. */
  series(scope: StatsScope, o: { since: number; until: number; bucketMs: number }): Promise<StatRow[]>;
  /** Rolls hourly rows before `now - ROLLUP_AFTER_MS` up per day, and deletes rows before `now - KEEP_MS`. */
  compact(now: number): Promise<{ rolledUp: number; purged: number }>;
  /** Claims the daily summary of a day ("2026-12-04"); false when another process already did. */
  claimSummaryRun(day: string): Promise<boolean>;
  /** The accounts that turned the daily summary off. */
  summaryOptOuts(): Promise<Set<number>>;
  setSummaryOptOut(accountId: number, off: boolean): Promise<void>;
}

/** Rows per INSERT statement (both databases bound the number of parameters). */
const SLICE = 200;

export function openStatsStore(sql: Sql, now: () => number = Date.now): StatsStore {
  async function addIn(tx: Sql, rows: StatRow[]): Promise<void> {
    const sorted = [...rows].sort((a, b) => a.domain.localeCompare(b.domain) || a.hour - b.hour || a.kind.localeCompare(b.kind));
    for (let i = 0; i < sorted.length; i += SLICE) {
      const values = sorted.slice(i, i + SLICE).map((r) => q`(${r.domain}, ${r.hour}, ${r.kind}, ${r.n})`);
      await tx.run(q`INSERT INTO stats_hourly (domain, hour, kind, n) VALUES ${q.join(values)}
        ON CONFLICT (domain, hour, kind) DO UPDATE SET n = stats_hourly.n + excluded.n`);
    }
  }
  return {
    async add(rows) {
      if (rows.length === 0) return;
      await sql.transaction((tx) => addIn(tx, rows));
    },
    async series(scope, o) {
      if (!scope.all && scope.domains.length === 0) return [];
      const where = scope.all ? q`1 = 1` : q`domain IN (${q.join(scope.domains.map((d) => d.toLowerCase()))})`;
      // node:sqlite binds a JS number as REAL: the cast keeps the division an integer one.
      const bucket = q`CAST(${o.bucketMs} AS BIGINT)`;
      return sql.all<StatRow>(q`SELECT domain, (hour / ${bucket}) * ${bucket} AS hour, kind, CAST(sum(n) AS BIGINT) AS n
        FROM stats_hourly WHERE hour >= ${o.since} AND hour < ${o.until} AND ${where}
        GROUP BY 1, 2, 3 ORDER BY 2, 1, 3`);
    },
    async compact(at) {
      const cutoff = Math.floor((at - ROLLUP_AFTER_MS) / DAY_MS) * DAY_MS;
      return sql.transaction(async (tx) => {
        const taken = await tx.all<StatRow>(
          q`DELETE FROM stats_hourly WHERE hour < ${cutoff} AND hour % CAST(${DAY_MS} AS BIGINT) <> 0 RETURNING domain, hour, kind, n`,
        );
        const days = new Map<string, StatRow>();
        for (const r of taken) {
          const day = Math.floor(Number(r.hour) / DAY_MS) * DAY_MS;
          const key = `${r.domain}\n${day}\n${r.kind}`;
          const row = days.get(key) ?? { domain: r.domain, hour: day, kind: r.kind, n: 0 };
          row.n += Number(r.n);
          days.set(key, row);
        }
        await addIn(tx, [...days.values()]);
        const purged = await tx.run(q`DELETE FROM stats_hourly WHERE hour < ${at - KEEP_MS}`);
        return { rolledUp: taken.length, purged };
      });
    },
    async claimSummaryRun(day) {
      return (await sql.run(q`INSERT INTO daily_summary_runs (day, at) VALUES (${day}, ${now()}) ON CONFLICT (day) DO NOTHING`)) === 1;
    },
    async summaryOptOuts() {
      return new Set((await sql.all<{ account_id: number }>(q`SELECT account_id FROM daily_summary_optout`)).map((r) => Number(r.account_id)));
    },
    async setSummaryOptOut(accountId, off) {
      await sql.run(
        off
          ? q`INSERT INTO daily_summary_optout (account_id, at) VALUES (${accountId}, ${now()}) ON CONFLICT (account_id) DO NOTHING`
          : q`DELETE FROM daily_summary_optout WHERE account_id = ${accountId}`,
      );
    },
  };
}
