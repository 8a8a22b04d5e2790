// The gateway both hijack tests run: a submission listener "sub" behind STARTTLS, hijack detection
// with the given settings, two accounts of example.test (alice, erin) with the password "pw".
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { makeCert } from '../../support/certs.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { hashPassword } from '../../../gateway/passwords.ts';

export async function startHijackGateway(hijack: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startTestGateway({
    domains: { 'example.test': {}, 'elsewhere.test': {} },
    overrides: {
      inline: { enabled: false },
      tls: { certificates: [makeCert(['mx.gateway.test'])] },
      checks: { trusted: { networks: [] } },
      submission: { listeners: [{ name: 'sub', port: 0 }], hijack: { enabled: true, windowSec: 3600, suspend: true, ...hijack } },
    },
  });
  const accounts = openAccountStore(gw.stores.sql);
  for (const u of ['alice@example.test', 'erin@example.test'])
    await accounts.create({ username: u, role: 'user', addresses: [u], passwordHash: await hashPassword('pw', { logN: 10, r: 8, p: 1 }) });
  return gw;
}
