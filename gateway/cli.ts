// mailmoat's command line: the roles (start, smtp, worker), config checking and quarantine
// operations. Errors an administrator can act on (a broken config, an unknown id) end in one
// clear line on stderr and exit code 1, never in a stack trace.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config/load.ts';
import { attachedEndpoints, type Endpoints } from './endpoints.ts';
import type { Config } from './config/schema.ts';
import { createLogger, type Logger } from './log.ts';
import { databaseTarget, deliveryDeps, makeResolver, openQueue, openStores, runConsole, runSmtp, runWorkers, startEngines } from './roles.ts';
import { describeTarget, openSql, q } from './store/sql.ts';
import { checkRedisServer, RedisCheckError } from './store/redis-check.ts';
import { healthListen, startHealthServer } from './health.ts';
import { registry } from './metrics.ts';
import { DatabaseError, migrate, migrationStatus } from './store/migrations.ts';
import { importDatabase } from './store/import.ts';
import { CliError, digestCommand, userCommand } from '../quarantine-ui/cli.ts';
import { decide } from '../quarantine-ui/lib/rights.ts';
import { testDownstream } from './delivery/smtp-test.ts';
import { bounceMessage, deleteQueued, listQueue, queueEntry, retryNow } from './delivery/queue-ops.ts';
import { startMailbox } from './demo/mailbox.ts';
import { listQuarantine, releaseMessage } from './quarantine.ts';
import { liveConfig } from './config/live.ts';
import { reloadConfig } from './config/reload.ts';
import { registerProcess, signalRunning } from './running.ts';
import { LEARN_USAGE, learnCli } from './learner/cli.ts';


const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const USAGE = `usage: mailmoat <command> [--config FILE]
  start                      run everything on this machine (engines, SMTP, workers, demo mailbox)
  smtp | worker | console    run one role (engines must already be running)
  reload                     reload the config file in the running processes of this data dir (as SIGHUP does)
  check-config [FILE]        validate a config file and print the effective settings
  migrate [--status]         bring the database schema up to date (PostgreSQL: once, before the roles start)
  migrate --import-sqlite FILE   copy a single machine's mailmoat.sqlite (and its quarantine) into the config's new PostgreSQL database
  queue list [--limit N] | counts | show ID | retry ID | bounce ID | delete ID
  test-downstream DOMAIN     an SMTP conversation (no message) with each next hop of DOMAIN
  quarantine list [--limit N]
  quarantine show ID
  quarantine release ID
  user list | add NAME --role superadmin|domainadmin|user [--domains a.test,b.test] [--addresses x@a.test]
  user passwd NAME           give a console user a new random password (printed once)
  digest send                send the quarantine digests now
${LEARN_USAGE}
The config file is --config, else $MAILMOAT_CONFIG, else /etc/mailmoat/mailmoat.yaml, else the demo's.`;

class UsageError extends Error {}

function findConfigFile(explicit: string | undefined): string {
  const candidates = [explicit, process.env.MAILMOAT_CONFIG, '/etc/mailmoat/mailmoat.yaml'].filter(Boolean) as string[];
  if (explicit || process.env.MAILMOAT_CONFIG) return candidates[0];
  if (existsSync(candidates[0])) return candidates[0];
  return path.join(REPO_ROOT, 'deploy/demo.yaml');
}

async function main(argv: string[]): Promise<number> {
  // Issue 19: the learned filter's command (its own parser and code in gateway/learner/cli.ts).
  if (argv[0] === 'learn') return learnCli(argv.slice(1), (explicit) => loadConfig(findConfigFile(explicit)));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      status: { type: 'boolean' },
      'import-sqlite': { type: 'string' },
      role: { type: 'string' },
      domains: { type: 'string' },
      addresses: { type: 'string' },
    },
  });
  const [command, sub, arg] = positionals;
  if (!command || values.help) {
    console.log(USAGE);
    return command ? 0 : 1;
  }
  if (command === 'check-config') return checkConfig(sub ?? findConfigFile(values.config));
  if (command === 'migrate') return migrateCommand(loadConfig(findConfigFile(values.config)), values.status === true, values['import-sqlite']);
  const configFile = findConfigFile(values.config);
  const config = loadConfig(configFile);
  const logger = createLogger({ level: config.log.level });
  switch (command) {
    case 'start':
    case 'smtp':
    case 'worker':
    case 'console':
      return runRoles(command, config, logger, configFile);
    case 'reload':
      // The file was validated above: a broken one is refused here, before any process is told.
      return reloadCommand(config);
    case 'user':
      return userCommand(sub, arg, values, config);
    case 'digest':
      return digestCommand(sub, async (fn) => {
        // Digests need the delivery queue only; the scanner endpoints are never used here.
        const endpoints = attachedEndpoints(config);
        const stores = await openStores(config);
        const queue = openQueue(config, endpoints.redis);
        try {
          const running = await runConsole(config, stores, queue, endpoints, createLogger({ level: 'warn' }), { listen: false });
          try {
            return await fn(running);
          } finally {
            await running.close();
          }
        } finally {
          await queue.close();
          await stores.store.close();
        }
      });
    case 'test-downstream':
      return testDownstreamCommand(config, sub);
    case 'queue':
      return queueCommand(config, sub, arg, Number(values.limit ?? 100));
    case 'quarantine':
      return quarantineCommand(config, sub, arg, Number(values.limit ?? 50));
    default:
      throw new UsageError(`unknown command: ${command}\n${USAGE}`);
  }
}

