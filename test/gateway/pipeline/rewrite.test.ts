import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { removalNote, writeCopy, type CopySpec } from '../../../gateway/pipeline/rewrite.ts';
import { disarmKey, scanText } from '../../../gateway/pipeline/text-scan.ts';
import { registrableDomain } from '../../../gateway/pipeline/analyse.ts';
import { isOurAuthResults } from '../../../gateway/pipeline/auth.ts';
import { walkMessage } from '../../../scanners/mime-walk.ts';
import { FAKE_PE, attachment, buildMessage, collect, html, text, toStream, type PartSpec } from '../../support/mime.ts';

const LIMITS = { maxParts: 500, maxHeaderBytes: 256 * 1024 };
const SETTINGS = { remoteImages: 'keep' as const, phishingNet: true, phishingSafeSites: [] };

async function copy(msg: Buffer, spec: Partial<CopySpec>) {
  const sink = new PassThrough();
  const out = collect(sink);
  const result = await writeCopy(toStream(msg, 333), sink, {
    stamp: { prepend: [], removePrefixes: [], subjectTag: null },
    strip: [],
    disarm: null,
    limits: LIMITS,
    ...spec,
  });
  sink.end();
  return { out: await out, result };
}

const segments = (b: Buffer, boundary: string) => b.toString('latin1').split(`--${boundary}`).slice(1, -1);
const HEADERS = ['From: a@b.test', 'Subject: hello', 'MIME-Version: 1.0'];

