// The gateway under test: the real `mailmoat` command line (gateway/cli.ts) in a child process,
// with a config file written for the run. Whatever stages the pipeline has when the bench runs
// are what gets measured; nothing here knows them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from '../../gateway/services/managed.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engines } from './engines.ts';
import { waitForListener } from './postfix.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
/** The checkout whose gateway/cli.ts is measured: this one unless --gateway names another. */
let gatewayRoot = REPO_ROOT;

export function setGatewayRoot(dir: string): void {
  gatewayRoot = resolve(dir);
}

export function getGatewayRoot(): string {
  return gatewayRoot;
}

export const HOSTED_DOMAIN = 'bench.test';

export interface GatewayConfigOptions {
  dir: string;
  smtpPort: number;
  /** The smtp-sink that plays the hosted domain's mailbox server. */
  downstreamPort: number;
  engines: Engines;
  spamd: boolean;
  logLevel: string;
  /** Key prefix of the queues, so phases running side by side have their own. */
  redisPrefix: string;
  /** Cluster storage (issue 9): metadata, quarantine and the spool's shared copy in this PostgreSQL database. */
  databaseUrl?: string;
}

const schemaChecks = new Map<string, boolean>();

/**
 * Whether the measured checkout's config schema takes these keys: the bench runs against older
 * and newer gateways, and the schema refuses keys it does not know.
 */
async function schemaAccepts(name: string, extra: Record<string, unknown>): Promise<boolean> {
  const known = schemaChecks.get(name);
  if (known !== undefined) return known;
  const mod = (await import(pathToFileURL(join(gatewayRoot, 'gateway/config/schema.ts')).href)) as {
    configSchema: { safeParse(x: unknown): { success: boolean } };
  };
  const base = { hostname: 'mx.bench.test', dataDir: '/tmp/bench', domains: { [HOSTED_DOMAIN]: { downstream: [{ host: '127.0.0.1', port: 25 }] } } };
  const ok = mod.configSchema.safeParse({ ...base, ...extra }).success;
  schemaChecks.set(name, ok);
  return ok;
}

/** Whether the measured checkout has cluster storage (`database.url`); older ones do not. */
export function gatewayHasDatabaseUrl(): Promise<boolean> {
  return schemaAccepts('database.url', { database: { url: 'postgres://bench@127.0.0.1:5432/bench' } });
}

/** Writes the config (JSON is YAML) and returns its path. Only keys of the shipped schema; defaults elsewhere. */
export async function writeGatewayConfig(o: GatewayConfigOptions): Promise<string> {
  await mkdir(o.dir, { recursive: true });
  // `mailmoat start` also runs the quarantine console where there is one: keep it (it is part of
  // what the process costs), on a port of its own so that gateways can run side by side.
  const consoleSection = { listen: { host: '127.0.0.1', port: await freePort() } };
  const withConsole = await schemaAccepts('console', { console: consoleSection });
  const config = {
    hostname: 'mx.bench.test',
    dataDir: join(o.dir, 'data'),
    smtp: { listen: { host: '127.0.0.1', port: o.smtpPort }, maxMessageBytes: 31_457_280 },
    domains: { [HOSTED_DOMAIN]: { downstream: [{ host: '127.0.0.1', port: o.downstreamPort }] } },
    redis: { socket: o.engines.redisSocket, prefix: o.redisPrefix },
    clamd: { socket: o.engines.clamdSocket },
    spamd: { host: o.engines.spamd.host, port: o.engines.spamd.port, enabled: o.spamd },
    dns: { servers: [o.engines.dnsAddress], timeoutMs: 2000 },
    log: { level: o.logLevel },
    ...(o.databaseUrl ? { database: { url: o.databaseUrl } } : {}),
    ...(withConsole ? { console: consoleSection } : {}),
  };
  const file = join(o.dir, 'mailmoat.yaml');
  await writeFile(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

/**
 * `mailmoat migrate --config FILE` in a child process, as an operator runs it once before the
 * roles start (they refuse to run on a database without the current schema).
 */
export async function migrateGateway(configFile: string, logFile: string): Promise<void> {
  const out = await new Promise<string>((res, rej) => {
    execFile(
      NODE,
      [join(gatewayRoot, 'gateway/cli.ts'), 'migrate', '--config', configFile],
      { cwd: gatewayRoot, timeout: 60_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const text = `${stdout}${stderr}`;
        if (err)
          rej(new Error(`mailmoat migrate failed (${err.code ?? err.signal ?? err.message}): ${text.trim().split('\n').slice(-5).join(' | ').slice(0, 500)}`));
        else res(text);
      },
    );
  });
  await writeFile(logFile, out);
}

export interface GatewayProcess {
  readonly role: string;
  readonly pid: number;
  alive(): boolean;
  /** SIGTERM (the CLI's orderly shutdown, which also writes a --cpu-prof profile), SIGKILL after 30 s. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  role: 'start' | 'smtp' | 'worker';
  configFile: string;
  /** For roles with an SMTP listener: resolve once it accepts connections. */
  smtpPort?: number;
  logFile: string;
  /** Write a V8 CPU profile into this folder at exit. */
  cpuProfDir?: string;
  /** Folder for the memory report (modules loaded, V8's view of memory) each process writes at exit. */
  memoryDir?: string;
}

export async function startGateway(o: StartOptions): Promise<GatewayProcess> {
  // The V8 flags bin/mailmoat runs the gateway with (a checkout from before they existed has none).
  const flagsFile = join(gatewayRoot, 'bin/node-flags');
  const nodeArgs = existsSync(flagsFile) ? readFileSync(flagsFile, 'utf8').split(/\s+/).filter(Boolean) : [];
  if (o.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`, `--cpu-prof-name=${o.role}-${Date.now()}.cpuprofile`);
  if (o.cpuProfDir) await mkdir(o.cpuProfDir, { recursive: true });
  if (o.memoryDir) {
    await mkdir(o.memoryDir, { recursive: true });
    nodeArgs.push('--import', join(import.meta.dirname, 'memory-report.ts'));
  }
  const log = openSync(o.logFile, 'a');
  const child: ChildProcess = spawn(NODE, [...nodeArgs, join(gatewayRoot, 'gateway/cli.ts'), o.role, '--config', o.configFile], {
    cwd: gatewayRoot,
    stdio: ['ignore', log, log],
    env: { ...process.env, ...(o.memoryDir ? { MAILMOAT_BENCH_MEMORY_DIR: o.memoryDir } : {}) },
  });
  closeSync(log);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const gone = () =>
    child.exitCode !== null || child.signalCode !== null ? `mailmoat ${o.role} exited at start (${o.logFile}):\n${logTail(o.logFile)}` : undefined;
  if (o.smtpPort) {
    try {
      await waitForListener(o.smtpPort, 30_000, gone);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }
  return {
    role: o.role,
    pid: child.pid!,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timeout = sleep(30_000).then(() => {
        child.kill('SIGKILL');
        return exited;
      });
      return Promise.race([exited, timeout]);
    },
  };
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(-8)
      .map((l) => `  ${l.slice(0, 300)}`)
      .join('\n');
  } catch {
    return '  (no log)';
  }
}
