// `mailmoat user …` and `mailmoat digest send`: console accounts from the command line (for the
// first domain admins, for a forgotten admin password, and for a superadmin who lost the phone with
// their second factor and its recovery codes) and digests on demand. Passwords are
// generated, printed once on stdout and never logged.
import type { Config } from '../gateway/config/schema.ts';
import { hashPassword, randomPassword } from '../gateway/passwords.ts';
import { ROLES, USERNAME, type Role } from '../gateway/store/accounts.ts';
import { openAccountStore } from '../gateway/store/accounts.ts';
import { openAuditStore } from '../gateway/store/audit.ts';
import { openTotpStore } from '../gateway/store/totp.ts';
import { prepareSchema } from '../gateway/store/migrations.ts';
import { openSql } from '../gateway/store/sql.ts';
import { databaseTarget } from '../gateway/roles.ts';
import type { RunningConsole } from './server.ts';

type WithConsole = <T>(fn: (c: RunningConsole) => Promise<T>) => Promise<T>;

export class CliError extends Error {}

const list = (s: string | boolean | undefined) =>
  typeof s === 'string'
    ? s
        .split(/[\s,]+/)
        .map((x) => x.trim().toLowerCase())
        .filter(Boolean)
    : [];

export async function digestCommand(sub: string | undefined, withConsole: WithConsole): Promise<number> {
  if (sub !== 'send') throw new CliError('usage: mailmoat digest send');
  return withConsole(async (running) => {
    const r = await running.sendDigests();
    console.log(`${r.sent} digest(s) queued${r.recipients.length ? `: ${r.recipients.join(', ')}` : ''}`);
    return 0;
  });
}

/** Console accounts, straight on the database: no engine has to run for these. */
export async function userCommand(
  sub: string | undefined,
  name: string | undefined,
  options: Record<string, string | boolean | undefined>,
  config: Config,
): Promise<number> {
  // The same database and schema rules as the roles (gateway/roles.ts openStores).
  const sql = await openSql(databaseTarget(config));
  try {
    await prepareSchema(sql);
    const accounts = openAccountStore(sql);
    const audit = openAuditStore(sql);
    const actor = `cli:${process.env.USER ?? 'root'}`;
    if (sub === 'list') {
      for (const a of await accounts.list())
        console.log([a.username, a.role, [...a.domains, ...a.addresses].join(','), a.disabled ? 'disabled' : ''].join('\t'));
      return 0;
    }
    if (!name) throw new CliError(`user ${sub ?? ''}: missing user name`);
    if (sub === 'add') {
      const role = String(options.role ?? '') as Role;
      if (!ROLES.includes(role)) throw new CliError(`--role must be one of ${ROLES.join(', ')}`);
      if (!USERNAME.test(name.toLowerCase())) throw new CliError('a username is 1-64 characters: lower-case letters, digits and . _ @ + -');
      const domains = list(options.domains);
      const addresses = list(options.addresses);
      const hosted = Object.keys(config.domains);
      for (const d of [...domains, ...addresses.map((x) => x.slice(x.lastIndexOf('@') + 1))]) {
        if (!hosted.includes(d)) throw new CliError(`${d} is not a hosted domain`);
      }
      if (await accounts.byName(name)) throw new CliError(`${name} exists already`);
      const password = randomPassword();
      await accounts.create({ username: name, role, domains, addresses, passwordHash: await hashPassword(password) });
      await audit.record({ actor, action: 'user-create', messageId: null, target: name, ip: '-', outcome: 'ok', detail: role });
      console.log(`created ${name} (${role}); password: ${password}`);
      return 0;
    }
    if (sub === 'passwd') {
      const account = await accounts.byName(name);
      if (!account) throw new CliError(`no console user ${name}`);
      const password = randomPassword();
      await accounts.setPasswordHash(account.id, await hashPassword(password));
      await accounts.clearLoginFailures(account.username);
      await audit.record({ actor, action: 'user-reset-password', messageId: null, target: name, ip: '-', outcome: 'ok', detail: '' });
      console.log(`new password for ${name}: ${password}`);
      return 0;
    }
    if (sub === 'totp-reset') {
      const account = await accounts.byName(name);
      if (!account) throw new CliError(`no console user ${name}`);
      if (!(await openTotpStore(sql).remove(account.id))) throw new CliError(`${name} has no two-step login`);
      await accounts.deleteSessionsOf(account.id);
      await audit.record({
        actor,
        action: 'totp-reset',
        messageId: null,
        target: name,
        ip: '-',
        outcome: 'ok',
        detail: 'second factor removed; sessions ended',
      });
      console.log(`two-step login of ${name} removed; their sessions were ended`);
      return 0;
    }
    throw new CliError(`unknown user command: ${sub}`);
  } finally {
    await sql.close();
  }
}
