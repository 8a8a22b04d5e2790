// SpamdClient and scanSpam against the real spamd of the test run (-L, --allow-tell), plus tiny
// fake servers for answers a healthy spamd never gives (hang, garbage, cut-off answer).
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { closedPort } from '../support/ports.ts';
import { encodeRequest, parseReportTable, parseResponse, scanSpam, SpamdClient, SpamdError } from '../../scanners/spamd.ts';
import { mailDate } from '../support/mime.ts';

const services = inject('services');
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const client = () => new SpamdClient({ host: services.spamdHost, port: services.spamdPort }, { timeoutMs: 60_000 });

function message(o: { subject: string; body: Buffer | string; charset?: string; id?: string }): Buffer {
  const head = [
    'From: Alice Example <alice@example.com>',
    'To: bob@example.net',
    `Subject: ${o.subject}`,
    `Date: ${mailDate()}`,
    `Message-ID: <${o.id ?? 'spamd-test'}@example.com>`,
    'MIME-Version: 1.0',
    `Content-Type: text/plain; charset=${o.charset ?? 'us-ascii'}`,
    'Content-Transfer-Encoding: 8bit',
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body, 'latin1')]);
}

describe('SpamdClient against the real spamd', () => {
  it('answers PING', async () => {
    await expect(client().ping()).resolves.toBeUndefined();
  });

  it('scores GTUBE at 100 or more, with GTUBE among the rules', async () => {
    const r = await client().symbols(message({ subject: 'test', body: `${GTUBE}\r\n` }));
    expect(r.isSpam).toBe(true);
    expect(r.score).toBeGreaterThanOrEqual(100);
    expect(r.threshold).toBeGreaterThan(0);
    expect(r.rules).toContain('GTUBE');
  });

  it('reports each rule with its score and description (REPORT)', async () => {
    const r = await client().report(message({ subject: 'test', body: `${GTUBE}\r\n` }));
    expect(r.isSpam).toBe(true);
    expect(r.details).toContainEqual({ rule: 'GTUBE', score: 1000, description: 'Generic Test for Unsolicited Bulk Email' });
    expect(r.rules).toEqual([...r.rules].sort());
    const total = r.details!.reduce((sum, d) => sum + d.score, 0);
    expect(Math.abs(total - r.score)).toBeLessThan(0.2);
  });

  it('does not call an ordinary message spam', async () => {
    const body = 'Hi Bob,\r\n\r\nthe meeting moved to Thursday at ten. See you there.\r\n\r\nAlice\r\n';
    const r = await client().symbols(message({ subject: 'Meeting on Thursday', body }));
    expect(r.isSpam).toBe(false);
    expect(r.score).toBeLessThan(r.threshold);
  });

  it('carries an 8-bit Latin-1 body byte for byte', async () => {
    const body = Buffer.from('Gr\xfc\xdfe aus K\xf6ln, \xe9t\xe9 \xe0 la plage, 100 \xa3.\r\n', 'latin1');
    const msg = message({ subject: 'Sommer', body, charset: 'iso-8859-1' });
    const r = await client().symbols(msg);
    expect(r.isSpam).toBe(false);
    // PROCESS returns the whole message: the body must come back untouched.
    const processed = await client().request('PROCESS', [], msg);
    expect(processed.body.includes(body)).toBe(true);
  });

  it('learns with TELL and says so in DidSet / DidRemove', async () => {
    const id = `tell-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const msg = message({ subject: 'cheap watches', body: `Buy cheap watches now ${id}\r\n`, id });
    expect(await client().tell(msg, { messageClass: 'spam', set: ['local'] })).toEqual({ didSet: ['local'], didRemove: [] });
    expect(await client().tell(msg, { messageClass: 'spam', remove: ['local'] })).toEqual({ didSet: [], didRemove: ['local'] });
  });

  it('turns a non-zero spamd status into SpamdError with the code', async () => {
    const err = await client()
      .request('NOSUCHVERB', [], Buffer.from('x'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpamdError);
    expect((err as SpamdError).code).toBe(76);
  });

  it('rejects header injection and bad TELL options as programmer errors', async () => {
    expect(() => new SpamdClient({ host: '127.0.0.1', port: 1 }, { timeoutMs: 1000, user: 'a\r\nSet: remote' })).toThrow(TypeError);
    await expect(client().tell(Buffer.from('x'), { messageClass: 'spam' })).rejects.toThrow(TypeError);
  });
});

describe('scanSpam', () => {
  it('scores within the size limit', async () => {
    const r = await scanSpam(client(), message({ subject: 'x', body: `${GTUBE}\r\n` }), { maxBytes: 500_000 });
    expect(r).toMatchObject({ status: 'scored', rules: expect.arrayContaining(['GTUBE']) });
  });

  it('reads a wrapped description and takes the rule names from SYMBOLS when the report has no table', async () => {
    const table =
      ' pts rule name              description\n---- ---------------------- ----------\n 1.5 RCVD_IN_X              RBL: Sender listed at https://x.example/,\n                            low trust\n 0.0 HTML_MESSAGE           BODY: HTML included in message\n\n';
    expect(parseReportTable(`Content analysis details:   (1.5 points, 5.0 required)\n\n${table}`)).toEqual([
      { rule: 'RCVD_IN_X', score: 1.5, description: 'RBL: Sender listed at https://x.example/, low trust' },
      { rule: 'HTML_MESSAGE', score: 0, description: 'HTML included in message' },
    ]);
    const custom = {
      report: async () => ({ isSpam: false, score: 1.5, threshold: 5, rules: [], details: null }),
      symbols: async () => ({ isSpam: false, score: 1.5, threshold: 5, rules: ['RCVD_IN_X'] }),
    };
    expect(await scanSpam(custom, Buffer.from('x'), { maxBytes: 100 })).toEqual({ status: 'scored', score: 1.5, threshold: 5, rules: ['RCVD_IN_X'] });
  });

  it('skips messages above maxBytes without contacting spamd', async () => {
    const dead = new SpamdClient({ host: '127.0.0.1', port: 1 }, { timeoutMs: 1000 });
    const r = await scanSpam(dead, Buffer.alloc(600_001, 0x61), { maxBytes: 600_000 });
    expect(r).toEqual({ status: 'skipped', reason: expect.stringContaining('600000') });
  });

  it('reports a dead port as error', async () => {
    const port = await closedPort();
    const r = await scanSpam(new SpamdClient({ host: '127.0.0.1', port }, { timeoutMs: 2000 }), Buffer.from('x'), { maxBytes: 1000 });
    expect(r).toEqual({ status: 'error', reason: expect.stringContaining('ECONNREFUSED') });
  });
});

describe('SpamdClient against misbehaving servers', () => {
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  /** A one-behaviour fake spamd: `answer` runs once the whole request has arrived (half-close). */
  async function fakeSpamd(answer: ((s: net.Socket) => void) | 'hang'): Promise<SpamdClient> {
    // allowHalfOpen: our request ends with a half-close, which must not close the fake's side.
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.resume();
      if (answer !== 'hang') s.on('end', () => answer(s));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    return new SpamdClient({ host: '127.0.0.1', port }, { timeoutMs: 300 });
  }

  it('times out on a server that never answers', async () => {
    const c = await fakeSpamd('hang');
    const t0 = Date.now();
    await expect(c.symbols(Buffer.from('x'))).rejects.toThrow(/300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await scanSpam(c, Buffer.from('x'), { maxBytes: 100 })).toMatchObject({ status: 'error' });
  });

  it('rejects garbage, a cut-off answer and a missing Spam header', async () => {
    const answers = [
      'HTTP/1.1 200 OK\r\n\r\n',
      'SPAMD/1.1 0 EX_OK\r\nSpam: Tr',
      'SPAMD/1.1 0 EX_OK\r\nContent-length: 40\r\nSpam: True ; 9.0 / 5.0\r\n\r\nGTUBE,',
      'SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n',
      'SPAMD/1.1 0 EX_OK\r\nSpam: maybe\r\n\r\n',
      '',
    ];
    for (const answer of answers) {
      const c = await fakeSpamd((s) => s.end(answer));
      await expect(c.symbols(Buffer.from('x')), JSON.stringify(answer)).rejects.toThrow(SpamdError);
    }
  });

  it('sends Content-length, User and exact body bytes; accepts a well-formed answer', async () => {
    let request = Buffer.alloc(0);
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', (d: Buffer) => {
        request = Buffer.concat([request, d]);
      });
      s.on('end', () => s.end('SPAMD/1.1 0 EX_OK\r\nContent-length: 13\r\nSpam: False ; 1.5 / 5.0\r\n\r\nRULE_A,RULE_B'));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const body = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0xe9]);
    const r = await new SpamdClient({ host: '127.0.0.1', port }, { timeoutMs: 2000, user: 'mailmoat' }).symbols(body);
    expect(r).toEqual({ isSpam: false, score: 1.5, threshold: 5, rules: ['RULE_A', 'RULE_B'] });
    expect(request.equals(encodeRequest('SYMBOLS', [['User', 'mailmoat']], body))).toBe(true);
    expect(request.toString('latin1')).toMatch(/^SYMBOLS SPAMC\/1\.5\r\nContent-length: 5\r\nUser: mailmoat\r\n\r\n/);
  });

  it('works over a unix socket', async () => {
    const socketPath = join(tmpdir(), `mailmoat-spamd-fake-${process.pid}-${Date.now()}.sock`);
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      sockets.add(s);
      s.resume();
      s.on('end', () => s.end('SPAMD/1.5 0 PONG\r\n'));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    await expect(new SpamdClient({ socketPath }, { timeoutMs: 2000 }).ping()).resolves.toBeUndefined();
  });

  it('parses a PING answer without a blank line and keeps the status code of errors', () => {
    expect(parseResponse(Buffer.from('SPAMD/1.5 0 PONG\r\n'))).toMatchObject({ code: 0, message: 'PONG' });
    expect(parseResponse(Buffer.from('SPAMD/1.0 76 Bad header line: X\r\n'))).toMatchObject({ code: 76 });
  });
});
