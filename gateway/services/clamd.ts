// A clamd that mailmoat starts itself, with a clamd.conf written for the gateway's needs:
// fail-closed limits (AlertExceedsMax) and one size limit for stream, scan and file, so that
// "too big" is always reported (as unscannable) instead of being cut short and called clean.
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClamdClient } from '../../scanners/clamd.ts';
import type { Logger } from '../log.ts';
import { assertSocketPathFits, makeServiceDir, startSupervised, type SupervisedService } from './supervisor.ts';

export interface ManagedClamdOptions {
  dir: string;
  databaseDir: string;
  logger: Logger;
  /**
   * StreamMaxLength = MaxScanSize = MaxFileSize, in bytes (default 100 MiB). Give clients the
   * returned `maxStreamBytes` so they stop at the same point clamd would.
   */
  maxBytes?: number;
  /** Report encrypted archives/documents (we cannot look inside them). Off by default. */
  alertEncrypted?: boolean;
  /** Defaults to /usr/sbin/clamd. */
  binary?: string;
  /** A full freshclam database takes tens of seconds to load. */
  readyTimeoutMs?: number;
}

const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;

export async function startManagedClamd(o: ManagedClamdOptions): Promise<SupervisedService & { socketPath: string; maxStreamBytes: number }> {
  await makeServiceDir(o.dir);
  await makeServiceDir(join(o.dir, 'tmp'));
  const socketPath = join(o.dir, 'clamd.sock');
  assertSocketPathFits(socketPath);
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  const confPath = join(o.dir, 'clamd.conf');
  await writeFile(confPath, clamdConf({ ...o, socketPath, maxBytes }), { mode: 0o600 });
  const probeClient = new ClamdClient({ socketPath }, { timeoutMs: 2000 });
  const service = await startSupervised({
    name: 'clamd',
    command: o.binary ?? '/usr/sbin/clamd',
    args: ['-c', confPath],
    dir: o.dir,
    logFile: join(o.dir, 'clamd.out.log'),
    extraLogFiles: [join(o.dir, 'clamd.log')],
    pidFile: join(o.dir, 'clamd.pid'),
    cmdlineMarkers: ['clamd', confPath],
    probe: () => probeClient.ping(),
    readyTimeoutMs: o.readyTimeoutMs ?? 180_000,
    logger: o.logger,
  });
  return Object.assign(service, { socketPath, maxStreamBytes: maxBytes });
}

function clamdConf(o: ManagedClamdOptions & { socketPath: string; maxBytes: number }): string {
  return [
    '# Written by mailmoat at every start; edits here are overwritten.',
    `LocalSocket ${o.socketPath}`,
    'LocalSocketMode 600',
    // No TCPSocket: nothing listens on the network.
    'Foreground yes',
    // No User line: as root clamd keeps running as root, which needs no clamav-user setup
    // (the socket and temp dir are private to this data dir anyway).
    `DatabaseDirectory ${o.databaseDir}`,
    `TemporaryDirectory ${join(o.dir, 'tmp')}`,
    `LogFile ${join(o.dir, 'clamd.log')}`,
    'LogTime yes',
    'LogFileMaxSize 10M',
    'LogRotate yes',
    // clamd's default (AlertExceedsMax no) reports a file over a limit as OK: fail open.
    'AlertExceedsMax yes',
    `AlertEncrypted ${o.alertEncrypted ? 'yes' : 'no'}`,
    `StreamMaxLength ${o.maxBytes}`,
    `MaxScanSize ${o.maxBytes}`,
    `MaxFileSize ${o.maxBytes}`,
    '',
  ].join('\n');
}

/**
 * The freshclam database when there is one; otherwise the given test-signature folder, with a
 * warning nobody can miss, because such a clamd detects nothing but test markers.
 */
export function chooseClamavDatabase(o: { logger: Logger; fallbackDir: string; systemDir?: string }): string {
  const systemDir = o.systemDir ?? '/var/lib/clamav';
  let entries: string[] = [];
  try {
    entries = readdirSync(systemDir);
  } catch {
    // Missing or unreadable: same as empty.
  }
  if (entries.some((f) => /\.(cvd|cld|cud)$/.test(f))) return systemDir;
  o.logger.warn(
    { systemDir, fallbackDir: o.fallbackDir },
    'no ClamAV database found: clamd loads TEST SIGNATURES ONLY and will not detect real malware (run freshclam)',
  );
  process.stderr.write(
    [
      '',
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      `!! WARNING: no ClamAV database in ${systemDir}.`,
      `!! clamd is loading the TEST signatures from ${o.fallbackDir}.`,
      '!! It detects ONLY test markers, NOT real malware. Run freshclam first.',
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      '',
      '',
    ].join('\n'),
  );
  return o.fallbackDir;
}
