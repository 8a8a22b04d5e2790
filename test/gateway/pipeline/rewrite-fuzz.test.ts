// Fuzz test of the delivered-copy rewrite (gateway/pipeline/rewrite.ts): thousands of mutated
// messages from a seeded PRNG (the same ones every run). The property a DKIM signature and the
// README's "unchanged parts keep every byte" rest on: where the rewrite says nothing changed,
// the copy is the input byte for byte; where it disarmed a part, every other part and every
// delimiter, preamble and epilogue is unchanged. A rejection (a splitter bound) is allowed: the
// caller discards the copy then.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { SplitterChunk } from '@zone-eu/mailsplit';
import { writeCopy } from '../../../gateway/pipeline/rewrite.ts';
import { registrableDomain } from '../../../gateway/pipeline/analyse.ts';
import { createSplitter } from '../../../scanners/splitter.ts';
import { PartNumberer } from '../../../scanners/part-ids.ts';
import { attachment, buildMessage, collect, html, text, toStream, type PartSpec } from '../../support/mime.ts';

const MESSAGES = 1500;
const LIMITS = { maxParts: 60, maxHeaderBytes: 16 * 1024 };
const DISARM = { remoteImages: 'placeholder' as const, phishingNet: true, phishingSafeSites: [], registrableDomain };

/** mulberry32: small, fast, and the same sequence everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] };
}
type Rng = ReturnType<typeof prng>;

const HEADERS = ['From: a@sender.test', 'To: b@example.test', 'Subject: fuzz', 'MIME-Version: 1.0'];
const DANGEROUS = '<p onclick="x()">hi <a href="https://evil.test/">https://www.bank.test/</a></p><script>steal()</script>\r\n';
const HARMLESS = '<p>hello <b>there</b></p>\r\n';

function baseMessage(r: Rng): Buffer {
  const leaves: PartSpec[] = [
    text('plain text\r\nsecond line\r\n'),
    html(r.next() < 0.5 ? DANGEROUS : HARMLESS),
    { contentType: 'text/html', encoding: '7bit', body: r.next() < 0.5 ? DANGEROUS : HARMLESS },
    { contentType: 'text/html; charset=iso-8859-1', encoding: 'base64', body: Buffer.from('<p onmouseover="y()">caf\xe9</p>', 'latin1') },
    attachment('data.bin', Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 31) % 256))),
    { contentType: 'message/rfc822', body: buildMessage(html(DANGEROUS), ['Subject: inner', 'MIME-Version: 1.0']) },
  ];
  const some = () => Array.from({ length: 1 + r.int(3) }, () => r.pick(leaves));
  const root: PartSpec =
    r.next() < 0.3
      ? { multipart: 'mixed', preamble: 'preamble\r\n', parts: [{ multipart: 'alternative', parts: some() }, ...some()] }
      : r.next() < 0.5
        ? { multipart: r.pick(['mixed', 'alternative', 'related']), parts: some() }
        : r.pick(leaves);
  return buildMessage(root, HEADERS);
}

const ODD_LINES = [
  '',
  '--',
  '----',
  'Content-Type: text/html',
  'Content-Type: multipart/mixed; boundary="Z"',
  '--Z',
  '--Z--',
  'Content-Transfer-Encoding: base64',
  'Content-Transfer-Encoding: quoted-printable',
  'Content-Transfer-Encoding: x-uuencode',
  'Content-Type: text/html; charset=utf-7',
  '=?utf-8?b?QQ==?=',
  '<script>x()</script>',
  'a=\r',
  ' folded continuation',
  '\t',
  'no colon here',
  'X-\u00e9: 8bit \u00ff',
  'AAAA====',
  '=ZZ=0',
  '.',
  '\u0000nul',
];

/** One mutation of the message's lines; boundaries are found in the message itself. */
function mutate(msg: Buffer, r: Rng): Buffer {
  const lines = msg.toString('latin1').split('\r\n');
  const at = () => r.int(lines.length);
  const boundaries = [...msg.toString('latin1').matchAll(/boundary="?([^";\r\n]+)/g)].map((m) => m[1]);
  const delimiter = () => (boundaries.length ? `--${r.pick(boundaries)}${r.next() < 0.3 ? '--' : ''}` : '--x');
  switch (r.int(11)) {
    case 0:
      lines.splice(at(), 1);
      break; // drop a line
    case 1: {
      const i = at();
      lines.splice(i, 0, lines[i]);
      break;
    } // duplicate a line
    case 2:
      lines.splice(at(), 0, r.pick(ODD_LINES));
      break; // insert an odd line
    case 3:
      lines.splice(at(), 0, delimiter());
      break; // a stray delimiter
    case 4: {
      // truncate a delimiter line
      const ds = lines.flatMap((l, i) => (l.startsWith('--') ? [i] : []));
      if (ds.length) {
        const i = r.pick(ds);
        lines[i] = lines[i].slice(0, r.int(lines[i].length));
      }
      break;
    }
    case 5: {
      // remove a blank line (a header block that runs into what follows)
      const bs = lines.flatMap((l, i) => (l === '' ? [i] : []));
      if (bs.length) lines.splice(r.pick(bs), 1);
      break;
    }
    case 6: {
      // bare LF in a stretch of the message
      const i = at(),
        j = i + 1 + r.int(8);
      return Buffer.from(lines.slice(0, i).join('\r\n') + '\r\n' + lines.slice(i, j).join('\n') + '\r\n' + lines.slice(j).join('\r\n'), 'latin1');
    }
    case 7:
      lines.splice(at(), 0, 'x'.repeat(500 + r.int(3000)));
      break; // long line
    case 8: {
      // wrap the body in another multipart
      const blank = lines.indexOf('');
      if (blank > 0) lines.splice(blank, 0, 'Content-Type: multipart/mixed; boundary="W"', '', '--W', ...lines.splice(blank).concat(['--W--']));
      break;
    }
    case 9: {
      // an odd transfer encoding or charset on some part
      const cs = lines.flatMap((l, i) => (/^content-(type|transfer-encoding):/i.test(l) ? [i] : []));
      if (cs.length)
        lines[r.pick(cs)] = r.pick([
          'Content-Transfer-Encoding: base64',
          'Content-Transfer-Encoding: 8bit',
          'Content-Transfer-Encoding: BINARY',
          'Content-Type: text/html; charset="bogus-9"',
          'Content-Type: text/html',
        ]);
      break;
    }
    default: {
      // cut the message short
      return msg.subarray(0, r.int(msg.length));
    }
  }
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** The message as the splitter sees it: header blocks, bodies and other data, by part. */
async function pieces(msg: Buffer): Promise<{ part: string; kind: string; bytes: string }[]> {
  const out: { part: string; kind: string; bytes: string }[] = [];
  const numberer = new PartNumberer();
  const seen = new Set<unknown>();
  const splitter = createSplitter(LIMITS);
  toStream(msg, 4096).pipe(splitter);
  for await (const c of splitter as AsyncIterable<SplitterChunk>) {
    if (c.type === 'node') {
      numberer.see(c);
      seen.add(c);
    }
    const node = c.type === 'node' ? c : c.node;
    // A delimiter line can belong to a part that is never emitted (an empty one): no number.
    const id = seen.has(node) ? numberer.idOf(node) : '-';
    const bytes = (c.type === 'node' ? c.getHeaders() : c.value).toString('latin1');
    // Chunk boundaries are the splitter's business: consecutive chunks of one part and kind are one piece.
    const last = out.at(-1);
    if (last && last.part === id && last.kind === c.type && c.type !== 'node') last.bytes += bytes;
    else out.push({ part: id, kind: c.type, bytes });
  }
  return out;
}

