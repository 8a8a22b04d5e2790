// `mailmoat domain list | add | rm`: hosted domains in the database, for scripts. The same
// validation and store as the console and the API (gateway/domains/manage.ts); running
// processes apply a change within database.domainsPollMs (no reload, no restart). Audited as
// "cli:<user>".
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { databaseTarget } from '../roles.ts';
import { openAuditStore } from '../store/audit.ts';
import { openDomainStore } from '../store/domains.ts';
import { prepareSchema } from '../store/migrations.ts';
import { openSql } from '../store/sql.ts';
import { parseAdminMay } from '../../rules/policy-bounds.ts';
import { removeDomain, saveDomain, viewDomains, type ChangeResult } from './manage.ts';

export const DOMAIN_USAGE = `  domain list                all hosted domains: from the config file and from the database
  domain add NAME --downstream HOST[:PORT] [--downstream …] [--admin-may "spam.threshold actions.spam"]
  domain add NAME --settings FILE.yaml [--admin-may …]   settings as under domains.NAME in the config file
  domain rm NAME             remove a domain kept in the database`;

/** A refusal an administrator can act on: one line, exit code 1 (cli.ts reports ConfigErrors so). */
export class DomainCommandError extends ConfigError {}

export async function domainCommand(argv: string[], loadConfig: (explicit: string | undefined) => Config): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      downstream: { type: 'string', multiple: true },
      settings: { type: 'string' },
      'admin-may': { type: 'string' },
    },
  });
  const [sub, name] = positionals;
  if (!sub || !['list', 'add', 'rm'].includes(sub) || (sub !== 'list' && !name)) throw new DomainCommandError(`usage:\n${DOMAIN_USAGE}`);
  const config = loadConfig(values.config);
  const sql = await openSql(databaseTarget(config));
  try {
    await prepareSchema(sql);
    const store = openDomainStore(sql);
    if (sub === 'list') {
      for (const d of await viewDomains(store, config.domains)) {
        const hops = ((d.settings.downstream ?? []) as { host?: string; mx?: string; port?: number }[]).map((h) =>
          h.host ? `${h.host}:${h.port ?? 25}` : `MX of ${h.mx}`,
        );
        const source = d.source === 'database' ? (d.inFile ? 'database (over the file)' : 'database') : 'file';
        console.log(`${d.name}\t${source}\t${hops.join(', ')}${d.adminMay.length ? `\tadmins may change: ${d.adminMay.join(' ')}` : ''}`);
      }
      return 0;
    }
    const by = `cli:${process.env.USER ?? 'root'}`;
    let result: ChangeResult;
    if (sub === 'rm') {
      result = await removeDomain(store, name!, config.domains);
    } else {
      const adminMay = parseAdminMay(values['admin-may'] ?? '');
      if (!adminMay.ok) throw new DomainCommandError(`domain add: --admin-may: ${adminMay.error}`);
      result = await saveDomain(store, name!, settingsFrom(values.settings, values.downstream), adminMay.keys, by);
    }
    await openAuditStore(sql).record({
      actor: by,
      action: sub === 'rm' ? 'domain-remove' : 'domain-put',
      messageId: null,
      target: name!,
      ip: '',
      outcome: result.ok ? 'ok' : 'failed',
      detail: result.ok ? `${result.detail} (command line)` : result.errors.join('; '),
    });
    if (!result.ok) throw new DomainCommandError(`domain ${sub} ${name}: refused:\n  ${result.errors.join('\n  ')}`);
    console.log(
      `${result.name}: ${sub === 'rm' ? result.detail : 'saved'}; running processes apply it within ${Math.ceil(config.database.domainsPollMs / 1000)} s`,
    );
    return 0;
  } finally {
    await sql.close();
  }
}

function settingsFrom(file: string | undefined, downstream: string[] | undefined): unknown {
  if (file !== undefined) {
    if (downstream?.length) throw new DomainCommandError('domain add: give --settings or --downstream, not both');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new DomainCommandError(`domain add: cannot read ${file}: ${(err as Error).message}`);
    }
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) throw new DomainCommandError(`${file}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS();
  }
  if (!downstream?.length) throw new DomainCommandError('domain add: give --downstream HOST[:PORT] (repeatable) or --settings FILE');
  return {
    downstream: downstream.map((d) => {
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(d);
      if (!m) throw new DomainCommandError(`domain add: --downstream ${d}: expected HOST or HOST:PORT`);
      return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] === undefined ? 25 : Number(m[2]) };
    }),
  };
}
