// `mailmoat start | smtp | worker | console` and `mailmoat reload`: running the roles of this
// machine, with their health server and a clean shutdown on SIGINT/SIGTERM; SIGHUP reloads.
import { attachedEndpoints, unservedManagedScanners, type Endpoints } from '../endpoints.ts';
import { ConfigError } from '../config/load.ts';
import { installProcessGuards } from '../containment.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { openQueue, openStores, runConsole, runSmtp, runWorkers, startEngines, syncDomains } from '../roles.ts';
import { checkRedisServer } from '../store/redis-check.ts';
import { healthListen, startHealthServer } from '../health.ts';
import { registry, setScrapeSource } from '../metrics.ts';
import { CRITICAL, ENGINES, engineChecks } from '../engine-checks.ts';
import { startMailbox } from '../demo/mailbox.ts';
import { liveConfig } from '../config/live.ts';
import { reloadConfig } from '../config/reload.ts';
import { registerProcess, signalRunning } from '../running.ts';
import { UsageError } from './errors.ts';

export async function runRoles(role: 'start' | 'smtp' | 'worker' | 'console', fileConfig: Config, logger: Logger, configFile: string): Promise<number> {
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
  // What an error that escaped its promise does: gateway/containment.ts.
  installProcessGuards(logger, (reason) => {
    if (stopping) return;
    stopping = true;
    logger.fatal({ reason }, 'stopping for a restart');
    void shutdown().then(() => process.exit(1));
  });
  try {
    let endpoints: Endpoints;
    if (role === 'start') {
      const engines = await startEngines(config, logger);
      cleanups.push(() => engines.stop());
      endpoints = engines.endpoints;
    } else {
      endpoints = attachedEndpoints(config);
      // The roles never start scanners: a worker or console told they are managed has none.
      const unserved = role === 'smtp' ? [] : await unservedManagedScanners(config, endpoints);
      if (unserved.length > 0) throw new ConfigError(unserved.join('\n'));
    }
    // A Redis that may evict keys would silently lose queued messages: refuse to start on it.
    const redisCheck = await checkRedisServer(endpoints.redis, { prefix: config.redis.prefix });
    for (const warning of redisCheck.warnings) logger.warn(warning);
    const stores = await openStores(config, logger);
    cleanups.push(() => stores.store.close());
    // Hosted domains kept in the database, merged over the file's and polled (gateway/domains/sync.ts).
    const domainSync = await syncDomains(live, stores, logger);
    cleanups.push(async () => domainSync.stop());
    const queue = openQueue(config, endpoints.redis);
    cleanups.push(() => queue.close());
    // Every role reports the same checks (gateway/engine-checks.ts); /metrics reads them too.
    const checks = engineChecks(config, stores, queue, endpoints);
    setScrapeSource({
      oldestInFlight: async () => (await stores.store.inFlight(1))[0]?.receivedAt,
      engines: Object.fromEntries(ENGINES.map((e) => [e, checks[e]])),
    });
    cleanups.push(async () => setScrapeSource(undefined));
    // For a load balancer: /healthz while the role can work, /readyz until it starts to stop.
    // Not ready before the role's own listener is: a balancer (or a test) that sees 200 connects to it.
    let smtpOpen = false;
    let consoleOpen = false;
    const servesConsole = role === 'console' || (role === 'start' && config.console.enabled);
    const healthAt = healthListen(config, role);
    const health =
      healthAt &&
      (await startHealthServer({
        listen: healthAt,
        role,
        logger,
        metrics: registry,
        critical: CRITICAL[role],
        checks: {
          ...checks,
          ...(role === 'smtp' || role === 'start'
            ? {
                smtp: () => {
                  if (!smtpOpen) throw new Error('SMTP listener not open');
                },
              }
            : {}),
          ...(servesConsole
            ? {
                console: () => {
                  if (!consoleOpen) throw new Error('console listener not open');
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
    if (servesConsole) {
      const ui = await runConsole(config, stores, queue, endpoints, logger);
      cleanups.push(() => ui.close());
      consoleOpen = true;
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
export function reloadCommand(config: Config): number {
  const outcomes = signalRunning(config.dataDir, 'SIGHUP');
  for (const o of outcomes)
    console.log(`${o.role} (pid ${o.pid}): ${o.outcome === 'signalled' ? 'told to reload' : `${o.outcome}, its stale pid file removed`}`);
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
