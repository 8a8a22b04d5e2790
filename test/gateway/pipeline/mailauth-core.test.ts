// mailauth without its BIMI module (gateway/pipeline/mailauth-core.ts): the same authentication
// results as the published entry point, for DKIM, SPF, DMARC and ARC, and none of BIMI's modules
// loaded in a process that authenticates.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as published from 'mailauth';
import * as core from '../../../gateway/pipeline/mailauth-core.ts';
import { Readable } from 'node:stream';
import { mimeCorpus } from '../../support/mime-corpus.ts';
import { prng } from '../../support/prng.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privatePem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const publicB64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

/** The internet as mailauth asks it: TXT records by name, NXDOMAIN for the rest. */
const zone: Record<string, string[][]> = {
  'sel._domainkey.signed.test': [[`v=DKIM1; k=rsa; p=${publicB64}`]],
  'signed.test': [['v=spf1 ip4:192.0.2.7 -all']],
  '_dmarc.signed.test': [['v=DMARC1; p=reject']],
  'soft.test': [['v=spf1 ~all']],
  '_dmarc.soft.test': [['v=DMARC1; p=quarantine; adkim=s']],
};
const resolver = async (name: string, type: string) => {
  const found = type === 'TXT' ? zone[name.toLowerCase()] : undefined;
  if (found) return found;
  throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
};

const message = (from: string, body = 'Hello.') =>
  Buffer.from(`From: ${from}\r\nTo: alice@example.test\r\nSubject: hi\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@x.test>\r\n\r\n${body}\r\n`);

async function signed(from: string, body?: string): Promise<Buffer> {
  const msg = message(from, body);
  const key = { signingDomain: 'signed.test', selector: 'sel', privateKey: privatePem };
  const sig = await published.dkimSign(msg, { ...key, signatureData: [key] });
  return Buffer.concat([Buffer.from(sig.signatures), msg]);
}

/** Name, message, envelope, and the dkim/spf/dmarc results both must give. */
const cases: [string, () => Promise<Buffer>, { ip: string; sender: string }, string][] = [
  ['DKIM and SPF pass, DMARC pass', () => signed('bob@signed.test'), { ip: '192.0.2.7', sender: 'bob@signed.test' }, 'pass/pass/pass'],
  ['SPF fail, DKIM pass: DMARC pass by DKIM', () => signed('bob@signed.test'), { ip: '198.51.100.1', sender: 'bob@signed.test' }, 'pass/fail/pass'],
  [
    'body changed after signing: DKIM fail, SPF fail, DMARC fail (p=reject)',
    async () => Buffer.from((await signed('bob@signed.test')).toString().replace('Hello.', 'Pay now.')),
    { ip: '198.51.100.1', sender: 'bob@signed.test' },
    'neutral/fail/fail',
  ],
  [
    'no signature, SPF softfail, DMARC fail (p=quarantine)',
    async () => message('eve@soft.test'),
    { ip: '198.51.100.1', sender: 'eve@soft.test' },
    'none/softfail/fail',
  ],
  ['a domain with no records at all', async () => message('x@nowhere.test'), { ip: '198.51.100.1', sender: 'x@nowhere.test' }, 'none/none/none'],
  ['the null sender', async () => message('mailer-daemon@signed.test'), { ip: '192.0.2.7', sender: '' }, 'none/none/fail'],
];
const triple = (r: Awaited<ReturnType<typeof published.authenticate>>) =>
  [r.dkim.results?.[0]?.status.result ?? 'none', r.spf ? r.spf.status.result : 'none', r.dmarc ? r.dmarc.status.result : 'none'].join('/');