describe('the rewrite under fuzzing', () => {
  it(`keeps every byte it does not change, over ${MESSAGES} mutated messages`, async () => {
    const r = prng(20261204);
    const seen = { unchanged: 0, changed: 0, rejected: 0 };
    for (let n = 0; n < MESSAGES; n++) {
      let msg = baseMessage(r);
      for (let k = 1 + r.int(4); k > 0; k--) msg = mutate(msg, r);
      const sink = new PassThrough();
      const collected = collect(sink);
      collected.catch(() => undefined);
      const stamp = { prepend: [], removePrefixes: [], subjectTag: null };
      const result = await writeCopy(toStream(msg, 1 + r.int(2000)), sink, { stamp, strip: [], disarm: DISARM, limits: LIMITS }).catch(() => null);
      sink.end();
      if (!result) {
        seen.rejected++;
        continue;
      }
      const out = await collected;
      const where = `message ${n}: ${JSON.stringify(msg.toString('latin1').slice(0, 3000))}`;
      if (!result.disarm!.changed) {
        seen.unchanged++;
        expect(out.toString('latin1'), where).toBe(msg.toString('latin1'));
        continue;
      }
      seen.changed++;
      const touched = new Set(result.disarm!.findings.filter((f) => f.kind !== 'unscannable-html').map((f) => f.part));
      const [before, after] = [await pieces(msg), await pieces(out)];
      const keep = (ps: typeof before) => ps.filter((p) => !touched.has(p.part)).map((p) => `${p.part} ${p.kind} ${p.bytes}`);
      expect(keep(after), where).toEqual(keep(before));
    }
    // The corpus must exercise both sides of the property.
    expect(seen.unchanged).toBeGreaterThan(MESSAGES / 5);
    expect(seen.changed).toBeGreaterThan(MESSAGES / 5);
  }, 60_000);
});
