// An in-process gateway for end-to-end tests: real SMTP front, real workers, the suite's real
// Redis/clamd/spamd (from global-setup), a private data dir and Redis key prefix per gateway, and
// the demo mailbox server as the downstream.
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { createTransport, type SendMailOptions, type Transporter } from 'nodemailer';
import { configSchema, type Config } from '../../gateway/config/schema.ts';
import { silentLogger, createLogger, type Logger } from '../../gateway/log.ts';
import { openQueue, openStores, runSmtp, runWorkers, type Stores } from '../../gateway/roles.ts';
import { attachedEndpoints, type Endpoints } from '../../gateway/endpoints.ts';
import { startMailbox, type MailboxHooks } from '../../gateway/demo/mailbox.ts';
import type { JobQueue, WorkerSet } from '../../gateway/store/queue.ts';
import type { MessageStatus } from '../../gateway/store/metadata.ts';
import type { SmtpFront } from '../../gateway/smtp/server.ts';
import { migrate } from '../../gateway/store/migrations.ts';
import { openSql, type Dialect } from '../../gateway/store/sql.ts';
import { createTestDatabase } from './databases.ts';
import { liveConfig } from '../../gateway/config/live.ts';
import { startDomainSync, type DomainSync } from '../../gateway/domains/sync.ts';
import { openDomainStore } from '../../gateway/store/domains.ts';

export interface TestGateway {
  config: Config;
  configFile: string;
  smtpPort: number;
  /** The SMTP front (ports of both listeners, TLS reload). */
  front: SmtpFront;
  mailboxDir: string;
  stores: Stores;
  queue: JobQueue;
  endpoints: Endpoints;
  /** With liveDomainsPollMs: the sync of database domains into this gateway's live config. */
  domainSync?: DomainSync;
  stopWorkers(): Promise<void>;
  startWorkers(): Promise<void>;
  stop(): Promise<void>;
}

/** Raw config (as it would be in YAML) for a test gateway; `overrides` are merged on top level keys. */
export function testConfigInput(dataDir: string, mailboxPort: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const s = inject('services');
  return {
    hostname: 'mx.gateway.test',
    dataDir,
    smtp: { listen: { host: '127.0.0.1', port: 0 }, maxMessageBytes: 200_000, maxRecipients: 5 },
    domains: { 'example.test': { downstream: [{ host: '127.0.0.1', port: mailboxPort }] } },
    redis: { socket: s.redisSocket, prefix: `t${path.basename(dataDir).replace(/[^a-z0-9]/gi, '')}` },
    clamd: { socket: s.clamdSocket, timeoutMs: 20_000 },
    spamd: { host: s.spamdHost, port: s.spamdPort, timeoutMs: 20_000 },
    queue: { lockDurationMs: 3_000 },
    delivery: { retryDelayMs: 500, maxRetryDelayMs: 2_000, connectTimeoutMs: 3_000 },
    scan: { retryDelayMs: 500, maxRetryDelayMs: 2_000, maxAttempts: 10 },
    log: { level: 'warn' },
    ...overrides,
  };
}

