// The peers mailmoat is measured against in the same run (issue 16): a private Postfix relay and
// Haraka with smtp_forward, both relaying to an smtp-sink of their own. Nothing system-wide is
// touched: each has its own config and queue under the run dir, listens on a free loopback port
// and is stopped at the end.
//
// Postfix: two instances from the same Debian package (never its system service): "relay"
// (relayhost = the sink, mynetworks 127.0.0.0/8) for end to end, and "accept", where every
// message is put on hold after its 250 (smtpd_end_of_data_restrictions = static:HOLD): spooled
// and fsync'd like mailmoat's smtp role without workers, never delivered; the hold queue is
// emptied after each run. No chroot, no TLS, no reverse DNS for the load generator's loopback
// address (smtpd_peername_lookup = no), logging to a file of the instance.
//
// Haraka: `haraka -c DIR` with rcpt_to.in_host_list (bench.test) and queue/smtp_forward to the
// sink: its 250 comes after the sink's, so its accept rate is its relay rate. A one-line plugin
// answers its reverse DNS lookup for the same reason as Postfix's setting above. Single process
// (smtp.ini nodes unset), as mailmoat `start` is.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../../gateway/services/managed.ts';
import { startSink, waitForListener, type Sink } from './postfix.ts';

const run = promisify(execFile);
const POSTFIX = '/usr/sbin/postfix';
const POSTSUPER = '/usr/sbin/postsuper';

export interface PeerServer {
  readonly name: string;
  readonly port: number;
  readonly sink: Sink;
  /** Root pids of the server's process tree (Postfix's master, Haraka's main process). */
  pids(): number[];
  stop(): Promise<void>;
}

export interface PostfixInstance extends PeerServer {
  /** Messages on hold (the accept instance: every accepted message). */
  held(): number;
  /** Deletes every queued message. */
  clear(): Promise<void>;
}

export function postfixPresent(): boolean {
  return existsSync(POSTFIX) && existsSync(POSTSUPER);
}

/** The Haraka package's CLI, or undefined when the devDependency is not installed. */
export function harakaBin(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('Haraka/package.json');
    const bin = join(dirname(pkg), 'bin', 'haraka');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

const MASTER_CF = (port: number) =>
  [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'local unix - n n - - local',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ].join('\n') + '\n';

export async function startPostfix(runDir: string, kind: 'relay' | 'accept'): Promise<PostfixInstance> {
  const dir = join(runDir, `postfix-${kind}`);
  const etc = join(dir, 'etc');
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  for (const d of [etc, queue, data]) mkdirSync(d, { recursive: true });
  chownSync(data, Number((await run('id', ['-u', 'postfix'])).stdout.trim()), -1);
  const sink = await startSink(await freePort());
  const port = await freePort();
  const main = {
    compatibility_level: '3.6',
    queue_directory: queue,
    data_directory: data,
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    myhostname: `postfix-${kind}.bench.test`,
    mydomain: 'postfix.bench.test',
    mydestination: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    relayhost: `[127.0.0.1]:${sink.port}`,
    smtpd_peername_lookup: 'no',
    maillog_file: join(dir, 'maillog'),
    maillog_file_prefixes: dir,
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    biff: 'no',
    smtpd_tls_security_level: 'none',
    smtp_tls_security_level: 'none',
    default_process_limit: '200',
    ...(kind === 'accept' ? { smtpd_end_of_data_restrictions: 'check_client_access static:HOLD' } : {}),
  };
  writeFileSync(
    join(etc, 'main.cf'),
    Object.entries(main)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') + '\n',
  );
  writeFileSync(join(etc, 'master.cf'), MASTER_CF(port));
  const masterPid = () => {
    try {
      return [Number(readFileSync(join(queue, 'pid', 'master.pid'), 'utf8').trim())];
    } catch {
      return [];
    }
  };
  const stop = async () => {
    await run(POSTFIX, ['-c', etc, 'stop']).catch(() => undefined);
    await sink.stop();
  };
  try {
    await run(POSTFIX, ['-c', etc, 'start']);
    await waitForListener(port, 10_000, () => undefined);
  } catch (err) {
    await stop();
    const log = existsSync(main.maillog_file) ? readFileSync(main.maillog_file, 'utf8').split('\n').slice(-5).join(' | ') : '';
    throw new Error(`postfix (${kind}) did not start: ${err instanceof Error ? err.message : String(err)} ${log}`, { cause: err });
  }
  return {
    name: `postfix-${kind}`,
    port,
    sink,
    pids: masterPid,
    held: () => countFiles(join(queue, 'hold')),
    clear: async () => {
      await run(POSTSUPER, ['-c', etc, '-d', 'ALL']).catch(() => undefined);
    },
    stop,
  };
}

function countFiles(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
  } catch {
    return 0;
  }
}

export async function startHaraka(runDir: string, bin: string): Promise<PeerServer> {
  const dir = join(runDir, 'haraka');
  const config = join(dir, 'config');
  mkdirSync(config, { recursive: true });
  mkdirSync(join(dir, 'plugins'), { recursive: true });
  const sink = await startSink(await freePort());
  const port = await freePort();
  // connection.ini carries the greeting texts Haraka needs; the rest are defaults.
  copyFileSync(join(dirname(bin), '..', 'config', 'connection.ini'), join(config, 'connection.ini'));
  const files: Record<string, string> = {
    'smtp.ini': `listen=127.0.0.1:${port}\n`,
    plugins: 'bench_rdns\nrcpt_to.in_host_list\nqueue/smtp_forward\n',
    host_list: 'bench.test\n',
    'smtp_forward.ini': `host=127.0.0.1\nport=${sink.port}\nenable_outbound=false\n`,
    me: 'haraka.bench.test\n',
    'log.ini': '[main]\nlevel=info\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(config, name), text);
  writeFileSync(join(dir, 'plugins', 'bench_rdns.js'), "exports.hook_lookup_rdns = (next) => next(OK, 'client.sender.test')\n");
  const log = openSync(join(runDir, 'haraka.log'), 'a');
  const child: ChildProcess = spawn(process.execPath, [bin, '-c', dir], { stdio: ['ignore', log, log] });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
    await sink.stop();
  };
  try {
    await waitForListener(port, 20_000, () => (child.exitCode !== null ? `haraka exited (${child.exitCode}); see ${join(runDir, 'haraka.log')}` : undefined));
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: 'haraka', port, sink, pids: () => (child.pid ? [child.pid] : []), stop };
}
