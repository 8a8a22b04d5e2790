// mailmoat's command line: the roles (start, smtp, worker, console), config checking, the queue
// and the quarantine. Arguments are parsed by commander: every command has its own --help, and
// `mailmoat --version` prints the version. Exit codes: 0 done, 1 an error an administrator can act
// on (a broken config, an unknown id, an engine that cannot be reached), 2 wrong arguments (an
// unknown command or option, a missing argument). Either is one line on stderr, never a stack
// trace; only a bug (an error nobody expected) prints one. The handlers live in gateway/cli/.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Config } from './config/schema.ts';

// The handlers (and the stores, queue and engines they open) are loaded when a command runs, so
// that `--help`, `--version` and a wrong argument answer at once.
const handlers = {
  config: () => import('./cli/config.ts'),
  load: () => import('./config/load.ts'),
  log: () => import('./log.ts'),
  migrate: () => import('./cli/migrate.ts'),
  roles: () => import('./cli/roles.ts'),
  queue: () => import('./cli/queue.ts'),
  quarantine: () => import('./cli/quarantine.ts'),
  users: () => import('../quarantine-ui/cli.ts'),
  other: () => import('./cli/other.ts'),
};
type QuarantineFilter = import('./cli/quarantine.ts').QuarantineFilter;

const VERSION = (JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../package.json'), 'utf8')) as { version: string }).version;

/** A positive whole number for --limit. */
function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number above 0');
  return n;
}

