import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { BodyGuard, bareKind } from '../../../gateway/smtp/body-guard.ts';

async function run(chunks: string[], o: { normalize: boolean; prefix?: string; stripNul?: boolean }) {
  const guard = new BodyGuard({ normalize: o.normalize, stripNul: o.stripNul ?? false, ...(o.prefix ? { prefix: Buffer.from(o.prefix) } : {}) });
  const out = await buffer(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(guard));
  return { out: out.toString('latin1'), report: guard.report };
}

describe('BodyGuard', () => {
  it.each([
    [['a\r\nb\r\n'], 0, 0],
    [['a\nb\r\n'], 1, 0],
    [['a\rb\r\n'], 0, 1],
    [['a\r', '\nb\r\n'], 0, 0], // CRLF split across reads
    [['a\r', 'b\r\n'], 0, 1], // bare CR at the end of a read
    [['a\r'], 0, 1], // bare CR at the very end
    [['\n.\n'], 2, 0],
    [['\r.\r'], 0, 2],
    [['\r\r\n'], 0, 1],
    [['x\n', '\ny'], 2, 0],
  ])('%j: %i bare LF, %i bare CR', async (chunks, lf, cr) => {
    const { out, report } = await run(chunks, { normalize: false });
    expect(report).toMatchObject({ bareLf: lf, bareCr: cr });
    expect(out).toBe(chunks.join('')); // counting never changes a byte
  });

  it('normalises every bare CR and LF to CRLF, leaving CRLF alone, across reads', async () => {
    const { out } = await run(['one\ntwo\rthree\r', '\nfour\r', 'five\n'], { normalize: true });
    expect(out).toBe('one\r\ntwo\r\nthree\r\nfour\r\nfive\r\n');
  });

  it('puts the prefix first, also for an empty body, and reports body bytes only', async () => {
    expect((await run(['body\r\n'], { normalize: false, prefix: 'X-A: 1\r\n' })).out).toBe('X-A: 1\r\nbody\r\n');
    expect((await run([], { normalize: false, prefix: 'X-A: 1\r\n' })).out).toBe('X-A: 1\r\n');
    expect((await run(['body\r\n'], { normalize: false, prefix: 'X-A: 1\r\n' })).report.bytes).toBe(6);
  });

  it('counts NUL bytes, leaving them in place unless told to strip them (across reads, next to CR/LF)', async () => {
    const chunks = ['a\0b\r', '\0\n\0', 'c\r\n\0'];
    const kept = await run(chunks, { normalize: false });
    expect(kept.report).toMatchObject({ nul: 4, bareCr: 1, bareLf: 1 });
    expect(kept.out).toBe(chunks.join(''));
    const stripped = await run(chunks, { normalize: true, stripNul: true });
    expect(stripped.report.nul).toBe(4);
    expect(stripped.out).toBe('ab\r\n\r\nc\r\n');
  });

  it('bareKind names LF first', () => {
    expect(bareKind({ bareLf: 1, bareCr: 1, nul: 0, bytes: 0 })).toBe('LF');
    expect(bareKind({ bareLf: 0, bareCr: 2, nul: 0, bytes: 0 })).toBe('CR');
    expect(bareKind({ bareLf: 0, bareCr: 0, nul: 0, bytes: 0 })).toBeUndefined();
  });

  it('gives the same bytes and counts as a byte-by-byte reading, however the input is cut into reads', async () => {
    // The reference: one pass over the whole input, every byte looked at.
    const reference = (text: string, normalize: boolean, stripNul: boolean) => {
      let out = '';
      const report = { bareLf: 0, bareCr: 0, nul: 0 };
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (c === '\r' && text[i + 1] === '\n') {
          out += '\r\n';
          i++;
        } else if (c === '\r' || c === '\n') {
          report[c === '\r' ? 'bareCr' : 'bareLf']++;
          out += normalize ? '\r\n' : c;
        } else if (c === '\0') {
          report.nul++;
          if (!stripNul) out += c;
        } else out += c;
      }
      return { out, report };
    };
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: 1 + random(60) }, () => 'ab\r\n\0.'[random(7)]).join('');
      const chunks: string[] = [];
      for (let at = 0; at < text.length;) {
        const n = 1 + random(8);
        chunks.push(text.slice(at, at + n));
        at += n;
      }
      for (const [normalize, stripNul] of [
        [false, false],
        [true, true],
      ]) {
        const got = await run(chunks, { normalize, stripNul });
        const want = reference(text, normalize, stripNul);
        expect({ chunks, out: got.out, report: { bareLf: got.report.bareLf, bareCr: got.report.bareCr, nul: got.report.nul } }).toEqual({ chunks, ...want });
      }
    }
  });
});