describe('writeCopy', () => {
  it('stamps the top header block only, and leaves every body byte alone', async () => {
    const inner = buildMessage(text('inner body\r\n'), ['From: c@d.test', 'Subject: inner', 'X-Spam-Flag: NO']);
    const msg = buildMessage({ multipart: 'mixed', boundary: 'B', parts: [text('body\r\n'), { contentType: 'message/rfc822', body: inner }] }, [
      ...HEADERS,
      'X-Spam-Flag: NO',
      'Authentication-Results: mx.us; spf=pass',
    ]);
    const { out, result } = await copy(msg, {
      stamp: { prepend: [['X-Mailmoat-ID', 'ID1']], removePrefixes: ['x-spam-'], removeIf: (k, l) => isOurAuthResults(k, l, 'MX.US'), subjectTag: '{Spam?}' },
    });
    expect(result.subject).toBe('hello');
    const [head, ...rest] = out.toString('latin1').split('\r\n\r\n');
    expect(head).toBe('X-Mailmoat-ID: ID1\r\nFrom: a@b.test\r\nSubject: {Spam?} hello\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"');
    expect(rest.join('\r\n\r\n')).toBe(msg.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n'));
  });

  it('replaces a banned part by its note, keeping the parts around it byte for byte', async () => {
    const msg = buildMessage(
      { multipart: 'mixed', boundary: 'B', parts: [text('hi\r\n'), attachment('a.exe', FAKE_PE), attachment('b.txt', 'fine', { type: 'text/plain' })] },
      HEADERS,
    );
    const note = removalNote({ filename: 'a\u202eexe.txt', reasons: ['.exe files are not allowed'], messageId: 'ID1' });
    const { out, result } = await copy(msg, { strip: [{ part: '2', note }] });
    expect(result.stripped).toEqual(['2']);
    const [t, n, b] = segments(out, 'B');
    const [ti, , bi] = segments(msg, 'B');
    expect(t).toBe(ti);
    expect(b).toBe(bi);
    expect(n).toBe(`\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${note}`);
    expect(note).toContain('"a\\u202eexe.txt"'); // the trick is shown, not performed
    const facts = await walkMessage(toStream(out));
    expect(facts.parts.map((p) => [p.id, p.contentType, p.filename])).toEqual([
      ['1', 'text/plain', null],
      ['2', 'text/plain', null],
      ['3', 'text/plain', 'b.txt'],
    ]);
  });

  it('removes an attached message whole for a banned part inside it', async () => {
    const inner = buildMessage({ multipart: 'mixed', boundary: 'I', parts: [text('inner\r\n'), attachment('run.exe', FAKE_PE)] }, [
      'Subject: inner',
      'MIME-Version: 1.0',
    ]);
    const msg = buildMessage({ multipart: 'mixed', boundary: 'B', parts: [text('outer\r\n'), { contentType: 'message/rfc822', body: inner }] }, HEADERS);
    const before = await walkMessage(toStream(msg));
    expect(before.parts.map((p) => p.id)).toEqual(['1', '2', '2.1', '2.2']);
    const { out, result } = await copy(msg, { strip: [{ part: '2.2', note: 'removed\r\n' }] });
    expect(result.stripped).toEqual(['2']);
    const after = await walkMessage(toStream(out));
    expect(after.parts.map((p) => [p.id, p.contentType])).toEqual([
      ['1', 'text/plain'],
      ['2', 'text/plain'],
    ]);
    expect(out.toString('latin1')).not.toContain('run.exe');
  });

  it('disarms HTML in the same pass, the text part byte-identical', async () => {
    const msg = buildMessage({ multipart: 'alternative', boundary: 'A', parts: [text('plain\r\n'), html('<p onclick="x()">hi</p>\r\n')] }, HEADERS);
    const { out, result } = await copy(msg, { disarm: { ...SETTINGS, registrableDomain } });
    expect(result.disarm?.changed).toBe(true);
    expect(segments(out, 'A')[0]).toBe(segments(msg, 'A')[0]);
    expect(out.toString('latin1')).not.toContain('onclick');
  });

  // A header block with no blank line before the next delimiter: mailsplit dropped these header
  // lines (sibling delimiter next) or wrote them twice (closing delimiter next) while reporting
  // nothing changed (scanners/splitter.ts).
  it.each([
    ['a sibling delimiter', '--B\r\nContent-Type: text/plain\r\nX-Note: kept\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n'],
    [
      'the closing delimiter',
      '--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\nContent-Type: text/html\r\n<p>no blank line</p>\r\n--B--\r\nepilogue\r\n',
    ],
  ])('keeps every byte of a part whose header block runs into %s', async (_name, body) => {
    const msg = Buffer.from(`From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\npreamble\r\n${body}`);
    for (const chunk of [1, 7, 333]) {
      const sink = new PassThrough();
      const out = collect(sink);
      const result = await writeCopy(toStream(msg, chunk), sink, {
        stamp: { prepend: [], removePrefixes: [], subjectTag: null },
        strip: [],
        disarm: { ...SETTINGS, registrableDomain },
        limits: LIMITS,
      });
      sink.end();
      expect(result.disarm?.changed).toBe(false);
      expect((await out).toString('latin1')).toBe(msg.toString('latin1'));
    }
    // ...and the walk sees the part a mail client shows.
    const facts = await walkMessage(toStream(msg));
    expect(facts.parts).toHaveLength(2);
  });
});

describe('scanText predicts what the rewrite will do', () => {
  const corpus: [string, PartSpec][] = [
    [
      'phishing and script',
      { multipart: 'alternative', parts: [text('x'), html('<a href="https://evil.example/">https://www.bank.test/</a><script>x()</script>')] },
    ],
    ['web bug only', { multipart: 'alternative', parts: [text('x'), html('<img src="https://t.test/p.gif" width="1" height="1"><p>hi</p>')] }],
    ['nothing', html('<p>hello</p>')],
    [
      'html in an attached message',
      {
        multipart: 'mixed',
        parts: [
          text('x'),
          { contentType: 'message/rfc822', body: buildMessage(html('<iframe src="https://x.test/"></iframe>'), ['Subject: i', 'MIME-Version: 1.0']) },
        ],
      },
    ],
    ['latin-1 8-bit', { contentType: 'text/html; charset=iso-8859-1', encoding: '8bit', body: Buffer.from('<p onmouseover="x()">caf\xe9</p>', 'latin1') }],
  ];
  it.each(corpus)('%s', async (_name, root) => {
    const msg = buildMessage(root, HEADERS);
    const predicted = await scanText(toStream(msg), {
      ...LIMITS,
      maxHtmlPartBytes: 4 << 20,
      maxTextPartBytes: 1 << 20,
      maxHosts: 50,
      disarm: [SETTINGS],
      registrableDomain,
    });
    const { result } = await copy(msg, { disarm: { ...SETTINGS, registrableDomain } });
    const scan = predicted.html.get(disarmKey(SETTINGS))!;
    expect(scan.changed).toBe(result.disarm!.changed);
    expect(scan.findings).toEqual(result.disarm!.findings);
  });

  it('collects the hosts of text and HTML bodies, bounded', async () => {
    const msg = buildMessage(
      { multipart: 'alternative', parts: [text('see www.one.test and http://two.test/x'), html('<a href="https://three.test/">x</a> four.com')] },
      HEADERS,
    );
    const r = await scanText(toStream(msg), { ...LIMITS, maxHtmlPartBytes: 4 << 20, maxTextPartBytes: 1 << 20, maxHosts: 3, disarm: [], registrableDomain });
    expect(r.hosts).toEqual(['www.one.test', 'two.test', 'three.test']);
    expect(r.truncated).toBe(true);
  });
});

describe('isOurAuthResults', () => {
  it.each([
    ['Authentication-Results: mx.gw.test; spf=pass', true],
    ['Authentication-Results:   MX.GW.TEST 1;\r\n dkim=pass', true],
    ['Authentication-Results: mx.gw.test.evil; spf=pass', false],
    ['Authentication-Results: other.test; spf=pass', false],
    ['ARC-Authentication-Results: i=1; mx.gw.test; spf=pass', false],
  ])('%s → %s', (line, expected) => {
    expect(isOurAuthResults(line.slice(0, line.indexOf(':')).toLowerCase(), line, 'mx.gw.test')).toBe(expected);
  });
});
