// Issue 18, the seed providers: one test per provider style, each a real gateway on loopback
// whose config is the README's worked example for that style, read from README.md itself (so
// the README's configs are proven to load and to do what it says). The only changes are the ones
// loopback forces: listeners bind 127.0.0.1 on a free port, the README's documentation addresses
// become loopback ones, the Dovecot socket is a private Dovecot's, and the relay hosts' names
// resolve (through the fake DNS) to scripted peers on loopback.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { RawSmtp, saslPlain } from '../../support/smtp-client.ts';
import { startFakeDns, type FakeDns, type FakeZone } from '../../support/fake-dns.ts';
import { mailboxMessages, sendWith, startTestGateway, waitFor, waitForStatus, type SendResult, type TestGateway } from '../../support/gateway.ts';
import { startScriptedPeer, type ScriptedPeer } from '../../support/scripted-peer.ts';
import { startDovecot } from '../../support/dovecot.ts';
import { openAccountStore } from '../../../gateway/store/accounts.ts';
import { hashPassword } from '../../../gateway/passwords.ts';
import { makeCert } from '../../support/certs.ts';

type Obj = Record<string, unknown>;

/** The README's worked example whose comment line mentions `style`, as parsed YAML. */
function readmeExample(style: string): Obj {
  const readme = readFileSync(path.join(import.meta.dirname, '../../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Outbound relay'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  const examples = block.split(/\n(?=# )/);
  const text = examples.find((e) => e.split('\n')[0]!.includes(`(${style} style)`));
  if (!text) throw new Error(`README has no worked example for ${style}`);
  return parseYaml(text) as Obj;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Objects merge key by key; anything else (arrays too) is replaced. */
function merge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  return out;
}

/** Loopback for the README's listeners: 127.0.0.1 and a free port, each listener otherwise as written. */
function onLoopback(example: Obj): Obj {
  const sub = example.submission as Obj;
  const listeners = (sub.listeners as Obj[]).map((l) => ({ ...l, host: '127.0.0.1', port: 0 }));
  return { ...example, submission: { ...sub, listeners } };
}

/** What every test gateway adds: a certificate ("add tls.certificates in every case"), no trusted loopback, no MX-port checks that would need DNS for 127.0.0.1. */
const BASE = {
  tls: { certificates: [makeCert(['mx.gateway.test'])] },
  checks: { trusted: { networks: [] }, rdns: { enabled: false }, spf: { enabled: false }, helo: { enabled: false } },
};

const message = (subject: string, from: string, to: string, extra = '') =>
  `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@provider.test>\r\nMIME-Version: 1.0\r\n${extra || 'Content-Type: text/plain\r\n\r\nhello\r\n'}`;
const withAttachment = (subject: string, from: string, to: string, filename: string) =>
  message(
    subject,
    from,
    to,
    `Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n` +
      `--b\r\nContent-Type: application/octet-stream; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from('just some bytes').toString('base64')}\r\n--b--\r\n`,
  );

/** Greeting, EHLO, STARTTLS, EHLO again, and AUTH PLAIN when credentials are given. */
async function tlsSession(
  port: number,
  o: { helo?: string; auth?: [string, string]; localAddress?: string } = {},
): Promise<{ c: RawSmtp; ehlo: string[]; auth?: number }> {
  const c = await RawSmtp.connect(port, o.localAddress ? { localAddress: o.localAddress } : {});
  await c.hello();
  await c.starttls();
  const ehlo = (await c.cmd(`EHLO ${o.helo ?? 'pc1.customer.test'}`)).lines;
  const auth = o.auth ? (await c.cmd(`AUTH PLAIN ${saslPlain(...o.auth)}`)).code : undefined;
  return { c, ehlo, auth };
}

/** Submits with nodemailer (STARTTLS or implicit TLS, AUTH); a refusal comes back as a result. */
function submit(port: number, o: { secure?: boolean; user: string; pass: string; from: string; to: string[]; raw: string }): Promise<SendResult> {
  const t = createTransport({
    host: '127.0.0.1',
    port,
    secure: o.secure ?? false,
    requireTLS: !o.secure,
    tls: { rejectUnauthorized: false },
    auth: { user: o.user, pass: o.pass },
    name: 'pc1.customer.test',
  });
  return sendWith(t, { envelope: { from: o.from, to: o.to }, raw: o.raw });
}

async function addAccount(gw: TestGateway, username: string, password: string): Promise<void> {
  await openAccountStore(gw.stores.sql).create({
    username,
    role: 'user',
    addresses: [username],
    passwordHash: await hashPassword(password, { logN: 10, r: 8, p: 1 }),
  });
}

// Each test starts its own world; whatever it started is stopped after it.
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function world(o: { example: Obj; overrides?: Obj; zone?: FakeZone; domains?: Record<string, Obj> }): Promise<{ gw: TestGateway; dns: FakeDns }> {
  const dns = await startFakeDns(o.zone ?? {});
  cleanups.push(() => dns.close());
  const gw = await startTestGateway({
    dns,
    domains: o.domains ?? { 'provider.test': {} },
    overrides: merge(merge(BASE, onLoopback(o.example)), o.overrides ?? {}),
  });
  cleanups.push(() => gw.stop());
  return { gw, dns };
}
async function peer(script: Parameters<typeof startScriptedPeer>[0] = {}): Promise<ScriptedPeer> {
  const p = await startScriptedPeer(script);
  cleanups.push(() => p.close());
  return p;
}

describe('seed providers, each with the README worked example', () => {
  it('Gconnect: AUTH relay with mailbox passwords, 30 MB, 30 recipients, an XBL-listed PC refused with the list’s text, .pif .bat .exe .scr refused in session', async () => {
    const dovecot = await startDovecot({ 'kees@provider.test': 'mailbox pw' });
    cleanups.push(() => dovecot.stop());
    const example = readmeExample('Gconnect');
    (example.submission as Obj).backend = { ...((example.submission as Obj).backend as Obj), socket: dovecot.socket };
    const { gw } = await world({
      example,
      // 127.0.0.78 is an infected PC: the (fake) XBL lists it with its own text.
      zone: { '78.0.0.127.xbl.example-dnsbl.net': { A: ['127.0.0.4'], TXT: ['https://www.spamhaus.org/query/ip/127.0.0.78 (XBL)'] } },
      // Banned attachments are refused in session: the session waits for the verdict.
      overrides: { inline: { enabled: true, deadlineMs: 20_000 } },
    });
    const port = gw.front.ports.listeners.submission!;
    const kees: [string, string] = ['kees@provider.test', 'mailbox pw'];

    // 30 MB: announced, and a larger declared size refused at MAIL.
    const s = await tlsSession(port, { auth: kees });
    expect(s.ehlo.join('\n')).toMatch(/^250[- ]SIZE 31457280$/m);
    expect(s.auth).toBe(235);
    expect((await s.c.cmd('MAIL FROM:<kees@provider.test> SIZE=31457281')).code).toBe(552);
    await s.c.cmd('RSET');
    // 30 recipients per message, the 31st is refused.
    expect((await s.c.cmd('MAIL FROM:<kees@provider.test> SIZE=31457280')).code).toBe(250);
    const rcpts = [];
    for (let i = 1; i <= 31; i++) rcpts.push((await s.c.cmd(`RCPT TO:<r${i}@elsewhere.test>`)).code);
    expect(rcpts.filter((c) => c === 250)).toHaveLength(30);
    expect(rcpts[30]).toBe(452);
    s.c.close();

    // The infected PC, with the right password, is refused with the list's text.
    const infected = await tlsSession(port, { auth: kees, localAddress: '127.0.0.78' });
    expect(infected.auth).toBe(235);
    await infected.c.cmd('MAIL FROM:<kees@provider.test>');
    const refused = await infected.c.cmd('RCPT TO:<friend@provider.test>');
    infected.c.close();
    expect(refused.code).toBe(554);
    expect(refused.text).toContain('https://www.spamhaus.org/query/ip/127.0.0.78 (XBL)');

    // Banned attachments: 554 at the end of DATA, naming the rule; a plain message is delivered.
    const results = await Promise.all(
      ['invoice.pif', 'run.bat', 'setup.exe', 'screen.scr'].map((f) =>
        submit(port, {
          user: kees[0],
          pass: kees[1],
          from: kees[0],
          to: ['friend@provider.test'],
          raw: withAttachment(`banned ${f}`, kees[0], 'friend@provider.test', f),
        }),
      ),
    );
    for (const [i, ext] of ['pif', 'bat', 'exe', 'scr'].entries()) {
      expect(results[i]!.code).toBe(554);
      expect(results[i]!.response).toContain(`.${ext} files are not allowed`);
    }
    const ok = await submit(port, {
      user: kees[0],
      pass: kees[1],
      from: kees[0],
      to: ['friend@provider.test'],
      raw: message('gconnect ok', kees[0], 'friend@provider.test'),
    });
    expect(ok.code).toBe(250);
    await waitForStatus(gw, ok.id!, ['delivered']);
    expect((await mailboxMessages(gw, 'friend@provider.test')).map((m) => m.toString('latin1')).filter((m) => m.includes('Subject: gconnect ok'))).toHaveLength(
      1,
    );
  });

  it('Telfort: 587 with STARTTLS and AUTH only over TLS; strict HELO refuses "localhost" and a bare name', async () => {
    const { gw } = await world({ example: readmeExample('Telfort') });
    await addAccount(gw, 'anna@provider.test', 'anna pw');
    const port = gw.front.ports.listeners.submission!;

    // In the clear: no AUTH offered, MAIL refused.
    const clear = await RawSmtp.connect(port);
    const ehlo = await clear.hello();
    expect(ehlo.lines.join('\n')).toContain('STARTTLS');
    expect(ehlo.lines.join('\n')).not.toMatch(/AUTH/);
    expect((await clear.cmd('MAIL FROM:<anna@provider.test>')).code).toBe(530);
    clear.close();

    const rcptWith = async (helo: string) => {
      const s = await tlsSession(port, { helo, auth: ['anna@provider.test', 'anna pw'] });
      expect(s.auth).toBe(235);
      expect((await s.c.cmd('MAIL FROM:<anna@provider.test>')).code).toBe(250);
      const r = await s.c.cmd('RCPT TO:<piet@provider.test>');
      s.c.close();
      return r;
    };
    const localhost = await rcptWith('localhost');
    expect(localhost.code).toBe(550);
    expect(localhost.text).toMatch(/localhost/);
    expect((await rcptWith('laptop')).code).toBe(550);
    expect((await rcptWith('pc1.customer.test')).code).toBe(250);

    const ok = await submit(port, {
      user: 'anna@provider.test',
      pass: 'anna pw',
      from: 'anna@provider.test',
      to: ['piet@provider.test'],
      raw: message('telfort ok', 'anna@provider.test', 'piet@provider.test'),
    });
    await waitForStatus(gw, ok.id!, ['delivered']);
    expect((await mailboxMessages(gw, 'piet@provider.test')).length).toBe(1);
  });

  it('Tornevall: a customer’s static IP relays without AUTH; a stranger is refused; relay1 refuses with 5xx and the backup relay2 delivers', async () => {
    const relay1 = await peer({ rcpt: () => '554 5.7.1 Relay access denied' });
    const relay2 = await peer();
    const example = readmeExample('Tornevall');
    // The README's documentation addresses, on loopback: 198.51.100.17 → 127.0.0.17, 203.0.113.0/28 → 127.0.0.32/28.
    const listener = ((example.submission as Obj).listeners as Obj[])[0]!;
    expect(listener.relayNetworks).toEqual(['198.51.100.17', '203.0.113.0/28']);
    listener.relayNetworks = ['127.0.0.17', '127.0.0.32/28'];
    // The relay hosts keep their names (resolved by the fake DNS); only the ports are the peers'.
    const relay: Obj[] = ((example.delivery as Obj).relay as Obj[]).map((h, i) => ({ ...h, port: [relay1, relay2][i]!.port }));
    expect(relay.map((h) => [h.host, h.backup])).toEqual([
      ['relay1.example.net', undefined],
      ['relay2.example.net', true],
    ]);
    (example.delivery as Obj).relay = relay;
    const { gw } = await world({ example, zone: { 'relay1.example.net': { A: ['127.0.0.1'] }, 'relay2.example.net': { A: ['127.0.0.1'] } } });
    const port = gw.front.ports.listeners.relay!;

    const send = async (ip: string, subject: string) => {
      const c = await RawSmtp.connect(port, { localAddress: ip });
      const ehlo = await c.hello('server.customer.test');
      const r = await c.transaction('shop@customer.test', ['buyer@elsewhere.test'], `${message(subject, 'shop@customer.test', 'buyer@elsewhere.test')}.\r\n`);
      c.close();
      return { ehlo, r };
    };
    const ok = await send('127.0.0.40', 'tornevall static');
    expect(ok.ehlo.lines.join('\n')).not.toMatch(/AUTH/);
    expect(ok.r.map((x) => x.code)).toEqual([250, 250, 354, 250]);
    const id = /queued as (\S+)/.exec(ok.r[3]!.text)![1]!;
    await waitForStatus(gw, id, ['delivered']);
    expect(relay1.commands).toContain('RCPT TO:<buyer@elsewhere.test>');
    expect(relay1.accepted).toHaveLength(0);
    expect(relay2.accepted).toHaveLength(1);
    expect(relay2.accepted[0]!.data.toString('latin1')).toContain('Subject: tornevall static');

    const stranger = await send('127.0.0.50', 'tornevall stranger');
    expect(stranger.r[0]).toMatchObject({ code: 554, text: '5.7.1 Relay access denied: client [127.0.0.50] may not relay through this port' });
  });

  it('Richweb: 587 and 2525 both take AUTH and deliver', async () => {
    const { gw } = await world({ example: readmeExample('Richweb') });
    await addAccount(gw, 'rich@provider.test', 'rich pw');
    const ports = gw.front.ports.listeners;
    expect(Object.keys(ports).sort()).toEqual(['alt', 'submission']);
    for (const [name, p] of Object.entries(ports)) {
      const r = await submit(p!, {
        user: 'rich@provider.test',
        pass: 'rich pw',
        from: 'rich@provider.test',
        to: ['dest@provider.test'],
        raw: message(`richweb via ${name}`, 'rich@provider.test', 'dest@provider.test'),
      });
      expect(r.code).toBe(250);
      await waitForStatus(gw, r.id!, ['delivered']);
    }
    const got = (await mailboxMessages(gw, 'dest@provider.test')).map((m) => m.toString('latin1'));
    expect(got.filter((m) => /Subject: richweb via (submission|alt)/.test(m))).toHaveLength(2);
  });

  it('BSWS: TLS end to end — 465 is TLS from the first byte, 587 refuses MAIL before STARTTLS, and a smarthost without STARTTLS is never sent to in the clear (deferred)', async () => {
    // Offers no STARTTLS, and answers one as a server without it does.
    const smarthost = await peer({ ehlo: '250-smarthost.example.net\n250-8BITMIME\n250 SIZE 10000000', starttls: '502 5.5.2 command not recognized' });
    const example = readmeExample('BSWS');
    const hop = ((example.delivery as Obj).relay as Obj[])[0]!;
    expect(hop).toMatchObject({ host: 'smarthost.example.net', tls: 'verified' });
    (example.delivery as Obj).relay = [{ ...hop, port: smarthost.port }];
    // The README's 465 and 587 (587 as the defaults make it, requireTls: MAIL only after STARTTLS).
    expect(((example.submission as Obj).listeners as Obj[]).map((l) => l.name)).toEqual(['submissions', 'submission']);
    const { gw } = await world({ example, zone: { 'smarthost.example.net': { A: ['127.0.0.1'] } } });
    await addAccount(gw, 'bob@provider.test', 'bob pw');
    const ports = gw.front.ports.listeners;

    // 465: a client speaking SMTP in the clear gets no SMTP at all.
    const clear = await RawSmtp.connect(ports.submissions!);
    clear.write('EHLO pc1.customer.test\r\n');
    await expect(clear.reply(1_500)).rejects.toThrow();
    clear.destroy();

    const plain587 = await RawSmtp.connect(ports.submission!);
    await plain587.hello();
    expect(await plain587.cmd('MAIL FROM:<bob@provider.test>')).toMatchObject({ code: 530 });
    plain587.close();

    const sent = await submit(ports.submissions!, {
      secure: true,
      user: 'bob@provider.test',
      pass: 'bob pw',
      from: 'bob@provider.test',
      to: ['ceo@elsewhere.test'],
      raw: message('bsws secret', 'bob@provider.test', 'ceo@elsewhere.test'),
    });
    expect(sent.code).toBe(250);
    await waitForStatus(gw, sent.id!, ['deferred']);
    expect((await gw.stores.store.get(sent.id!))?.lastReply).toMatch(/STARTTLS/);
    await waitFor(() => smarthost.commands.some((c) => /^EHLO /.test(c)) || undefined, { what: 'the smarthost to be tried' });
    expect(smarthost.commands.some((c) => /^(MAIL|RCPT|DATA)/i.test(c))).toBe(false);
    expect(smarthost.accepted).toHaveLength(0);
  });
});
