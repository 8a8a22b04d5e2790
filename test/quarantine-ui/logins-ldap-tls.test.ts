// Console logins from an LDAP directory over TLS, as most real directories (AD) are reached: a
// private slapd (test/support/slapd.ts) with a certificate for "localhost" from test/support/certs.ts
// (self-signed: the certificate is its own CA), on ldaps:// and with StartTLS on ldap://. A
// certificate the console cannot trust, or one for another name, makes the directory
// "unavailable": the password is never sent and nobody logs in. A relay between console and
// directory (tap) shows which bytes went out.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startHarness, type Harness } from './harness.ts';
import { SUFFIX, startSlapd, type PrivateSlapd } from '../support/slapd.ts';
import { makeCert } from '../support/certs.ts';
import { createLogger } from '../../gateway/log.ts';
import { DIRECTORY_UNAVAILABLE } from '../../quarantine-ui/lib/login.ts';

const PEOPLE = [{ uid: 'root', password: 'root directory password' }];
const GROUPS = { 'mail-root': ['root'] };
const ROLE_MAPPING = [{ group: `cn=mail-root,ou=groups,${SUFFIX}`, role: 'superadmin' }];

const PASSWORD_BYTES = Buffer.from('root directory password');

/** A TCP relay to 127.0.0.1:port that keeps every byte the console sent: was the password among them? */
async function tap(port: number) {
  const sent: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (b: Buffer) => {
      sent.push(b);
      upstream.write(b);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    passwordSent: () => Buffer.concat(sent).includes(PASSWORD_BYTES),
    bytesSent: () => Buffer.concat(sent).length,
    close: () => (sockets.forEach((s) => s.destroy()), new Promise((r) => server.close(r))),
  };
}

interface Console {
  h: Harness;
  logs: { level: number; msg: string }[];
}

async function consoleWith(ldap: Record<string, unknown>): Promise<Console> {
  const logs: Console['logs'] = [];
  const logger = createLogger({ format: 'json', out: { write: (line: string) => logs.push(JSON.parse(line)) } });
  const h = await startHarness({
    config: {
      console: {
        auth: {
          ldap: { bindDN: `uid={username},ou=people,${SUFFIX}`, baseDN: SUFFIX, timeoutMs: 2000, connectTimeoutMs: 1000, ...ldap },
          roleMapping: ROLE_MAPPING,
        },
      },
    },
    deps: { logger },
  });
  return { h, logs };
}

async function loginWorks({ h }: Console) {
  const c = new Client(h.app);
  const res = await c.login('root', 'root directory password');
  expect(res.statusCode, res.body).toBe(303);
  expect((await c.get('/users')).statusCode).toBe(200);
  expect(await h.accounts.byName('root')).toMatchObject({ role: 'superadmin', authSource: 'ldap' });
}

/** Refused as "unavailable", with the audit row naming the TLS failure; no account is made. */
async function refusedAsUnavailable({ h }: Console, why: RegExp) {
  const c = new Client(h.app);
  const res = await c.login('root', 'root directory password');
  expect(res.statusCode, res.body).toBe(401);
  expect(res.body).toContain(DIRECTORY_UNAVAILABLE);
  expect((await c.get('/quarantine')).statusCode).toBe(303);
  expect(await h.accounts.byName('root')).toBeUndefined();
  const row = (await h.audit.list({ action: 'login', limit: 1 })).rows[0];
  expect(row).toMatchObject({ target: 'root', outcome: 'denied' });
  expect(row!.detail).toMatch(why);
}