export async function startTestGateway(
  o: {
    overrides?: Record<string, unknown>;
    mailboxHooks?: MailboxHooks;
    dataDir?: string;
    /** Hosted domains (all delivered to the test mailbox) and their extra keys, e.g. a `policy`; replaces the default example.test. */
    domains?: Record<string, Record<string, unknown>>;
    /** Points the gateway's one resolver at a fake DNS server (short timeout, one try); overrides.dns still wins. */
    dns?: { address: string };
    /** 'postgres': metadata, quarantine and the spool's shared copy in a fresh database of the run's PostgreSQL (migrated). */
    database?: Dialect;
    /** The gateway's logger (default silent, or debug on stdout with MAILMOAT_TEST_LOG): a test that reads the log passes its own. */
    logger?: Logger;
    /** Runs on a live config with hosted domains from the database merged in, polled this often (gateway/domains/sync.ts). */
    liveDomainsPollMs?: number;
  } = {},
): Promise<TestGateway> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'mailmoat-gw-'));
  const mailboxDir = path.join(dataDir, 'mailbox');
  const mailbox = await startMailbox({ dir: mailboxDir, host: '127.0.0.1', port: 0, hooks: o.mailboxHooks });
  const downstream = [{ host: '127.0.0.1', port: mailbox.port }];
  const domains = o.domains && Object.fromEntries(Object.entries(o.domains).map(([d, extra]) => [d, { downstream, ...extra }]));
  const dns = o.dns && { dns: { servers: [o.dns.address], timeoutMs: 300, tries: 1 } };
  // MAILMOAT_TEST_DATABASE=postgres runs every test gateway on PostgreSQL (a check of the cluster storage by hand).
  const dialect = o.database ?? (process.env.MAILMOAT_TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite');
  const database = dialect === 'postgres' ? await createTestDatabase('postgres') : undefined;
  if (database) {
    const sql = await openSql(database.target);
    await migrate(sql).finally(() => sql.close());
  }
  const databaseUrl = database && { database: { url: (database.target as { postgres: string }).postgres, poolSize: 4 } };
  const input = testConfigInput(dataDir, mailbox.port, { ...(domains ? { domains } : {}), ...dns, ...databaseUrl, ...o.overrides });
  const live = liveConfig(configSchema.parse(input));
  const config = o.liveDomainsPollMs === undefined ? live.current : live.config;
  const configFile = path.join(dataDir, 'mailmoat.json.yaml');
  await fs.writeFile(configFile, JSON.stringify(input)); // JSON is YAML: for child-process roles
  const logger = o.logger ?? (process.env.MAILMOAT_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger());
  const endpoints = attachedEndpoints(config); // as configured: a test may point an engine elsewhere
  const stores = await openStores(config);
  const domainSync =
    o.liveDomainsPollMs === undefined
      ? undefined
      : await startDomainSync({ store: openDomainStore(stores.sql), live, logger, intervalMs: o.liveDomainsPollMs });
  const queue = openQueue(config, endpoints.redis);
  let workers: WorkerSet | undefined = await runWorkers(config, stores, queue, endpoints, logger);
  const front: SmtpFront & { port: number } = await runSmtp(config, stores, queue, logger);
  return {
    config,
    configFile,
    smtpPort: front.port,
    front,
    mailboxDir,
    stores,
    queue,
    endpoints,
    domainSync,
    async stopWorkers() {
      await workers?.close();
      workers = undefined;
    },
    async startWorkers() {
      workers ??= await runWorkers(config, stores, queue, endpoints, logger);
    },
    async stop() {
      await front.close(1_000);
      await workers?.close();
      await queue.close();
      await mailbox.close();
      domainSync?.stop();
      await stores.store.close(); // closes the shared database connection
      await database?.drop();
    },
  };
}

export interface SendResult {
  code: number;
  response: string;
  /** The message id from a "250 … queued as ID" reply. */
  id?: string;
}

/** Sends raw bytes over real SMTP with nodemailer; refusals come back as results, not throws. */
/** `o.name` is the EHLO name, `o.localAddress` the client address to connect from (any 127.0.0.0/8 address works on Linux). */
export async function sendRaw(
  port: number,
  envelope: { from: string; to: string[] },
  raw: string | Buffer,
  o: { name?: string; localAddress?: string; dsn?: { id?: string; return?: 'headers' | 'full'; notify?: string[]; recipient?: string } } = {},
): Promise<SendResult> {
  const transport = createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    name: o.name ?? 'client.sender.test',
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
  });
  return sendWith(transport, { envelope, raw, ...(o.dsn ? { dsn: o.dsn } : {}) });
}

/** One message through a nodemailer transport (closed afterwards); a refusal comes back as a result, not a throw. */
export async function sendWith(transport: Transporter, mail: SendMailOptions): Promise<SendResult> {
  try {
    const info = await transport.sendMail(mail);
    const response = String(info.response);
    return { code: Number(response.slice(0, 3)), response, id: /queued as (\S+)/.exec(response)?.[1] };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string; message: string };
    return { code: e.responseCode ?? 0, response: e.response ?? e.message };
  } finally {
    transport.close();
  }
}

export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, o: { timeoutMs?: number; what: string }): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitForStatus(gw: TestGateway, id: string, statuses: MessageStatus[], timeoutMs = 30_000): Promise<MessageStatus> {
  let last: MessageStatus | undefined;
  return waitFor(
    async () => {
      const status = (await gw.stores.store.get(id))?.status;
      last = status;
      return status && statuses.includes(status) ? status : undefined;
    },
    {
      timeoutMs,
      // Read when the wait times out: the status the message was last seen in.
      get what() {
        return `message ${id} to reach ${statuses.join('/')} (now ${last})`;
      },
    },
  );
}

/** Every message file the downstream mailbox stored for a recipient, oldest first. */
export async function mailboxMessages(gw: { mailboxDir: string }, recipient: string): Promise<Buffer[]> {
  const dir = path.join(gw.mailboxDir, recipient.toLowerCase());
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.sort().map((n) => fs.readFile(path.join(dir, n))));
}

/** Splits a raw message into its header block and body at the first empty line. */
export function splitMessage(raw: Buffer): { head: string; body: Buffer } {
  const at = raw.indexOf('\r\n\r\n');
  return { head: raw.subarray(0, at).toString('latin1'), body: raw.subarray(at + 4) };
}