describe('mailauth without BIMI', () => {
  it.each(cases)('%s: the same result as the published entry point', async (_name, make, env, expected) => {
    const input = await make();
    const opts = { ...env, helo: 'mail.client.test', mta: 'mx.gateway.test', resolver, disableBimi: true };
    const [ours, theirs] = await Promise.all([core.authenticate(input, opts), published.authenticate(input, opts)]);
    expect(ours).toEqual(theirs);
    expect(triple(ours)).toBe(expected);
    expect(ours.headers).toMatch(/Authentication-Results: mx\.gateway\.test;/);
  });

  // mailauth-header-end.ts: this copy's verifier finds the end of the header section without a
  // per-byte walk. The split point decides the header set (From for DMARC, ARC sets, Received),
  // the body hashes, and so every result: all of it must be what the published verifier gives,
  // for the message whole and cut into small chunks (the window before an LF spans chunks), with
  // CRLF, bare LF, bare CR, and empty lines at the very start.
  it('finds the same header section as the published verifier, over a corpus of 154 messages whole and in small chunks, with odd line ends', async () => {
    const r = prng(1616);
    const int = (n: number) => Math.floor(r() * n);
    const lineEnds = (msg: Buffer): Buffer => {
      switch (int(6)) {
        case 0:
          return Buffer.from(msg.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
        case 1:
          return Buffer.from(
            msg.toString('latin1').replace(/\r\n/g, () => ['\r\n', '\n', '\r', '\r\r\n'][int(4)]),
            'latin1',
          );
        case 2:
          return Buffer.concat([Buffer.from(['\r\n', '\n', '\r\r\n', '\n\r\n'][int(4)]), msg]);
        default:
          return msg;
      }
    };
    const chunks = (msg: Buffer): Buffer[] => {
      const out: Buffer[] = [];
      for (let at = 0; at < msg.length;) {
        const n = 1 + int(r() < 0.5 ? 6 : 80);
        out.push(msg.subarray(at, at + n));
        at += n;
      }
      return out;
    };
    const key = { signingDomain: 'signed.test', selector: 'sel', privateKey: privatePem };
    const inputs: { name: string; msg: Buffer }[] = [
      { name: 'empty', msg: Buffer.alloc(0) },
      { name: 'header only, no end', msg: Buffer.from('From: a@signed.test\r\nSubject: x') },
      { name: 'header only, one CRLF', msg: Buffer.from('From: a@signed.test\r\n') },
      { name: 'a lone LF', msg: Buffer.from('\n') },
      { name: 'a lone CRLF', msg: Buffer.from('\r\n') },
    ];
    for (const { name, msg } of mimeCorpus()) {
      const from = Buffer.concat([Buffer.from(`From: bob@${int(2) ? 'signed' : 'soft'}.test\r\nReceived: from a (b [192.0.2.9])\r\n`), msg]);
      const signed = int(2) ? Buffer.concat([Buffer.from((await published.dkimSign(from, { ...key, signatureData: [key] })).signatures), from]) : from;
      inputs.push({ name, msg: lineEnds(signed) });
    }
    const opts = { ip: '192.0.2.7', sender: 'bob@signed.test', helo: 'mail.client.test', mta: 'mx.gateway.test', resolver, disableBimi: true };
    const seen = new Set<string>();
    for (const { name, msg } of inputs) {
      const parts = chunks(msg);
      for (const [how, input] of [
        ['whole', () => msg],
        ['in chunks', () => Readable.from(parts)],
      ] as const) {
        const [ours, theirs] = await Promise.all([core.authenticate(input(), opts), published.authenticate(input(), opts)]);
        expect(ours, `${name} ${how}`).toEqual(theirs);
        // Not enumerable, so toEqual passes them by: the header set itself.
        expect(ours.dkim.headers, `${name} ${how}`).toEqual(theirs.dkim.headers);
        seen.add(triple(theirs));
      }
    }
    // The corpus reaches passing, failing and unsigned DKIM, not one outcome only.
    expect([...seen].map((t) => t.split('/')[0]).sort()).toEqual(expect.arrayContaining(['none', 'pass', 'neutral']));
  });

  it('an ARC seal it writes verifies as a chain with the published entry point', async () => {
    const input = await signed('bob@signed.test');
    zone['arc._domainkey.signed.test'] = [[`v=DKIM1; k=rsa; p=${publicB64}`]];
    const seal = await core.sealMessage(input, {
      signingDomain: 'signed.test',
      selector: 'arc',
      privateKey: privatePem,
      authResults: 'mx.gateway.test; dkim=pass',
      cv: 'none',
    });
    const sealed = Buffer.concat([seal, input]);
    const opts = { ip: '192.0.2.7', sender: 'bob@signed.test', helo: 'mail.client.test', mta: 'mx2.test', resolver, disableBimi: true };
    const [ours, theirs] = await Promise.all([core.authenticate(sealed, opts), published.authenticate(sealed, opts)]);
    expect(theirs.arc && theirs.arc.status.result).toBe('pass');
    expect(ours).toEqual(theirs);
  });

  it('a BIMI check asked of it fails loudly, never a silent pass', async () => {
    await expect(
      core.authenticate(await signed('bob@signed.test'), { ip: '192.0.2.7', sender: 'bob@signed.test', helo: 'h', mta: 'mx', resolver }),
    ).rejects.toThrow(/BIMI is not loaded/);
  });

  it("a process that authenticates and signs loads none of BIMI's modules (undici, @peculiar, fast-xml-parser)", () => {
    const root = path.resolve(import.meta.dirname, '../../..');
    const script = `
      import { createRequire } from 'node:module';
      await import('./gateway/pipeline/auth.ts');
      await import('./gateway/pipeline/dkim.ts');
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({ mailauth: loaded.some((f) => f.includes('/mailauth/lib/dkim/')), bimi: loaded.filter((f) => /undici|@peculiar|fast-xml-parser|mailauth\\/lib\\/bimi/.test(f)) }));`;
    const out = execFileSync(path.join(root, 'node_modules/.bin/node'), ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ mailauth: true, bimi: [] });
  });
});
