// A private OpenLDAP for the console login tests: Debian's slapd (deploy/bootstrap.sh --test
// installs slapd and ldap-utils; the system service is never used) with a slapd.conf and an mdb
// database in a temporary directory, loaded with slapadd, listening on 127.0.0.1 only.
// The tree: dc=example,dc=test with ou=people (inetOrgPerson, clear-text userPassword: slapd
// compares it as is) and ou=groups (groupOfNames), and a service account allowed to search.
// The memberof overlay is on, as Active Directory has it: the groups are added through slapd after
// it starts (slapadd bypasses overlays), so each person's entry gets its memberOf values.
// With `tls` (a certificate from test/support/certs.ts) it also listens on ldaps:// and accepts
// StartTLS on ldap://; slapd runs as the test's user, so it can read the key file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'ldapts';
import { freePort } from './ports.ts';

export const SUFFIX = 'dc=example,dc=test';
export const SERVICE_DN = `cn=mailmoat,${SUFFIX}`;
export const SERVICE_PASSWORD = 'service account password';
const ROOT_DN = `cn=root,${SUFFIX}`;
const ROOT_PASSWORD = 'root password of the test directory';

export interface LdapPerson {
  uid: string;
  password: string;
  mail?: string[];
}

export interface PrivateSlapd {
  url: string;
  port: number;
  /** The ldaps:// port (on 127.0.0.1, which "localhost" names); only with `tls`. */
  ldapsPort?: number;
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  close(): Promise<void>;
}

function ldif(people: LdapPerson[]): string {
  const entries = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example`,
    `dn: ${SERVICE_DN}\nobjectClass: person\ncn: mailmoat\nsn: service\nuserPassword: ${SERVICE_PASSWORD}`,
    `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: groups`,
    ...people.map((p) =>
      [
        `dn: uid=${p.uid},ou=people,${SUFFIX}`,
        'objectClass: inetOrgPerson',
        `uid: ${p.uid}`,
        `cn: ${p.uid}`,
        `sn: ${p.uid}`,
        `userPassword: ${p.password}`,
        ...(p.mail ?? []).map((m) => `mail: ${m}`),
      ].join('\n'),
    ),
  ];
  return `${entries.join('\n\n')}\n`;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

export async function startSlapd(people: LdapPerson[], groups: Record<string, string[]>, tls?: { cert: string; key: string }): Promise<PrivateSlapd> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-ldap-'));
  mkdirSync(path.join(dir, 'db'));
  const conf = path.join(dir, 'slapd.conf');
  writeFileSync(
    conf,
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      `pidfile ${dir}/slapd.pid`,
      ...(tls ? [`TLSCertificateFile ${tls.cert}`, `TLSCertificateKeyFile ${tls.key}`, `TLSCACertificateFile ${tls.cert}`] : []),
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'moduleload memberof',
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw "${ROOT_PASSWORD}"`,
      `directory ${dir}/db`,
      'maxsize 10485760',
      'access to attrs=userPassword by anonymous auth by * none',
      `access to * by dn.exact="${SERVICE_DN}" read by users read by * none`,
      'overlay memberof',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'data.ldif'), ldif(people));
  const added = spawnSync('slapadd', ['-f', conf, '-l', path.join(dir, 'data.ldif')], { encoding: 'utf8' });
  if (added.status !== 0) throw new Error(`slapadd failed: ${added.stderr}`);
  const port = await freePort();
  const ldapsPort = tls ? await freePort() : undefined;
  const urls = [`ldap://127.0.0.1:${port}/`, ...(ldapsPort ? [`ldaps://127.0.0.1:${ldapsPort}/`] : [])];
  let child: ChildProcess | undefined;

  const start = async () => {
    // -d 0: stay in the foreground (the test owns the process) without debug output.
    child = spawn('slapd', ['-f', conf, '-h', urls.join(' '), '-d', '0'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await listening(port)) || (ldapsPort && !(await listening(ldapsPort)))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`slapd did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  await start();
  const root = new Client({ url: `ldap://127.0.0.1:${port}`, timeout: 5000 });
  try {
    await root.bind(ROOT_DN, ROOT_PASSWORD);
    for (const [cn, members] of Object.entries(groups)) {
      await root.add(`cn=${cn},ou=groups,${SUFFIX}`, { objectClass: 'groupOfNames', cn, member: members.map((uid) => `uid=${uid},ou=people,${SUFFIX}`) });
    }
  } finally {
    await root.unbind();
  }
  return {
    url: `ldap://127.0.0.1:${port}`,
    port,
    ldapsPort,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