describe('LDAP logins over TLS', () => {
  const good = makeCert(['localhost']);
  const byAddress = makeCert(['127.0.0.1']); // another name than "localhost"
  let slapd: PrivateSlapd;
  let slapdByAddress: PrivateSlapd;
  const consoles: Console[] = [];
  const open = async (ldap: Record<string, unknown>) => {
    const c = await consoleWith(ldap);
    consoles.push(c);
    return c;
  };
  beforeAll(async () => {
    [slapd, slapdByAddress] = await Promise.all([startSlapd(PEOPLE, GROUPS, good), startSlapd(PEOPLE, GROUPS, byAddress)]);
  });
  afterAll(async () => {
    for (const c of consoles) await c.h.close();
    await slapd?.close();
    await slapdByAddress?.close();
  });

  it("ldaps:// with the directory's CA in tls.caFile logs in, the password only inside TLS", async () => {
    const t = await tap(slapd.ldapsPort!);
    await loginWorks(await open({ url: `ldaps://localhost:${t.port}`, tls: { caFile: good.cert } }));
    expect(t.passwordSent()).toBe(false); // only inside TLS
    await t.close();
  });

  it('ldap:// with startTls and the CA logs in, the password only after the upgrade', async () => {
    const t = await tap(slapd.port);
    await loginWorks(await open({ url: `ldap://localhost:${t.port}`, startTls: true, tls: { caFile: good.cert } }));
    expect(t.passwordSent()).toBe(false); // only after the upgrade
    await t.close();
  });

  it('ldaps:// to a certificate the system does not trust is "unavailable", never a login', async () => {
    const t = await tap(slapd.ldapsPort!);
    await refusedAsUnavailable(await open({ url: `ldaps://localhost:${t.port}` }), /^ldap unavailable: [a-z ]+: self-signed certificate/);
    expect(t.bytesSent()).toBeGreaterThan(0); // a TLS hello went out…
    expect(t.passwordSent()).toBe(false); // …and nothing after it
    await t.close();
  });

  it('StartTLS to a certificate the system does not trust is "unavailable" before any bind', async () => {
    const t = await tap(slapd.port);
    await refusedAsUnavailable(await open({ url: `ldap://localhost:${t.port}`, startTls: true }), /^ldap unavailable: [a-z ]+: self-signed certificate/);
    expect(t.passwordSent()).toBe(false);
    await t.close();
  });

  it('a trusted certificate for another host name is "unavailable", over ldaps:// and StartTLS; by its own name it works', async () => {
    const mismatch = /^ldap unavailable: [a-z ]+: Hostname\/IP does not match certificate's altnames/;
    await refusedAsUnavailable(await open({ url: `ldaps://localhost:${slapdByAddress.ldapsPort}`, tls: { caFile: byAddress.cert } }), mismatch);
    await refusedAsUnavailable(await open({ url: `ldap://localhost:${slapdByAddress.port}`, startTls: true, tls: { caFile: byAddress.cert } }), mismatch);
    // StartTLS checks the url's host, not a default of "localhost": the same certificates by the right name
    await loginWorks(await open({ url: `ldap://127.0.0.1:${slapdByAddress.port}`, startTls: true, tls: { caFile: byAddress.cert } }));
    await refusedAsUnavailable(
      await open({ url: `ldap://127.0.0.1:${slapd.port}`, startTls: true, tls: { caFile: good.cert } }),
      /^ldap unavailable: [a-z ]+: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1/,
    );
  });

  it('tls.rejectUnauthorized: false logs in to an untrusted certificate, with a warning logged at start (as plain ldap:// is)', async () => {
    const quiet = await open({ url: `ldaps://localhost:${slapd.ldapsPort}`, tls: { caFile: good.cert } });
    expect(quiet.logs.filter((l) => l.level >= 40)).toEqual([]);
    const c = await open({ url: `ldaps://localhost:${slapdByAddress.ldapsPort}`, tls: { rejectUnauthorized: false } });
    expect(c.logs).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('console.auth.ldap.tls.rejectUnauthorized is false') }));
    await loginWorks(c);
    const t = await tap(slapd.port);
    const plain = await open({ url: `ldap://localhost:${t.port}` });
    await loginWorks(plain);
    expect(t.passwordSent()).toBe(true); // what the warning says, and proof that tap() sees a password
    await t.close();
    expect(plain.logs).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: expect.stringContaining('plain ldap:// without startTls sends every console password to the directory in clear'),
      }),
    );
  });
});
