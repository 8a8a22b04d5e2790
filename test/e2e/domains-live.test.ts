// A hosted domain added through the API on one node accepts mail on another node within seconds,
// with no restart and no config file change: before, 554 relay denied; after removal, 554 again.
// Node 1 runs the SMTP front and the workers on a live config that polls the database; node 2 is
// a console (its own connection to the same PostgreSQL database) serving the API over HTTP.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../gateway/log.ts';
import { openStores, type Stores } from '../../gateway/roles.ts';
import type { Config } from '../../gateway/config/schema.ts';
import { deleteMessage, releaseMessage } from '../../gateway/quarantine.ts';
import { SpamdClient } from '../../scanners/spamd.ts';
import { startConsole, type RunningConsole } from '../../quarantine-ui/server.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { rawMessage } from '../quarantine-ui/harness.ts';

const POLL_MS = 300;

describe('a domain added through the API is live on another node', () => {
  let gw: TestGateway;
  let node2: Stores;
  let ui: RunningConsole;
  let token: string;
  let mailboxPort: number;

  beforeAll(async () => {
    gw = await startTestGateway({ database: 'postgres', liveDomainsPollMs: POLL_MS });
    mailboxPort = gw.config.domains['example.test']!.downstream[0]!.port;
    const logger = silentLogger();
    const config: Config = {
      ...gw.config,
      dataDir: mkdtempSync(path.join(os.tmpdir(), 'mailmoat-node2-')),
      console: { ...gw.config.console, listen: { host: '127.0.0.1', port: 0 }, digest: { ...gw.config.console.digest, enabled: false } },
    };
    node2 = await openStores(config);
    ui = await startConsole({
      config,
      logger,
      ...node2,
      queue: gw.queue,
      release: (id, by) => releaseMessage({ config, ...node2, queue: gw.queue, logger }, id, by),
      remove: (id, by) => deleteMessage({ ...node2, logger }, id, by),
      spamd: new SpamdClient(gw.endpoints.spamd, { timeoutMs: 20_000 }),
      engineChecks: {},
    });
    const root = await ui.deps.accounts.create({ username: 'root', role: 'superadmin', passwordHash: 'x' });
    token = (await ui.deps.tokens.create({ name: 'provisioning', role: 'superadmin', domains: [], createdBy: root.id, createdByName: 'root' })).secret;
  }, 60_000);

  afterAll(async () => {
    await ui?.close();
    await node2?.store.close();
    await gw?.stop();
  });

  const api = (method: string, url: string, body?: unknown) =>
    fetch(new URL(`api/v1${url}`, ui.url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const send = () => sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['carol@new.test'] }, rawMessage({ to: 'carol@new.test', subject: 'onboarded' }));

  it('554 before; accepted and delivered within seconds of the PUT; 554 again after the DELETE', async () => {
    const before = await send();
    expect(before.code).toBe(554);
    expect(before.response).toMatch(/Relay access denied/);

    const put = await api('PUT', '/domains/new.test', { settings: { downstream: [{ host: '127.0.0.1', port: mailboxPort }] } });
    expect(put.status, await put.clone().text()).toBe(200);
    const added = Date.now();
    const accepted = await waitFor(
      async () => {
        const r = await send();
        return r.code === 250 ? r : undefined;
      },
      { timeoutMs: 10_000, what: 'new.test to be accepted on node 1' },
    );
    const seconds = (Date.now() - added) / 1000;
    expect(await waitForStatus(gw, accepted.id!, ['delivered'])).toBe('delivered');

    expect((await api('DELETE', '/domains/new.test')).status).toBe(200);
    await waitFor(async () => ((await send()).code === 554 ? true : undefined), { timeoutMs: 10_000, what: 'new.test to be refused again' });
    console.log(`new.test accepted on node 1 ${seconds.toFixed(2)} s after the API call on node 2 (poll every ${POLL_MS} ms)`);
  }, 60_000);
});