/**
 * `mailmoat migrate`: applies pending schema migrations (or, with --status, lists them; with
 * --import-sqlite FILE, also copies a single machine's database and quarantine into the config's
 * new PostgreSQL database, gateway/store/import.ts).
 */
async function migrateCommand(config: Config, statusOnly: boolean, importSqlite?: string): Promise<number> {
  const target = databaseTarget(config);
  if (importSqlite !== undefined) {
    if (statusOnly) throw new UsageError('migrate: --status and --import-sqlite do not go together');
    if (!('postgres' in target)) {
      throw new UsageError(`migrate --import-sqlite: the config's database is SQLite (${target.sqlite}); set database.url to the new PostgreSQL database to import into`);
    }
    const file = path.resolve(importSqlite);
    if (!existsSync(file)) throw new UsageError(`migrate --import-sqlite: no such file: ${file}`);
  }
  const sql = await openSql(target);
  try {
    if (statusOnly) {
      const { applied, pending } = await migrationStatus(sql);
      console.log(`${describeTarget(target)}: ${applied.length} applied${applied.length ? ` (${applied.join(', ')})` : ''}, ${pending.length} pending${pending.length ? ` (${pending.join(', ')})` : ''}`);
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

/** The effective settings may be pasted into a ticket: passwords (fields or in URLs) are never printed. */
function hideSecrets(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (/password|secret/i.test(key)) return '[hidden]';
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(value)) {
    const url = new URL(value);
    url.password = '***';
    return url.toString();
  }
  return value;
}

function checkConfig(file: string): number {
  const config = loadConfig(file);
  console.log(`${file}: OK`);
  console.log(JSON.stringify(config, hideSecrets, 2));
  return 0;
}

async function runRoles(role: 'start' | 'smtp' | 'worker' | 'console', fileConfig: Config, logger: Logger, configFile: string): Promise<number> {
  // SIGHUP and `mailmoat reload` re-read the config file (gateway/config/reload.ts); every role
  // reads it through `config`, which always shows the newest good one.
  const live = liveConfig(fileConfig);
  const config = live.config;
  const onHup = () => void (stopping || reloadConfig(configFile, live, logger));
  process.on('SIGHUP', onHup);
  let unregister = () => {};
  try {
    unregister = registerProcess(fileConfig.dataDir, role);
  } catch (err) {
    logger.warn({ err }, 'cannot write a pid file: `mailmoat reload` will not find this process (SIGHUP still reloads)');
  }
  const cleanups: (() => Promise<unknown>)[] = [async () => unregister()];
  const shutdown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => logger.warn({ err }, 'error during shutdown'));
  };
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    void shutdown().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let endpoints: Endpoints;
    if (role === 'start') {
      const engines = await startEngines(config, logger);
      cleanups.push(() => engines.stop());
      endpoints = engines.endpoints;
    } else {
      endpoints = attachedEndpoints(config);
    }
    // A Redis that may evict keys would silently lose queued messages: refuse to start on it.
    const redisCheck = await checkRedisServer(endpoints.redis, { prefix: config.redis.prefix });
    for (const warning of redisCheck.warnings) logger.warn(warning);
    const stores = await openStores(config);
    cleanups.push(() => stores.store.close());
    const queue = openQueue(config, endpoints.redis);
    cleanups.push(() => queue.close());
    // For a load balancer: /healthz while the role can work, /readyz until it starts to stop.
    let smtpOpen = false;
    const healthAt = healthListen(config, role);
    const health =
      healthAt &&
      (await startHealthServer({
        listen: healthAt,
        role,
        logger,
        metrics: registry,
        checks: {
          redis: async () => {
            const counts = await queue.counts();
            return `${(counts.scan.waiting ?? 0) + (counts.deliver.waiting ?? 0)} jobs waiting`;
          },
          database: () => stores.sql.one(q`SELECT 1`).then(() => stores.sql.dialect),
          ...(role === 'smtp' || role === 'start'
            ? {
                smtp: () => {
                  if (!smtpOpen) throw new Error('SMTP listener not open');
                },
              }
            : {}),
        },
      }));
    if (health) cleanups.push(() => health.close());
    if (role === 'start' && config.demo) {
      const { listen, dir } = config.demo.mailbox;
      const mailbox = await startMailbox({ dir, host: listen.host, port: listen.port });
      cleanups.push(() => mailbox.close());
      logger.info({ port: mailbox.port, dir }, 'demo mailbox listening');
    }
    if (role === 'start' || role === 'worker') {
      const workers = await runWorkers(config, stores, queue, endpoints, logger);
      cleanups.push(() => workers.close());
    }
    if (role === 'start' || role === 'smtp') {
      const front = await runSmtp(config, stores, queue, logger);
      cleanups.push(() => front.close());
      smtpOpen = true;
      if (role === 'start') printWelcome(config, front.port);
    }
    if (role === 'console' || (role === 'start' && config.console.enabled)) {
      const ui = await runConsole(config, stores, queue, endpoints, logger);
      cleanups.push(() => ui.close());
      // stdout, not the log: the first admin password is shown once and never written to a log
      console.log(`Quarantine console: ${ui.url}`);
      if (ui.firstAdmin) {
        console.log(`  First start: log in as "${ui.firstAdmin.username}" with the password ${ui.firstAdmin.password}`);
        console.log('  (shown only now; change it under "Your account", or reset it with: mailmoat user passwd admin)');
      } else {
        console.log('  Log in with your console account (forgot the admin password? mailmoat user passwd admin)');
      }
    }
    // Runs first at shutdown (cleanups run in reverse): /readyz fails, and an SMTP node waits for
    // the balancer to notice before its listener closes, so no new client is cut off.
    if (health) {
      cleanups.push(async () => {
        health.setDraining();
        if (role === 'smtp' || role === 'start') await new Promise((resolve) => setTimeout(resolve, config.health.drainDelayMs));
      });
    }
    return await new Promise<number>(() => {}); // runs until a signal
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/** `mailmoat reload`: SIGHUP to every running process of the config's data dir. */
function reloadCommand(config: Config): number {
  const outcomes = signalRunning(config.dataDir, 'SIGHUP');
  for (const o of outcomes) console.log(`${o.role} (pid ${o.pid}): ${o.outcome === 'signalled' ? 'told to reload' : `${o.outcome}, its stale pid file removed`}`);
  if (!outcomes.some((o) => o.outcome === 'signalled')) throw new UsageError(`reload: no running mailmoat process found in ${config.dataDir}/run`);
  return 0;
}

function printWelcome(config: Config, port: number): void {
  const domain = Object.keys(config.domains)[0];
  const host = config.smtp.listen.host;
  console.log(`
mailmoat is running. SMTP on ${host}:${port}, hosted domain(s): ${Object.keys(config.domains).join(', ')}
Send a test message:
  swaks --server ${host}:${port} --to alice@${domain} --from bob@sender.test --body "hello"
Send the EICAR test virus (it is quarantined):
  printf '%s' 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' > /tmp/eicar.com
  swaks --server ${host}:${port} --to alice@${domain} --from bob@sender.test --attach /tmp/eicar.com
${config.demo ? `Delivered mail lands in ${config.demo.mailbox.dir}/<recipient>/` : ''}
Quarantine:  ./bin/mailmoat quarantine list      Stop: Ctrl-C
`);
}

async function testDownstreamCommand(config: Config, domain: string | undefined): Promise<number> {
  if (!domain || !config.domains[domain.toLowerCase()]) {
    throw new UsageError(`test-downstream: name one of the hosted domains (${Object.keys(config.domains).join(', ')})`);
  }
  const result = await testDownstream(domain.toLowerCase(), config, makeResolver(config));
  for (const hop of result.hops) {
    console.log(`== ${hop.host}:${hop.port}: ${hop.ok ? 'OK' : 'FAILED'}: ${hop.summary}`);
    for (const line of hop.transcript) console.log(`${String(line.ms).padStart(6)} ms ${line.dir} ${line.line}`);
  }
  console.log(result.summary);
  return result.ok ? 0 : 1;
}

async function queueCommand(config: Config, sub: string | undefined, id: string | undefined, limit: number): Promise<number> {
  const stores = await openStores(config);
  const queue = openQueue(config, attachedEndpoints(config).redis);
  const deps = deliveryDeps(config, stores, queue, createLogger({ level: 'warn' }));
  const by = `cli:${process.env.USER ?? 'root'}`;
  try {
    if (sub === 'list') {
      const entries = await listQueue(deps, limit);
      if (entries.length === 0) console.log('queue is empty');
      for (const e of entries) {
        const r = e.record;
        console.log([r.id, r.status, new Date(r.receivedAt).toISOString(), r.mailFrom || '<>', r.rcptTo.join(','), `next: ${e.nextAttempt ?? '-'}`, `job: ${e.job.queue}/${e.job.info?.state ?? 'none'}`, r.lastReply ?? ''].join('\t'));
      }
      return 0;
    }
    if (sub === 'counts') {
      console.log(JSON.stringify({ messages: await stores.store.countByStatus(), jobs: await queue.counts() }, null, 2));
      return 0;
    }
    if (!id) throw new UsageError(`queue ${sub ?? ''}: missing message id\n${USAGE}`);
    const record = await stores.store.get(id);
    if (!record) throw new UsageError(`no message with id ${id}`);
    if (sub === 'show') {
      const entry = await queueEntry(deps, record);
      console.log(JSON.stringify({ ...entry, events: await stores.store.events(id), deliveries: await stores.store.deliveries(id) }, null, 2));
      return 0;
    }
    const ops = { retry: () => retryNow(deps, id), bounce: () => bounceMessage(deps, id, by), delete: () => deleteQueued(deps, id, by) };
    const op = ops[sub as keyof typeof ops];
    if (!op) throw new UsageError(`unknown queue command: ${sub}\n${USAGE}`);
    const result = await op();
    if (!result.ok) throw new UsageError(`cannot ${sub} ${id}: ${result.reason}`);
    console.log(`${id}: ${result.detail}`);
    return 0;
  } finally {
    await queue.close();
    await stores.store.close();
  }
}

async function quarantineCommand(config: Config, sub: string | undefined, id: string | undefined, limit: number): Promise<number> {
  const stores = await openStores(config);
  try {
    if (sub === 'list') {
      const rows = await listQuarantine(stores.store, { limit });
      if (rows.length === 0) console.log('quarantine is empty');
      for (const r of rows) {
        console.log([r.id, new Date(r.receivedAt).toISOString(), r.verdict, r.mailFrom || '<>', r.rcptTo.join(','), JSON.stringify(r.subject ?? ''), r.reason].join('\t'));
      }
      return 0;
    }
    if (!id) throw new UsageError(`quarantine ${sub ?? ''}: missing message id\n${USAGE}`);
    const record = await stores.store.get(id);
    if (!record) throw new UsageError(`no message with id ${id}`);
    if (sub === 'show') {
      console.log(JSON.stringify({ ...record, events: await stores.store.events(id), deliveries: await stores.store.deliveries(id) }, null, 2));
      return 0;
    }
    if (sub === 'release') {
      // The command line acts as the superadmin: the same release-rights decision as the console.
      const right = decide(config, record, 'superadmin', 'release');
      if (!right.allowed) throw new UsageError(`cannot release ${id}: ${right.reason}`);
      const queue = openQueue(config, attachedEndpoints(config).redis);
      try {
        const result = await releaseMessage({ config, ...stores, queue, logger: createLogger({ level: 'warn' }) }, id, `cli:${process.env.USER ?? 'root'}`);
        if (!result.ok) throw new UsageError(`cannot release ${id}: ${result.reason}`);
        console.log(`${id} released: queued for delivery to ${record.rcptTo.join(', ')}`);
        return 0;
      } finally {
        await queue.close();
      }
    }
    throw new UsageError(`unknown quarantine command: ${sub}\n${USAGE}`);
  } finally {
    await stores.store.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof CliError || err instanceof DatabaseError || err instanceof RedisCheckError) console.error(`mailmoat: ${err.message}`);
    else console.error('mailmoat: fatal:', err);
    process.exit(1);
  },
);