function buildProgram(exit: { code: number }): Command {
  const program = new Command('mailmoat')
    .description('mailmoat: an inbound SMTP filtering gateway')
    .version(VERSION, '-V, --version', 'print the version')
    .option('-c, --config <file>', "the config file (default: $MAILMOAT_CONFIG, else /etc/mailmoat/mailmoat.yaml, else the demo's)")
    .showSuggestionAfterError(true)
    // Inherited by every command added below: commander never exits the process itself (main
    // picks the exit code), and its errors are one line in the same voice as ours.
    .exitOverride()
    .configureOutput({
      outputError: (text, write) =>
        write(
          `mailmoat: ${text
            .replace(/^error: /, '')
            .replace(/\s*\n\s*/g, ' ')
            .trim()}\n`,
        ),
    })
    .addHelpText('after', '\nEvery command has its own help: mailmoat <command> --help');
  const configFile = async () => (await handlers.config()).findConfigFile(program.opts<{ config?: string }>().config);
  const config = async (): Promise<Config> => (await handlers.load()).loadConfig(await configFile());
  const done = async (p: Promise<number> | number) => void (exit.code = await p);
  // Command groups that parse their own options (learn, domain): given the arguments, --config
  // passed on, and the loader of the config file.
  type OwnParser = (argv: string[], loadConfig: (explicit: string | undefined) => Config) => Promise<number>;
  const handOver = async (run: OwnParser, args: string[]) => {
    const explicit = program.opts<{ config?: string }>().config;
    const [c, l] = await Promise.all([handlers.config(), handlers.load()]);
    return run(explicit ? [...args, '--config', explicit] : args, (e) => l.loadConfig(c.findConfigFile(e)));
  };

  for (const [role, text] of [
    ['start', 'run everything on this machine (engines, SMTP, workers, console, demo mailbox)'],
    ['smtp', 'run the SMTP front line (engines must already be running)'],
    ['worker', 'run the scan and delivery workers'],
    ['console', 'run the quarantine web console'],
  ] as const) {
    program
      .command(role)
      .description(text)
      .action(async () => {
        const file = await configFile();
        const c = (await handlers.load()).loadConfig(file);
        const { createLogger } = await handlers.log();
        return done((await handlers.roles()).runRoles(role, c, createLogger({ level: c.log.level, format: c.log.format }), file));
      });
  }
  program
    .command('reload')
    .description('reload the config file in the running processes of this data dir (as SIGHUP does)')
    // The file is validated first: a broken one is refused here, before any process is told.
    .action(async () => done((await handlers.roles()).reloadCommand(await config())));
  program
    .command('check-config')
    .description('validate a config file and print the effective settings')
    .argument('[file]', 'the file to check (default: the --config file)')
    .option('--changed', 'print only the settings that differ from the defaults (like postconf -n)')
    .action(async (file: string | undefined, o: { changed?: boolean }) => done((await handlers.config()).checkConfig(file ?? (await configFile()), o)));
  program
    .command('migrate')
    .description('bring the database schema up to date (PostgreSQL: once, before the roles start)')
    .option('--status', 'list applied and pending migrations (exit 2 when some are pending)')
    .option('--import-sqlite <file>', "copy a single machine's mailmoat.sqlite (and its quarantine) into the config's new PostgreSQL database")
    .action(async (o: { status?: boolean; importSqlite?: string }) =>
      done((await handlers.migrate()).migrateCommand(await config(), o.status === true, o.importSqlite)),
    );
  program
    .command('test-downstream')
    .description('an SMTP conversation (no message) with each next hop of a hosted domain')
    .argument('<domain>', 'a hosted domain')
    .action(async (domain: string) => done((await handlers.other()).testDownstreamCommand(await config(), domain)));

  const queue = program.command('queue').description("mail still in the gateway's hands: list, show, retry, flush, bounce, delete");
  queue
    .command('list')
    .description('messages not yet in a final state, oldest first (tab-separated)')
    .option('--limit <n>', 'at most this many', count, 100)
    .option('--json', 'JSON for scripts')
    .action(async (o: { limit: number; json?: boolean }) => done((await handlers.queue()).queueList(await config(), o)));
  queue
    .command('counts')
    .description('messages by status and jobs by state (JSON)')
    .action(async () => done((await handlers.queue()).queueCounts(await config())));
  queue
    .command('show')
    .description('one message: envelope, verdict, scan report, events, deliveries')
    .argument('<id>', 'message id')
    .option('--json', 'the raw record, for scripts')
    .action(async (id: string, o: { json?: boolean }) => done((await handlers.queue()).queueShow(await config(), id, o)));
  for (const [op, text] of [
    ['retry', 'try a deferred message now'],
    ['bounce', 'give up on its pending recipients and return it to the sender with a DSN'],
    ['delete', 'remove it from the queue without delivering or bouncing (its record stays)'],
    ['release', 'a message held as poison: process it once more from the stage it was held at (fault count reset)'],
  ] as const) {
    queue
      .command(op)
      .description(text)
      .argument('<id>', 'message id')
      .action(async (id: string) => done((await handlers.queue()).queueOp(await config(), op, id)));
  }
  queue
    .command('flush')
    .description('try every deferred message now (like postqueue -f), or only those for one domain (postqueue -s)')
    .option('--domain <domain>', 'only messages with a pending recipient in this domain')
    .action(async (o: { domain?: string }) => done((await handlers.queue()).queueFlush(await config(), o)));

  const quarantine = program.command('quarantine').description('quarantined messages: list, show, release, delete');
  quarantine
    .command('list')
    .description('quarantined messages, newest first (tab-separated)')
    .option('--limit <n>', 'at most this many', count, 50)
    .option('--domain <domain>', 'with a recipient in this domain')
    .option('--class <class>', 'of this verdict class (virus, spam, high-spam, banned, phishing, unscannable, …)')
    .option('--since <when>', 'received since a date (2026-12-01, 2026-12-01T08:00) or an age (30m, 12h, 7d)')
    .option('--sender <text>', 'whose envelope sender contains this')
    .option('--json', 'JSON for scripts')
    .action(async (o: QuarantineFilter) => done((await handlers.quarantine()).quarantineList(await config(), o)));
  quarantine
    .command('show')
    .description('one message: envelope, verdict, scan report as text, events')
    .argument('<id>', 'message id')
    .option('--json', 'the raw record, for scripts')
    .action(async (id: string, o: { json?: boolean }) => done((await handlers.quarantine()).quarantineShow(await config(), id, o)));
  quarantine
    .command('release')
    .description('deliver it to its recipients (as a superadmin would)')
    .argument('<id>', 'message id')
    .action(async (id: string) => done((await handlers.quarantine()).quarantineRelease(await config(), id)));
  quarantine
    .command('delete')
    .description('delete its body (its record and events stay)')
    .argument('<id>', 'message id')
    .action(async (id: string) => done((await handlers.quarantine()).quarantineDelete(await config(), id)));

  const user = program.command('user').description('console accounts');
  user
    .command('list')
    .description('every console account')
    .action(async () => done((await handlers.users()).userCommand('list', undefined, {}, await config())));
  user
    .command('add')
    .description('create a console account (its password is printed once)')
    .argument('<name>', 'user name')
    .addOption(new Option('--role <role>', 'its role').choices(['superadmin', 'domainadmin', 'user']).makeOptionMandatory())
    .option('--domains <list>', 'domains a domainadmin manages (a.test,b.test)')
    .option('--addresses <list>', 'addresses a user sees (x@a.test,y@a.test)')
    .action(async (name: string, o: Record<string, string>) => done((await handlers.users()).userCommand('add', name, o, await config())));
  user
    .command('passwd')
    .description('give a console user a new random password (printed once)')
    .argument('<name>', 'user name')
    .action(async (name: string) => done((await handlers.users()).userCommand('passwd', name, {}, await config())));
  user
    .command('totp-reset')
    .description("remove a console user's two-step login (TOTP) and end their sessions")
    .argument('<name>', 'user name')
    .action(async (name: string) => done((await handlers.users()).userCommand('totp-reset', name, {}, await config())));

  program
    .command('digest')
    .description('quarantine digests')
    .command('send')
    .description('send the quarantine digests now')
    .action(async () => done((await handlers.other()).digestSend(await config())));
  // Outbound relay: DKIM keys and lifting a hijack suspension (gateway/outbound-cli.ts).
  const dkim = program.command('dkim').description('DKIM keys for outbound mail');
  dkim
    .command('keygen')
    .description('make a DKIM key for DOMAIN (it becomes the active one) and print the DNS TXT record to publish')
    .argument('<domain>', 'the sender domain')
    .option('--selector <selector>', "the selector (default: one made from today's date)")
    .action(async (d: string, o: { selector?: string }) => {
      const { dkimCommand } = await import('./outbound-cli.ts');
      process.stdout.write(await dkimCommand(await config(), 'keygen', d, o.selector));
    });
  const relay = program.command('relay').description("the outbound relay's accounts");
  relay
    .command('lift')
    .description('let an account suspended for unusual sending send again')
    .argument('<account>', 'the account')
    .action(async (account: string) => {
      const { relayCommand } = await import('./outbound-cli.ts');
      process.stdout.write(await relayCommand(await config(), 'lift', account));
    });
  // The learned filter: bulk training and model snapshots (gateway/learner/cli.ts parses the options itself).
  const learn = program.command('learn').description('the learned filter: train from mail files, model snapshots and rollback');
  const learnCmd = async (args: string[]) => handOver((await import('./learner/cli.ts')).learnCli, args);
  for (const kind of ['spam', 'ham'] as const) {
    learn
      .command(kind)
      .description(`train it with ${kind} from mbox files, maildirs, folders or message files (full weight; take a snapshot first)`)
      .argument('<paths...>', 'files or folders')
      .option('--domain <domain>', 'the domain model to train (default: the global one)')
      .action(async (paths: string[], o: { domain?: string }) => done(learnCmd([kind, ...paths, ...(o.domain ? ['--domain', o.domain] : [])])));
  }
  learn
    .command('snapshots')
    .description('the model snapshots')
    .action(async () => done(learnCmd(['snapshots'])));
  learn
    .command('snapshot')
    .description('take a snapshot of a model')
    .option('--domain <domain>', 'the domain model (default: the global one)')
    .option('--note <text>', 'a note kept with it')
    .action(async (o: { domain?: string; note?: string }) =>
      done(learnCmd(['snapshot', ...(o.domain ? ['--domain', o.domain] : []), ...(o.note ? ['--note', o.note] : [])])),
    );
  learn
    .command('rollback')
    .description('put a model back as a snapshot holds it (the state before is kept as a snapshot)')
    .argument('<id>', 'snapshot id')
    .action(async (id: string) => done(learnCmd(['rollback', id])));
  // Hosted domains kept in the database (gateway/domains/cli.ts parses the options itself).
  const domain = program.command('domain').description('hosted domains: from the config file and from the database (live on every node)');
  const domainCmd = async (args: string[]) => handOver((await import('./domains/cli.ts')).domainCommand, args);
  domain
    .command('list')
    .description('all hosted domains, and where each comes from')
    .action(async () => done(domainCmd(['list'])));
  domain
    .command('add')
    .description('add or replace a domain kept in the database')
    .argument('<name>', 'the domain')
    .option('--downstream <host:port>', 'a mailbox server (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--settings <file>', 'settings as under domains.NAME in the config file (YAML)')
    .option('--admin-may <keys>', 'policy keys its admins may change, e.g. "spam.threshold actions.spam"')
    .action(async (name: string, o: { downstream?: string[]; settings?: string; adminMay?: string }) =>
      done(
        domainCmd([
          'add',
          name,
          ...(o.downstream ?? []).flatMap((d) => ['--downstream', d]),
          ...(o.settings ? ['--settings', o.settings] : []),
          ...(o.adminMay ? ['--admin-may', o.adminMay] : []),
        ]),
      ),
    );
  domain
    .command('rm')
    .description('remove a domain kept in the database')
    .argument('<name>', 'the domain')
    .action(async (name: string) => done(domainCmd(['rm', name])));
  return program;
}

async function main(argv: string[]): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  // Commander reports wrong arguments itself (one line); we choose the exit code and let nothing
  // call process.exit behind our back.
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors (exit code 0): commander has printed what was asked.
      // A command group without its subcommand prints its help with exit code 1: wrong arguments.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return exit.code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    // One line for what the user can act on; a stack trace only for a bug.
    const [{ ConfigError }, { UsageError }, { CliError }, { DatabaseError }, { RedisCheckError }] = await Promise.all([
      handlers.load(),
      import('./cli/errors.ts'),
      handlers.users(),
      import('./store/migrations.ts'),
      import('./store/redis-check.ts'),
    ]);
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof CliError || err instanceof DatabaseError || err instanceof RedisCheckError)
      console.error(`mailmoat: ${err.message}`);
    else console.error('mailmoat: fatal:', err);
    process.exit(1);
  },
);
