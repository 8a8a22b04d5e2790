// `mailmoat migrate`: the database schema, and the one-time import of a single machine's SQLite.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { databaseTarget } from '../roles.ts';
import { describeTarget, openSql } from '../store/sql.ts';
import { DatabaseError, migrate, migrationStatus } from '../store/migrations.ts';
import { importDatabase } from '../store/import.ts';
import { UsageError } from './errors.ts';

/**
 * `mailmoat migrate`: applies pending schema migrations (or, with --status, lists them; with
 * --import-sqlite FILE, also copies a single machine's database and quarantine into the config's
 * new PostgreSQL database, gateway/store/import.ts).
 */
export async function migrateCommand(config: Config, statusOnly: boolean, importSqlite?: string): Promise<number> {
  const target = databaseTarget(config);
  if (importSqlite !== undefined) {
    if (statusOnly) throw new UsageError('migrate: --status and --import-sqlite do not go together');
    if (!('postgres' in target)) {
      throw new UsageError(
        `migrate --import-sqlite: the config's database is SQLite (${target.sqlite}); set database.url to the new PostgreSQL database to import into`,
      );
    }
    const file = path.resolve(importSqlite);
    if (!existsSync(file)) throw new UsageError(`migrate --import-sqlite: no such file: ${file}`);
  }
  const sql = await openSql(target);
  try {
    if (statusOnly) {
      const { applied, pending } = await migrationStatus(sql);
      console.log(
        `${describeTarget(target)}: ${applied.length} applied${applied.length ? ` (${applied.join(', ')})` : ''}, ${pending.length} pending${pending.length ? ` (${pending.join(', ')})` : ''}`,
      );
      return pending.length ? 2 : 0;
    }
    const applied = await migrate(sql);
    console.log(`${describeTarget(target)}: ${applied.length ? `applied ${applied.join(', ')}` : 'already up to date'}`);
    if (importSqlite === undefined) return 0;
    const file = path.resolve(importSqlite);
    const quarantineDir = path.join(path.dirname(file), 'quarantine');
    const source = await openSql({ sqlite: file }).catch((err: unknown) => {
      throw new DatabaseError(`cannot open ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    try {
      // An older single-machine file is brought up to date first, as its own start would do.
      const sourceApplied = await migrate(source).catch((err: unknown) => {
        throw new DatabaseError(`cannot migrate ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      if (sourceApplied.length) console.log(`${file}: applied ${sourceApplied.join(', ')}`);
      const result = await importDatabase(source, sql, { quarantineDir }).catch((err: unknown) => {
        if (err instanceof DatabaseError) throw err;
        throw new DatabaseError(`cannot import ${file} into ${describeTarget(target)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      console.log(`imported ${file} into ${describeTarget(target)}:`);
      for (const [table, n] of Object.entries(result.rows)) console.log(`  ${table}: ${n}`);
      console.log(`  quarantine files: ${result.quarantineFiles} (from ${quarantineDir})`);
      for (const m of result.missingQuarantineFiles) console.log(`  missing quarantine file: ${m.file} (message ${m.messageId} is imported without its body)`);
      return 0;
    } finally {
      await source.close();
    }
  } catch (err) {
    if (err instanceof DatabaseError) throw err;
    throw new DatabaseError(`cannot migrate ${describeTarget(target)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    await sql.close();
  }
}
