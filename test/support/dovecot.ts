// A private Dovecot for the submission AUTH tests: only its auth service, a passwd-file passdb, an
// auth-client socket in a temporary directory, no protocols and no ports. Debian's dovecot-core
// (deploy/bootstrap.sh --test installs it).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface PrivateDovecot {
  /** The auth-client socket. */
  socket: string;
  /** Rewrites the passwd-file (Dovecot reads it again when it changes). */
  setUsers(users: Record<string, string>): void;
  stop(): Promise<void>;
}

export async function startDovecot(users: Record<string, string>): Promise<PrivateDovecot> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-dv-'));
  chmodSync(dir, 0o755); // Dovecot's auth process reads the passwd-file as the dovecot user
  const passwd = path.join(dir, 'passwd');
  const setUsers = (u: Record<string, string>) =>
    writeFileSync(
      passwd,
      Object.entries(u)
        .map(([name, pw]) => `${name}:{PLAIN}${pw}\n`)
        .join(''),
      { mode: 0o644 },
    );
  setUsers(users);
  const conf = path.join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    [
      `base_dir = ${dir}/run`,
      `state_dir = ${dir}/state`,
      `log_path = ${dir}/dovecot.log`,
      `instance_name = mailmoat-${path.basename(dir)}`,
      'protocols = none',
      'ssl = no',
      'auth_mechanisms = plain login',
      // Failures are answered after this delay (Dovecot flushes them on a timer); the shortest it takes.
      'auth_failure_delay = 1 secs',
      `passdb {\n  driver = passwd-file\n  args = username_format=%u ${passwd}\n}`,
      'userdb {\n  driver = static\n  args = uid=65534 gid=65534 home=/nonexistent\n}',
      'service auth {\n  unix_listener auth-client {\n    mode = 0666\n  }\n}',
      'service anvil {\n  chroot =\n}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', conf], { stdio: 'ignore' });
  const socket = path.join(dir, 'run', 'auth-client');
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`dovecot did not start (see ${dir}/dovecot.log)`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    socket,
    setUsers,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
