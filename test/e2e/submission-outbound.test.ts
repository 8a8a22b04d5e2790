// Issue 15 point 4: outbound holds belong to the sender's domain. Through the real gateway (the
// submission listener with STARTTLS and AUTH, the real clamd and spamd, inline verdicts on Redis):
// a virus from an authenticated sender is refused in session with a sentence naming the virus,
// and a message the outbound scan holds instead is visible to the sender domain's admin (and the
// sender), not to another domain's admin. The same virus from the MX is still only quarantined.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { EICAR } from '../support/eicar.ts';
import { startFakeDns, type FakeDns } from '../support/fake-dns.ts';
import { mailboxMessages, sendRaw, sendWith, startTestGateway, waitForStatus, type SendResult, type TestGateway } from '../support/gateway.ts';
import { Client, PASSWORD } from '../quarantine-ui/harness.ts';
import { openAccountStore } from '../../gateway/store/accounts.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { silentLogger } from '../../gateway/log.ts';
import { runConsole } from '../../gateway/roles.ts';
import { buildConsole } from '../../quarantine-ui/app.ts';
import { makeCert } from '../support/certs.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

const head = (subject: string, to: string) =>
  `From: alice@a.test\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@a.test>\r\nMIME-Version: 1.0\r\n`;
const withEicar = (subject: string, to: string) =>
  `${head(subject, to)}Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n` +
  `--b\r\nContent-Type: application/octet-stream; name="eicar.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--b--\r\n`;
const plain = (subject: string, to: string, body: string) => `${head(subject, to)}Content-Type: text/plain\r\n\r\n${body}\r\n`;

