// A console on a test gateway's stores and queue, wired as `mailmoat start` wires it: release and
// delete through the gateway's own paths, spamd for the learn buttons. For the browser journeys.
import { silentLogger } from '../../gateway/log.ts';
import { deleteMessage, releaseMessage } from '../../gateway/quarantine.ts';
import type { Config } from '../../gateway/config/schema.ts';
import { SpamdClient } from '../../scanners/spamd.ts';
import { startConsole, type ConsoleAdapters, type RunningConsole } from '../../quarantine-ui/server.ts';
import type { TestGateway } from './gateway.ts';

/** The gateway's config with a console on a free loopback port; digests off unless `console` says otherwise. */
export function testConsoleConfig(gw: TestGateway, console: Partial<Config['console']> = {}): Config {
  return {
    ...gw.config,
    console: { ...gw.config.console, listen: { host: '127.0.0.1', port: 0 }, digest: { ...gw.config.console.digest, enabled: false }, ...console },
  };
}

export function startTestConsole(gw: TestGateway, config: Config, more: Partial<ConsoleAdapters> = {}): Promise<RunningConsole> {
  const logger = silentLogger();
  return startConsole({
    config,
    logger,
    ...gw.stores,
    queue: gw.queue,
    release: (id, by) => releaseMessage({ config, ...gw.stores, queue: gw.queue, logger }, id, by),
    remove: (id, by) => deleteMessage({ ...gw.stores, logger }, id, by),
    spamd: new SpamdClient(gw.endpoints.spamd, { timeoutMs: 20_000 }),
    engineChecks: {},
    ...more,
  });
}
