// A seeded corpus of 154 ordinary, odd and broken messages (multipart trees with HTML, phishing
// links, executables, zips and forwarded messages; lost lines, header blocks without their end,
// stray delimiters, messages cut short), for the equivalence tests of a path that is replaced by a
// cheaper one: the MIME pass (mime-pass.test.ts) and the DKIM header scan (mailauth-core.test.ts).
import { prng } from './prng.ts';
import { FAKE_PE, attachment, buildMessage, html, nested, text, zip, type PartSpec } from './mime.ts';

export const PHISH = '<p onclick="x()">pay <a href="https://evil.test/login">https://www.bank.test/</a> <img src="https://track.test/p.gif"></p>\r\n';

export function mimeCorpus(): { name: string; msg: Buffer }[] {
  const r = prng(16);
  const int = (n: number) => Math.floor(r() * n);
  const leaves: PartSpec[] = [
    text('see www.one.test and https://two.test/x\r\n'),
    html(PHISH),
    { contentType: 'text/html; charset=iso-8859-1', encoding: 'base64', body: Buffer.from('<a href="http://caf\xe9.test/">caf\xe9</a>', 'latin1') },
    { contentType: 'text/html', encoding: '7bit', body: `<div>${'<p>x</p>'.repeat(900)}</div>` },
    attachment('setup.exe', FAKE_PE),
    attachment('invoice.zip', zip([{ name: 'a/b.js', data: Buffer.from('alert(1)') }])),
    {
      contentType: 'message/rfc822',
      body: buildMessage({ multipart: 'mixed', parts: [html(PHISH), attachment('x.exe', FAKE_PE)] }, ['Subject: inner', 'MIME-Version: 1.0']),
    },
  ];
  const some = () => Array.from({ length: 1 + int(4) }, () => leaves[int(leaves.length)]);
  const out: { name: string; msg: Buffer }[] = [
    { name: 'too many parts', msg: buildMessage({ multipart: 'mixed', parts: Array.from({ length: 20 }, () => text('www.many.test')) }) },
    { name: 'nested too deep, HTML at the bottom', msg: buildMessage(nested(6, html(PHISH))) },
    { name: 'a header block past its bound', msg: buildMessage(text('x'), [`Subject: ${'y'.repeat(3000)}`, 'MIME-Version: 1.0']) },
    { name: 'no MIME at all', msg: Buffer.from('Subject: hi\r\n\r\nvisit www.plain.test\r\n') },
  ];
  for (let i = 0; i < 150; i++) {
    const root: PartSpec =
      r() < 0.5
        ? { multipart: (['mixed', 'alternative', 'related'] as const)[int(3)], parts: some() }
        : { multipart: 'mixed', parts: [{ multipart: 'alternative', parts: some() }, ...some()] };
    let msg = buildMessage(root);
    const lines = msg.toString('latin1').split('\r\n');
    switch (int(5)) {
      case 0:
        lines.splice(int(lines.length), 1);
        break; // a line lost
      case 1: {
        const b = lines.flatMap((l, j) => (l === '' ? [j] : []));
        if (b.length) lines.splice(b[int(b.length)], 1);
        break;
      } // a header block without its end
      case 2:
        lines.splice(int(lines.length), 0, `--${/boundary="?([^";\r\n]+)/.exec(msg.toString('latin1'))?.[1] ?? 'x'}`);
        break; // a stray delimiter
      case 3:
        msg = msg.subarray(0, int(msg.length));
        break; // cut short
      default:
        break;
    }
    if (!msg.equals(Buffer.from(lines.join('\r\n'), 'latin1')) && lines.length > 1) msg = Buffer.from(lines.join('\r\n'), 'latin1');
    out.push({ name: `seeded #${i}`, msg });
  }
  return out;
}