describe('outbound: mail from an authenticated sender', () => {
  let gw: TestGateway;
  let dns: FakeDns;
  let consoleApp: FastifyInstance;
  let closeConsole: () => Promise<void>;

  beforeAll(async () => {
    // a.test publishes SPF -all and DMARC p=reject: an authenticated user's mail from a laptop
    // anywhere fails both, and must not be held as spoofed for it. Other names: NXDOMAIN.
    dns = await startFakeDns({ 'a.test': { TXT: ['v=spf1 -all'] }, '_dmarc.a.test': { TXT: ['v=DMARC1; p=reject'] } });
    gw = await startTestGateway({
      domains: { 'a.test': {}, 'b.test': {} },
      dns,
      overrides: {
        tls: { certificates: [makeCert(['mx.gateway.test'])] },
        // submission.refuse is left at its default (virus, banned).
        submission: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
        inline: { enabled: true, deadlineMs: 20_000 },
      },
    });
    const accounts = openAccountStore(gw.stores.sql);
    const hash = await hashPassword(PASSWORD, { logN: 10, r: 8, p: 1 });
    await accounts.create({ username: 'alice@a.test', role: 'user', addresses: ['alice@a.test'], passwordHash: hash });
    await accounts.create({ username: 'admin-a', role: 'domainadmin', domains: ['a.test'], passwordHash: hash });
    await accounts.create({ username: 'admin-b', role: 'domainadmin', domains: ['b.test'], passwordHash: hash });
    const running = await runConsole(gw.config, gw.stores, gw.queue, gw.endpoints, silentLogger(), { listen: false });
    consoleApp = await buildConsole(running.deps);
    await consoleApp.ready();
    closeConsole = async () => {
      await consoleApp.close();
      await running.close();
    };
  });
  afterAll(async () => {
    await closeConsole?.();
    await gw?.stop();
    await dns?.close();
  });

  /** Submits as alice@a.test over STARTTLS + AUTH PLAIN (nodemailer); a refusal comes back as a result. */
  function submit(to: string[], raw: string): Promise<SendResult> {
    const transport = createTransport({
      host: '127.0.0.1',
      port: gw.front.ports.submission!,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@a.test', pass: PASSWORD },
    });
    return sendWith(transport, { envelope: { from: 'alice@a.test', to }, raw });
  }

  let refusedId = '';
  const lastRow = async () => (await gw.stores.store.list({ limit: 1 }))[0]!;

  async function loggedIn(username: string): Promise<Client> {
    const c = new Client(consoleApp);
    const res = await c.login(username);
    expect(res.statusCode).toBe(303);
    return c;
  }

  it('a virus is refused in session with a sentence naming the virus; nothing is delivered or kept', async () => {
    const res = await submit(['carol@b.test', 'friend@elsewhere.test'], withEicar('outbound virus', 'carol@b.test'));
    // The name is clamd's (the suite's clamd has its own EICAR signature; a stock one says Eicar-Test-Signature).
    expect(res.response).toMatch(/^554 5\.7\.1 Message refused: contains the virus \S*Eicar\S*$/i);
    const row = await lastRow();
    expect(row).toMatchObject({ status: 'refused', verdict: 'virus', submittedBy: 'alice@a.test', mailFrom: 'alice@a.test' });
    refusedId = row.id;
    expect(await gw.stores.spool.readEnvelope(row.id)).toBeUndefined();
    expect(await gw.stores.quarantine.size(row.id)).toBeUndefined();
    expect(await mailboxMessages(gw, 'carol@b.test')).toHaveLength(0);
  });

  it('the same virus from the MX (no authentication) is quarantined as before, not refused', async () => {
    const res = await sendRaw(gw.smtpPort, { from: 'mallory@sender.test', to: ['carol@b.test'] }, withEicar('inbound virus', 'carol@b.test'));
    expect(res.code).toBe(250);
    await waitForStatus(gw, res.id!, ['quarantined']);
    expect((await gw.stores.store.get(res.id!))?.submittedBy).toBeNull();
  });

  it('the same sender over the MX, unauthenticated, is still judged by a.test’s DMARC (held as spoofed)', async () => {
    const res = await sendRaw(gw.smtpPort, { from: 'alice@a.test', to: ['carol@b.test'] }, plain('forged', 'carol@b.test', 'hello'));
    expect(res.code).toBe(250);
    await waitForStatus(gw, res.id!, ['quarantined']);
    expect((await gw.stores.store.get(res.id!))?.verdict).toBe('spoofed');
  });

  it('clean submitted mail is delivered (not judged by the sender domain’s SPF/DMARC), recorded as submitted by the account', async () => {
    const res = await submit(['carol@b.test'], plain('outbound clean', 'carol@b.test', 'hello'));
    expect(res.code).toBe(250);
    await waitForStatus(gw, res.id!, ['delivered']);
    expect((await gw.stores.store.get(res.id!))?.submittedBy).toBe('alice@a.test');
    expect((await mailboxMessages(gw, 'carol@b.test')).map((m) => m.toString('latin1')).some((m) => m.includes('Subject: outbound clean'))).toBe(true);
  });

  it('a held outbound message is the sender domain’s: its admin and the sender see it, another domain’s admin does not', async () => {
    // High-scoring spam is held (the default policy), not refused: accepted, then quarantined.
    const res = await submit(['friend@elsewhere.test'], plain('outbound spam', 'friend@elsewhere.test', GTUBE));
    expect(res.code).toBe(250);
    await waitForStatus(gw, res.id!, ['quarantined']);
    const id = res.id!;

    const adminA = await loggedIn('admin-a');
    expect((await adminA.get('/quarantine')).body).toContain(`/messages/${id}`);
    const view = await adminA.get(`/messages/${id}`);
    expect(view.statusCode).toBe(200);
    expect(view.body).toContain('Submitted by');
    expect(view.body).toContain('alice@a.test');
    // The recipients stay outside a.test's scope: shown as a count, not by name.
    expect(view.body).toContain('1 recipient(s) outside your scope');
    // Visible is not actionable: releasing still needs every recipient in scope.
    expect(view.body).toContain('only an administrator of all of them can act on it');
    expect((await adminA.get(`/log?id=${id}`)).body).toContain(`/messages/${id}`);
    // The refused virus is in a.test's message log too, with the reply the sender got.
    const refusedLog = (await adminA.get(`/log?id=${refusedId}`)).body;
    expect(refusedLog).toContain(`/messages/${refusedId}`);
    expect(refusedLog).toMatch(/contains the virus \S*Eicar/i);

    const sender = await loggedIn('alice@a.test');
    expect((await sender.get(`/messages/${id}`)).statusCode).toBe(200);

    const adminB = await loggedIn('admin-b');
    expect((await adminB.get('/quarantine')).body).not.toContain(`/messages/${id}`);
    expect((await adminB.get(`/messages/${id}`)).statusCode).toBe(404);
    expect((await adminB.get(`/log?id=${id}`)).body).not.toContain(`/messages/${id}`);
  });
});
