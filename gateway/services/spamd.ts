// A spamd that mailmoat starts itself: on a unix socket in its folder (no TCP port that a second
// instance or Debian's own spamd could collide with), or on 127.0.0.1:port when a port is given.
//
// Learning as root: spamd refuses to let its children run as root. Without -u they switch their
// effective uid to "nobody" per connection; with -u the whole child drops to that user. Either
// way the Bayes files are written by an unprivileged user, and TELL still answers EX_OK when the
// store is not writable (it only logs "Did nothing"). So we pick that user ourselves (-u), give
// it a state directory it owns (Bayes store and HOME), and check that it can reach that folder
// through every parent directory, failing loudly at start-up instead of silently never learning.
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SpamdClient, type SpamdAddress } from '../../scanners/spamd.ts';
import type { Logger } from '../log.ts';
import { makeServiceDir, startSupervised, type SupervisedService } from './supervisor.ts';

export interface ManagedSpamdOptions {
  dir: string;
  /** Listen on 127.0.0.1:port; without it, on the unix socket <dir>/spamd.sock. */
  port?: number;
  logger: Logger;
  /** Accept TELL (learning from the console's "report spam/ham"). */
  allowTell?: boolean;
  /**
   * DNS and network tests (RBLs, URIBLs, Razor/Pyzor/DCC when installed), as SpamAssassin runs by
   * default. Default false (-L): the tests and the demo have no DNS, and a test with none only times out.
   */
  networkTests?: boolean;
  /** Defaults to /usr/sbin/spamd. */
  binary?: string;
  readyTimeoutMs?: number;
  /** Extra config lines (spamd --cf), e.g. lowered Bayes minimums for a test. */
  extraConfig?: string[];
}

interface Account {
  name: string;
  uid: number;
  gid: number;
}

const HOST = '127.0.0.1';
export const MANAGED_SPAMD_SOCKET = 'spamd.sock';
// A dedicated account if the distribution made one, else the universal fallback.
const CANDIDATE_USERS = ['debian-spamd', 'spamd', 'nobody'];

export async function startManagedSpamd(o: ManagedSpamdOptions & { port?: undefined }): Promise<SupervisedService & { socketPath: string }>;
export async function startManagedSpamd(o: ManagedSpamdOptions & { port: number }): Promise<SupervisedService & { host: string; port: number }>;
export async function startManagedSpamd(o: ManagedSpamdOptions): Promise<SupervisedService & SpamdAddress> {
  const dir = resolve(o.dir);
  const address: SpamdAddress = o.port === undefined ? { socketPath: join(dir, MANAGED_SPAMD_SOCKET) } : { host: HOST, port: o.port };
  const stateDir = join(dir, 'state');
  await makeServiceDir(dir);
  await makeServiceDir(stateDir);
  const account = process.getuid?.() === 0 ? prepareForRoot(dir, stateDir) : undefined;
  const args = [
    ...(o.networkTests ? [] : ['-L']),
    // No per-user preference files: all users share the site config and this Bayes store.
    '-x',
    // The socket belongs to the user mailmoat runs as (spamd creates it before dropping to -u).
    ...('socketPath' in address ? ['--socketpath', address.socketPath, '--socketmode', '0660'] : ['--listen', `${HOST}:${address.port}`, '-A', HOST]),
    '-r',
    join(dir, 'spamd-daemon.pid'),
    // Two children keep memory low (each is a full Perl interpreter with the rule set).
    '-m',
    '2',
    '--min-children',
    '1',
    '--min-spare',
    '1',
    '--max-spare',
    '2',
    '-s',
    'stderr',
    '-H',
    stateDir,
    `--cf=bayes_path ${join(stateDir, 'bayes')}`,
    '--cf=bayes_file_mode 0600',
    ...(account ? ['-u', account.name] : []),
    ...(o.allowTell ? ['--allow-tell'] : []),
    ...(o.extraConfig ?? []).map((line) => `--cf=${line}`),
  ];
  const probeClient = new SpamdClient(address, { timeoutMs: 2000 });
  const service = await startSupervised({
    name: 'spamd',
    command: o.binary ?? '/usr/sbin/spamd',
    args,
    dir,
    logFile: join(dir, 'spamd.log'),
    pidFile: join(dir, 'spamd.pid'),
    cmdlineMarkers: ['spamd', dir],
    probe: () => probeClient.ping(),
    readyTimeoutMs: o.readyTimeoutMs ?? 60_000,
    logger: o.logger,
  });
  o.logger.info({ service: 'spamd', user: account?.name ?? 'current user', bayes: stateDir, networkTests: o.networkTests ?? false }, 'spamd Bayes store');
  return Object.assign(service, address);
}

/** Hands the state dir to the unprivileged account and proves that account can reach it. */
function prepareForRoot(dir: string, stateDir: string): Account {
  const account = findAccount();
  chownSync(stateDir, account.uid, account.gid);
  chmodSync(stateDir, 0o700);
  // Search (x) permission only: the account may pass through, not list or write.
  chmodSync(dir, (statSync(dir).mode & 0o7777) | 0o711);
  const blocked = firstUntraversable(dirname(stateDir), account);
  if (blocked) {
    throw new Error(
      `spamd's Bayes store ${stateDir} is not reachable for user ${account.name}: ${blocked} ` +
        'has no search permission for it, so spamd would silently learn nothing. ' +
        `Put the data dir under a path ${account.name} can traverse (chmod o+x on ${blocked}).`,
    );
  }
  return account;
}

function findAccount(): Account {
  const passwd = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'));
  for (const name of CANDIDATE_USERS) {
    const row = passwd.find((f) => f[0] === name);
    if (row && Number(row[2]) !== 0) return { name, uid: Number(row[2]), gid: Number(row[3]) };
  }
  throw new Error(`no unprivileged account for spamd (looked for ${CANDIDATE_USERS.join(', ')})`);
}

/** The first directory on the way down to `path` that `account` cannot pass through, if any. */
function firstUntraversable(path: string, account: Account): string | undefined {
  const chain: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of chain) {
    const st = statSync(p);
    const bit = st.uid === account.uid ? 0o100 : st.gid === account.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return p;
  }
  return undefined;
}
