// `mailmoat test-downstream` and `mailmoat digest send`.
import type { Config } from '../config/schema.ts';
import { attachedEndpoints } from '../endpoints.ts';
import { createLogger } from '../log.ts';
import { makeResolver, openQueue, openStores, runConsole } from '../roles.ts';
import { testDownstream } from '../delivery/smtp-test.ts';
import { digestCommand } from '../../quarantine-ui/cli.ts';
import { UsageError } from './errors.ts';

export async function testDownstreamCommand(config: Config, domain: string): Promise<number> {
  if (!config.domains[domain.toLowerCase()]) {
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

export function digestSend(config: Config): Promise<number> {
  return digestCommand('send', async (fn) => {
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
}
