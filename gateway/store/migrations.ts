// The metadata schema, as explicit, numbered migrations (Kysely's Migrator records them in the
// kysely_migration table and locks while it runs, so two nodes starting at once cannot both apply
// one). Each migration is written once with a few per-dialect types.
//
// Who applies them: on one machine (SQLite) every role applies pending migrations at start; on
// PostgreSQL only `mailmoat migrate` does, and a role refuses to start on an older schema, so a
// rolling upgrade of several machines is an explicit step (README "Running several machines").
import { sql as q, type Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';
import type { Dialect, Sql } from './sql.ts';

interface Types {
  /** An auto-numbered primary key. */
  id: string;
  /** Integers, epoch milliseconds included (64-bit in PostgreSQL). */
  int: string;
  blob: string;
}

const TYPES: Record<Dialect, Types> = {
  sqlite: { id: 'INTEGER PRIMARY KEY AUTOINCREMENT', int: 'INTEGER', blob: 'BLOB' },
  postgres: { id: 'BIGSERIAL PRIMARY KEY', int: 'BIGINT', blob: 'BYTEA' },
};

const MIGRATIONS: { name: string; statements: (t: Types, dialect: Dialect) => string[] }[] = [
  {
    // The tables of the single-machine gateway as of issue 8 (`IF NOT EXISTS`: a SQLite file made
    // before migrations existed is adopted as it is).
    name: '0001_initial',
    statements: (t, dialect) => [
      `CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        received_at ${t.int} NOT NULL,
        client_ip TEXT NOT NULL,
        helo TEXT NOT NULL,
        mail_from TEXT NOT NULL,
        rcpt_to TEXT NOT NULL,
        size ${t.int} NOT NULL,
        subject TEXT,
        status TEXT NOT NULL,
        verdict TEXT,
        reason TEXT,
        report TEXT,
        last_reply TEXT,
        updated_at ${t.int} NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS messages_status ON messages (status, received_at)',
      'CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at)',
      `CREATE TABLE IF NOT EXISTS message_events (
        seq ${t.id},
        message_id TEXT NOT NULL,
        at ${t.int} NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS message_events_id ON message_events (message_id, seq)',
      `CREATE TABLE IF NOT EXISTS deliveries (
        message_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reply TEXT NOT NULL,
        at ${t.int} NOT NULL,
        PRIMARY KEY (message_id, recipient)
      )`,
      `CREATE TABLE IF NOT EXISTS smtp_refusals (
        seq ${t.id},
        at ${t.int} NOT NULL,
        client_ip TEXT NOT NULL,
        helo TEXT NOT NULL,
        mail_from TEXT,
        recipient TEXT,
        stage TEXT NOT NULL,
        reply TEXT NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS smtp_refusals_at ON smtp_refusals (at)',
      `CREATE TABLE IF NOT EXISTS list_entries (
        id ${t.id},
        kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),
        scope TEXT NOT NULL CHECK (scope IN ('user', 'domain', 'global')),
        owner TEXT NOT NULL,
        entry TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL,
        created_at ${t.int} NOT NULL,
        UNIQUE (scope, owner, kind, entry)
      )`,
      'CREATE INDEX IF NOT EXISTS list_entries_owner ON list_entries (owner)',
      `CREATE TABLE IF NOT EXISTS console_accounts (
        id ${t.id},
        username TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        domains TEXT NOT NULL DEFAULT '[]',
        addresses TEXT NOT NULL DEFAULT '[]',
        password_hash TEXT NOT NULL,
        disabled ${t.int} NOT NULL DEFAULT 0,
        created_at ${t.int} NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS console_sessions (
        id TEXT PRIMARY KEY,
        account_id ${t.int} NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
        created_at ${t.int} NOT NULL,
        expires_at ${t.int} NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS console_sessions_account ON console_sessions (account_id)',
      `CREATE TABLE IF NOT EXISTS console_login_failures (
        username TEXT NOT NULL,
        at ${t.int} NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS console_login_failures_name ON console_login_failures (username, at)',
      `CREATE TABLE IF NOT EXISTS console_audit (
        seq ${t.id},
        at ${t.int} NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        message_id TEXT,
        target TEXT,
        ip TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS console_audit_message ON console_audit (message_id, seq)',
      'CREATE INDEX IF NOT EXISTS console_audit_actor ON console_audit (actor, seq)',
      `CREATE TABLE IF NOT EXISTS learn_log (
        seq ${t.id},
        at ${t.int} NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        message_id TEXT,
        name TEXT,
        sha256 TEXT NOT NULL,
        size ${t.int} NOT NULL,
        class TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS learn_log_sha ON learn_log (sha256, class, outcome)',
      `CREATE TABLE IF NOT EXISTS digest_tokens (
        id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        created_at ${t.int} NOT NULL,
        expires_at ${t.int} NOT NULL,
        used_at ${t.int}
      )`,
      'CREATE INDEX IF NOT EXISTS digest_tokens_rcpt ON digest_tokens (recipient, message_id)',
      `CREATE TABLE IF NOT EXISTS digest_runs (
        day TEXT PRIMARY KEY,
        at ${t.int} NOT NULL
      )`,
      // SQLite gets mm_domain from the connection (sql.ts); PostgreSQL keeps it in the schema.
      ...(dialect === 'postgres'
        ? [
            `CREATE OR REPLACE FUNCTION mm_domain(address TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS
             $$ SELECT regexp_replace(lower(substring(address FROM '[^@]*$')), '\\.$', '') $$`,
          ]
        : []),
    ],
  },
  {
    // Issue 9: message files kept in the database, for several machines: the spool's shared copy
    // (a message survives the loss of the machine that accepted it) and quarantined bodies.
    name: '0002_shared_files',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS spool_files (
        message_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('body', 'output', 'envelope')),
        data ${t.blob} NOT NULL,
        stored_at ${t.int} NOT NULL,
        PRIMARY KEY (message_id, kind)
      )`,
      `CREATE TABLE IF NOT EXISTS quarantine_bodies (
        message_id TEXT PRIMARY KEY,
        data ${t.blob} NOT NULL,
        stored_at ${t.int} NOT NULL
      )`,
    ],
  },
  {
    // Release requests: an end user asks the domain's admins to release a message they may not
    // release themselves (rules/release-rights.ts). At most one open request per message.
    // Failed logins are also counted per client address, so that failures from elsewhere cannot
    // lock the real user out.
    name: '0003_release_requests',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS release_requests (
        id ${t.id},
        message_id TEXT NOT NULL,
        requester TEXT NOT NULL,
        recipient TEXT NOT NULL,
        domain TEXT NOT NULL,
        note TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
        created_at ${t.int} NOT NULL,
        decided_at ${t.int},
        decided_by TEXT,
        answer TEXT NOT NULL DEFAULT ''
      )`,
      'CREATE INDEX IF NOT EXISTS release_requests_domain ON release_requests (domain, status, created_at)',
      'CREATE INDEX IF NOT EXISTS release_requests_recipient ON release_requests (recipient, created_at)',
      "CREATE UNIQUE INDEX IF NOT EXISTS release_requests_open ON release_requests (message_id) WHERE status = 'pending'",
      "ALTER TABLE console_login_failures ADD COLUMN ip TEXT NOT NULL DEFAULT ''",
      'CREATE INDEX IF NOT EXISTS console_login_failures_ip ON console_login_failures (username, ip, at)',
    ],
  },
  {
    // The account that submitted a message (submission listener). Its mail is also the
    // sender's side's: the sender domain's admin sees it in the console (message-queries.ts).
    name: '0004_submitted_by',
    statements: () => ['ALTER TABLE messages ADD COLUMN submitted_by TEXT'],
  },
  {
    // Hosted domains kept in the database (console, API, `mailmoat domain`): settings as written
    // in the file's domains.<name> (JSON), and the policy keys its domain admins may change.
    // config_version is bumped in the same transaction as every change; each process polls it
    // (gateway/domains/sync.ts). API tokens: only a SHA-256 of each token is stored.
    name: '0005_hosted_domains',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS hosted_domains (
        name TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        admin_may TEXT NOT NULL DEFAULT '[]',
        updated_at ${t.int} NOT NULL,
        updated_by TEXT NOT NULL
      )`,
      // One row (id 1) from the first change on; none: version 0. Not seeded, so that a new
      // database stays empty for `migrate --import-sqlite`.
      `CREATE TABLE IF NOT EXISTS config_version (id ${t.int} PRIMARY KEY, version ${t.int} NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS api_tokens (
        id ${t.id},
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('superadmin', 'domainadmin')),
        domains TEXT NOT NULL DEFAULT '[]',
        created_by ${t.int} NOT NULL,
        created_by_name TEXT NOT NULL,
        created_at ${t.int} NOT NULL,
        last_used_at ${t.int},
        revoked_at ${t.int}
      )`,
    ],
  },
  {
    // The learned filter's models (one global, '*', and one per hosted domain; version for
    // optimistic updates from several nodes), their snapshots for rollback, and each learn event
    // (who taught what, with what weight) for the per-reporter guards.
    name: '0006_learner',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS learner_models (
        name TEXT PRIMARY KEY,
        version ${t.int} NOT NULL,
        updated_at ${t.int} NOT NULL,
        data ${t.blob} NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS learner_snapshots (
        id ${t.id},
        name TEXT NOT NULL,
        at ${t.int} NOT NULL,
        by_whom TEXT NOT NULL,
        note TEXT NOT NULL,
        data ${t.blob} NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS learner_snapshots_name ON learner_snapshots (name, id)',
      `CREATE TABLE IF NOT EXISTS learner_events (
        seq ${t.id},
        at ${t.int} NOT NULL,
        reporter TEXT NOT NULL,
        domain TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        class TEXT NOT NULL,
        weight DOUBLE PRECISION NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS learner_events_reporter ON learner_events (reporter, at)',
      'CREATE INDEX IF NOT EXISTS learner_events_sha ON learner_events (sha256, class)',
    ],
  },
  {
    // The ledger (gateway/ledger/): the envelope as received, DSN parameters included, is kept
    // with the record so that a release never rebuilds it (a rebuilt one lost RET/NOTIFY/ORCPT);
    // an event's structured fields, so that code reads fields, not its display text.
    name: '0007_ledger',
    statements: () => ['ALTER TABLE messages ADD COLUMN envelope TEXT', 'ALTER TABLE message_events ADD COLUMN data TEXT'],
  },
  {
    // Digests for every recipient: a link does one thing (release, allow, block, not-spam, login),
    // covered by its HMAC; digest_listed claims (recipient, message) once, so that two consoles
    // running the digest or a notice at the same moment never list a message twice.
    name: '0008_digest_actions',
    statements: (t) => [
      "ALTER TABLE digest_tokens ADD COLUMN action TEXT NOT NULL DEFAULT 'release'",
      `CREATE TABLE IF NOT EXISTS digest_listed (
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        at ${t.int} NOT NULL,
        PRIMARY KEY (recipient, message_id)
      )`,
    ],
  },
  {
    // Console accounts from an external login (quarantine-ui/lib/login.ts): where the account logs
    // in ('local', 'ldap', 'oidc') and the directory's name for the person (LDAP entry DN, OIDC
    // subject), so that a returning person finds their account even after a rename, and no
    // second person of the same username can take it over.
    name: '0009_external_logins',
    statements: () => [
      "ALTER TABLE console_accounts ADD COLUMN auth_source TEXT NOT NULL DEFAULT 'local'",
      'ALTER TABLE console_accounts ADD COLUMN external_id TEXT',
      'CREATE UNIQUE INDEX IF NOT EXISTS console_accounts_external ON console_accounts (auth_source, external_id)',
    ],
  },
  {
    // A second factor (TOTP, RFC 6238) for local console accounts. The secret is stored sealed
    // (AES-256-GCM under a key derived from the console's secret file, quarantine-ui/lib/totp.ts):
    // a copy of the database alone yields no secret. enabled_at NULL: enrolment begun, not yet
    // confirmed with a code. last_step: the newest time step accepted, so that a code is accepted
    // once (RFC 6238 §5.2). Recovery codes are stored as keyed hashes and used once each.
    name: '0010_totp',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS console_totp (
        account_id ${t.int} PRIMARY KEY REFERENCES console_accounts (id) ON DELETE CASCADE,
        secret TEXT NOT NULL,
        enabled_at ${t.int},
        last_step ${t.int} NOT NULL DEFAULT 0,
        created_at ${t.int} NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS console_recovery_codes (
        account_id ${t.int} NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL,
        used_at ${t.int},
        PRIMARY KEY (account_id, code_hash)
      )`,
    ],
  },
  {
    // Numbers over time (gateway/stats.ts): one row per hosted domain ('' for mail no hosted
    // domain can own), hour and counter kind, added to by UPSERT from every node; rows older
    // than a week are rolled up into one row per day (its 00:00 hour). The daily summary mail's
    // runs: one row per day, claimed by the one console that sends it; and who turned it off.
    name: '0011_stats',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS stats_hourly (
        domain TEXT NOT NULL,
        hour ${t.int} NOT NULL,
        kind TEXT NOT NULL,
        n ${t.int} NOT NULL,
        PRIMARY KEY (domain, hour, kind)
      )`,
      'CREATE INDEX IF NOT EXISTS stats_hourly_hour ON stats_hourly (hour)',
      `CREATE TABLE IF NOT EXISTS daily_summary_runs (
        day TEXT PRIMARY KEY,
        at ${t.int} NOT NULL
      )`,
      // Console accounts that turned the daily summary off (a row: off).
      `CREATE TABLE IF NOT EXISTS daily_summary_optout (
        account_id ${t.int} PRIMARY KEY,
        at ${t.int} NOT NULL
      )`,
    ],
  },
];

function migrator(sql: Sql): Migrator {
  const migrations: Record<string, Migration> = {};
  for (const m of MIGRATIONS) {
    migrations[m.name] = {
      async up(db: Kysely<unknown>) {
        for (const statement of m.statements(TYPES[sql.dialect], sql.dialect)) await q.raw(statement).execute(db);
      },
    };
  }
  return new Migrator({ db: sql.kysely, provider: { getMigrations: async () => migrations } });
}

/** The database cannot be used as it is (unreachable, or an older schema): one line for the administrator. */
export class DatabaseError extends Error {}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

export async function migrationStatus(sql: Sql): Promise<MigrationStatus> {
  const all = await migrator(sql).getMigrations();
  return { applied: all.filter((m) => m.executedAt).map((m) => m.name), pending: all.filter((m) => !m.executedAt).map((m) => m.name) };
}

/** Applies every pending migration; resolves to the names applied. Throws with the failing one. */
export async function migrate(sql: Sql): Promise<string[]> {
  const { error, results = [] } = await migrator(sql).migrateToLatest();
  const failed = results.find((r) => r.status === 'Error');
  if (error)
    throw new Error(`migration ${failed?.migrationName ?? '(none)'} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * What a role does with the schema at start: SQLite (one machine) is brought up to date; a
 * PostgreSQL schema must already be (`mailmoat migrate`), or the role refuses to start.
 */
export async function prepareSchema(sql: Sql): Promise<void> {
  if (sql.dialect === 'sqlite') {
    await migrate(sql);
    return;
  }
  const { pending } = await migrationStatus(sql);
  if (pending.length > 0) {
    throw new DatabaseError(
      `the PostgreSQL schema is not up to date (pending migrations: ${pending.join(', ')}); run "mailmoat migrate --config <file>" once, then start the roles`,
    );
  }
}
