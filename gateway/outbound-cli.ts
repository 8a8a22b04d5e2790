// Commands of the outbound relay (issue 18):
//   mailmoat dkim keygen DOMAIN [--selector S]   a new signing key for a customer domain in the
//     data dir (gateway/pipeline/dkim.ts), made the active one, and the DNS TXT record to publish;
//   mailmoat relay lift ACCOUNT                  lifts the suspension of a flagged account.
import type { Config } from './config/schema.ts';
import { attachedEndpoints } from './endpoints.ts';
import { generateDkimKey } from './pipeline/dkim.ts';
import { liftSuspension } from './smtp/hijack.ts';
import { openRedis } from './store/queue.ts';

/** A default selector that sorts by date, so that rotations are easy to tell apart: "mm202612". */
const defaultSelector = (now = new Date()) => `mm${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;

export async function dkimCommand(config: Config, sub: string | undefined, domain: string | undefined, selector: string | undefined): Promise<string> {
  if (sub !== 'keygen' || !domain) throw new Error('usage: mailmoat dkim keygen DOMAIN [--selector S]');
  const r = await generateDkimKey(config.dataDir, domain, selector ?? defaultSelector());
  // A TXT string is at most 255 octets (RFC 1035 §3.3.14): the 2048-bit key is split into several.
  const chunks = r.txt
    .match(/.{1,250}/g)!
    .map((c) => `"${c}"`)
    .join(' ');
  return [`key written to ${r.keyFile} (now the active key of ${domain})`, 'publish this DNS record:', `${r.name}. IN TXT ( ${chunks} )`, ''].join('\n');
}

export async function relayCommand(config: Config, sub: string | undefined, account: string | undefined): Promise<string> {
  if (sub !== 'lift' || !account) throw new Error('usage: mailmoat relay lift ACCOUNT');
  const redis = openRedis(attachedEndpoints(config).redis, 'client');
  try {
    const lifted = await liftSuspension(redis, config.redis.prefix, account);
    return lifted ? `${account} may send again\n` : `${account} was not suspended\n`;
  } finally {
    redis.disconnect();
  }
}
