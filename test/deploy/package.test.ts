// The Debian package as an administrator installs it: `npm run package` builds it (deploy/debian/
// build.sh, here without compression and cached by content hash under var/), and the files it
// unpacks run on their own: the Node inside it, the production npm packages, /usr/bin/mailmoat
// and the shipped config.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
// Nothing of the repo's node_modules or of a system Node on the way: the package must bring its own.
const BARE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: os.tmpdir(), LANG: 'C.UTF-8' };

let deb: string;
let root: string;

beforeAll(() => {
  const out = execFileSync('sh', [path.join(REPO, 'deploy/debian/build.sh'), path.join(REPO, 'var/package-test')], {
    encoding: 'utf8',
    env: { ...process.env, MAILMOAT_DEB_COMPRESSION: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  deb = out.trim().split('\n').at(-1)!;
  root = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-deb-root-'));
  execFileSync('dpkg-deb', ['-x', deb, root]);
}, 300_000);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const mailmoat = (...args: string[]) => execFileSync(path.join(root, 'usr/bin/mailmoat'), args, { encoding: 'utf8', env: BARE_ENV });

describe('the Debian package', () => {
  it('is named mailmoat_<version>_<arch>.deb and declares what it needs', () => {
    const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
    expect(path.basename(deb)).toBe(`mailmoat_${version}_${arch}.deb`);
    const field = (name: string) => execFileSync('dpkg-deb', ['-f', deb, name], { encoding: 'utf8' }).trim();
    expect(field('Version')).toBe(version);
    expect(field('Depends')).toMatch(/\badduser\b/);
    expect(field('Recommends')).toMatch(/redis-server.*clamav-daemon.*spamd/);
    const control = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-deb-control-'));
    try {
      execFileSync('dpkg-deb', ['-e', deb, control]);
      expect(readFileSync(path.join(control, 'conffiles'), 'utf8').trim().split('\n')).toEqual(['/etc/mailmoat/mailmoat.yaml', '/etc/logrotate.d/mailmoat']);
      for (const script of ['postinst', 'prerm', 'postrm']) execFileSync('sh', ['-n', path.join(control, script)]);
      expect(readFileSync(path.join(control, 'postinst'), 'utf8')).toMatch(/adduser --system --group --home \/var\/lib\/mailmoat/);
      expect(readFileSync(path.join(control, 'postrm'), 'utf8')).toMatch(/purge[\s\S]*rm -rf \/var\/lib\/mailmoat \/etc\/mailmoat[\s\S]*deluser/);
    } finally {
      rmSync(control, { recursive: true, force: true });
    }
  });

  it('runs on the Node 24 inside it: mailmoat check-config accepts the shipped config', () => {
    expect(execFileSync(path.join(root, 'usr/lib/mailmoat/node_modules/.bin/node'), ['--version'], { encoding: 'utf8', env: BARE_ENV })).toMatch(/^v24\./);
    const config = path.join(root, 'etc/mailmoat/mailmoat.yaml');
    expect(mailmoat('check-config', config)).toContain(`${config}: OK`);
    expect(mailmoat('--version')).toContain(version);
  });

  it('ships a hardened unit for one machine and for each role, all running /usr/bin/mailmoat', () => {
    const dir = path.join(root, 'lib/systemd/system');
    const units = readdirSync(dir).sort();
    expect(units).toEqual(['mailmoat-console.service', 'mailmoat-migrate.service', 'mailmoat-smtp.service', 'mailmoat-worker.service', 'mailmoat.service']);
    const execStart = Object.fromEntries(units.map((u) => [u, /^ExecStart=(.*)$/m.exec(readFileSync(path.join(dir, u), 'utf8'))![1]]));
    expect(execStart).toEqual({
      'mailmoat.service': '/usr/bin/mailmoat start --config /etc/mailmoat/mailmoat.yaml',
      'mailmoat-smtp.service': '/usr/bin/mailmoat smtp --config /etc/mailmoat/mailmoat.yaml',
      'mailmoat-worker.service': '/usr/bin/mailmoat worker --config /etc/mailmoat/mailmoat.yaml',
      'mailmoat-console.service': '/usr/bin/mailmoat console --config /etc/mailmoat/mailmoat.yaml',
      'mailmoat-migrate.service': '/usr/bin/mailmoat migrate --config /etc/mailmoat/mailmoat.yaml',
    });
    for (const u of units) {
      const text = readFileSync(path.join(dir, u), 'utf8');
      expect(text, u).toMatch(/^User=mailmoat$/m);
      expect(text, u).toMatch(/^ProtectSystem=strict$/m);
      expect(text, u).toMatch(/^ReadWritePaths=\/var\/lib\/mailmoat$/m);
    }
  });
});
