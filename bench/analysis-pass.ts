// CPU of the analysis thread's work for one message, alone: the MIME pass (walk + text scan:
// URLs and the HTML disarm prediction) that gateway/pipeline/analysis-worker.ts runs, over the
// bench's own 2 KB and 50 KB messages (lib/messages.ts) with the shipped default policy.
// `node bench/analysis-pass.ts [--count N] [--rounds R]`: R rounds of N messages after a
// warm-up, on this thread; prints CPU ms per message (user + system) of each round. For A/B work
// on the analysis (run it in two checkouts, interleaved); not a test.
import { parseArgs } from 'node:util';
import { parseConfig } from '../gateway/config/load.ts';
import { textScanLimits, walkLimits } from '../gateway/pipeline/analyse.ts';
import { mimePass, sourceStream } from '../gateway/pipeline/mime-pass.ts';
import { recipientPolicies } from '../gateway/pipeline/policy.ts';
import { registrableDomain } from '../gateway/pipeline/text-scan.ts';
import { disarmSettings } from '../rules/actions.ts';
import { DEFAULT_PHISHING_SAFE_SITES } from '../rules/defaults/phishing-safe-sites.ts';
import { makeMessage, wireBytes } from './lib/messages.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } } });
const count = Number(values.count);
const rounds = Number(values.rounds);

const config = parseConfig('hostname: mx.bench.test\ndataDir: data\ndomains:\n  bench.test:\n    downstream: [{ host: 127.0.0.1 }]\n', 'bench.yaml');
const [{ policy }] = await recipientPolicies(config, { mailFrom: 'alice@sender.test', clientIp: '192.0.2.1', rcptTo: ['user@bench.test'] }, undefined);
const settings = disarmSettings(policy, DEFAULT_PHISHING_SAFE_SITES);
const options = {
  walk: walkLimits(config),
  text: { ...textScanLimits(config, settings ? [settings] : []), registrableDomain },
};

for (const [label, bytes] of [
  ['2 KB', wireBytes(makeMessage('small', 2048))],
  ['50 KB', wireBytes(makeMessage('medium', 51_200))],
] as const) {
  const once = () => mimePass(sourceStream({ bytes }), options);
  for (let i = 0; i < 200; i++) await once();
  const figures: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const before = process.cpuUsage();
    for (let i = 0; i < count; i++) await once();
    const used = process.cpuUsage(before);
    figures.push(((used.user + used.system) / 1000 / count).toFixed(3));
  }
  console.log(`${label}: CPU ms per message ${figures.join(' ')} (${count} messages per round)`);
}
