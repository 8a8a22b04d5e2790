// The test messages: deterministic (seeded), ordinary-looking mail of an exact size, so every
// run and every stage sees the same bytes. The small one is a personal message (text + HTML
// alternative, a couple of links); the medium one a newsletter with an HTML body and a PDF
// attachment; the large one a 30 MB attachment. HTML and MIME structure are there on purpose:
// they give the HTML-disarm, attachment and authentication stages real work.
//
// Files use LF line ends: smtp-source -F sends each line with CRLF. `wireBytes` is what the
// server receives (CRLF), which is also what the gateway hands to spamd.

const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not ' +
  'what all were we when your can said there use an each which she do how their if will up other about out many then ' +
  'them these so some her would make like him into time has look two more write go see number no way could people my ' +
  'than first water been call who oil its now find long down day did get come made may part meeting invoice project ' +
  'report team schedule update review thanks please attached document quarter budget office customer order delivery ' +
  'account service support product release notes agenda minutes summary plan draft final version feedback question'
).split(' ');

/** mulberry32: a small, well-known seeded PRNG, so the messages never change between runs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sentence(rand: () => number): string {
  const n = 6 + Math.floor(rand() * 12);
  const words = Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]);
  const s = words.join(' ');
  return s[0].toUpperCase() + s.slice(1) + '.';
}

/** Lines of prose wrapped at 72 columns, about `bytes` long. */
function prose(rand: () => number, bytes: number): string[] {
  const lines: string[] = [];
  let line = '';
  let total = 0;
  while (total < bytes) {
    for (const w of sentence(rand).split(' ')) {
      if (line.length + w.length + 1 > 72) {
        lines.push(line);
        total += line.length + 2;
        line = '';
      }
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function htmlBody(rand: () => number, bytes: number): string[] {
  const out = [
    '<!DOCTYPE html>',
    '<html><head><meta charset="utf-8"><title>Update</title>',
    '<style>p { font-family: sans-serif; } .x { color: #333 }</style></head>',
    '<body>',
  ];
  let total = out.join('\r\n').length;
  let i = 0;
  while (total < bytes) {
    const p = prose(rand, 200).join(' ');
    const line =
      i % 3 === 0
        ? `<p class="x">${p} <a href="https://www.sender.test/news/${i}?utm_source=mail">Read more</a></p>`
        : i % 3 === 1
          ? `<p>${p}</p><img src="https://cdn.sender.test/img/${i}.png" width="120" height="40" alt="pic">`
          : `<table><tr><td><b>${p.slice(0, 60)}</b></td><td>${p.slice(60)}</td></tr></table>`;
    out.push(line);
    total += line.length + 2;
    i++;
  }
  out.push('</body></html>');
  return out;
}

function base64Lines(rand: () => number, rawBytes: number, magic: string): string[] {
  const raw = Buffer.alloc(rawBytes);
  for (let i = 0; i < rawBytes; i++) raw[i] = Math.floor(rand() * 256);
  raw.write(magic, 0, 'latin1');
  const b64 = raw.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines;
}

function headers(id: string, subject: string, contentType: string): string[] {
  return [
    'Return-Path: <alice@sender.test>',
    'From: "Alice Sender" <alice@sender.test>',
    'To: "A User" <user@bench.test>',
    `Subject: ${subject}`,
    'Date: Tue, 03 Nov 2026 10:15:00 +0000',
    `Message-ID: <${id}@sender.test>`,
    'MIME-Version: 1.0',
    `Content-Type: ${contentType}`,
  ];
}

function alternative(rand: () => number, boundary: string, textBytes: number, htmlBytes: number): string[] {
  return [
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    ...prose(rand, textBytes),
    `--${boundary}`,
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    ...htmlBody(rand, htmlBytes),
    `--${boundary}--`,
  ];
}

/** Bytes on the wire for these lines (CRLF after each line). */
function wireSize(lines: string[]): number {
  return lines.reduce((n, l) => n + Buffer.byteLength(l) + 2, 0);
}

/**
 * A message of exactly `targetBytes` on the wire (CRLF). The prose of the first text part
 * absorbs the difference; the structure depends only on the kind.
 */
export function makeMessage(kind: 'small' | 'medium' | 'large', targetBytes: number): string[] {
  const build = (pad: number): string[] => {
    const rand = prng(kind === 'small' ? 1 : kind === 'medium' ? 2 : 3);
    if (kind === 'small') {
      return [
        ...headers('bench-small', 'Notes from the meeting', 'multipart/alternative; boundary="alt-1"'),
        '',
        ...alternative(rand, 'alt-1', 500, 700),
        ...padding(pad),
      ];
    }
    // A base64 line of 76 characters carries 57 bytes and costs 78 on the wire.
    const attachmentRaw = kind === 'medium' ? 18_000 : Math.floor((targetBytes - 6000) / 78) * 57;
    return [
      ...headers(`bench-${kind}`, kind === 'medium' ? 'Monthly update and report' : 'The full archive', 'multipart/mixed; boundary="mix-1"'),
      '',
      'This is a multi-part message in MIME format.',
      '--mix-1',
      'Content-Type: multipart/alternative; boundary="alt-1"',
      '',
      ...alternative(rand, 'alt-1', kind === 'medium' ? 6000 : 1000, kind === 'medium' ? 18_000 : 1000),
      '--mix-1',
      'Content-Type: application/pdf; name="report.pdf"',
      'Content-Disposition: attachment; filename="report.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      ...base64Lines(rand, attachmentRaw, '%PDF-1.4\n'),
      '--mix-1--',
      ...padding(pad),
    ];
  };
  const base = build(0);
  const missing = targetBytes - wireSize(base);
  if (missing < 0) throw new Error(`${kind} message is ${wireSize(base)} bytes before padding, above ${targetBytes}`);
  const lines = build(missing);
  if (wireSize(lines) !== targetBytes) throw new Error(`${kind}: built ${wireSize(lines)} bytes, wanted ${targetBytes}`);
  return lines;
}

/** Trailing text after the last MIME boundary (the epilogue, ignored by MIME readers): exactly `bytes` on the wire. */
function padding(bytes: number): string[] {
  if (bytes === 0) return [];
  if (bytes < 2) throw new Error('cannot pad by 1 byte');
  const lines: string[] = [];
  let left = bytes;
  while (left > 0) {
    // Each line costs its length + 2 (CRLF); keep the last one at least 0 long.
    const len = Math.min(70, left - 2);
    if (left - (len + 2) === 1) {
      // Would leave 1 byte, which no line can take: make this line one shorter and the next 1 char.
      lines.push(filler(len - 1));
      left -= len + 1;
      continue;
    }
    lines.push(filler(len));
    left -= len + 2;
  }
  return lines;
}

function filler(len: number): string {
  return 'Thanks again and see you at the next meeting. '.repeat(2).slice(0, len);
}

/** The file smtp-source -F reads. */
export function asSourceFile(lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** What the SMTP server receives and the gateway spools (CRLF, no dot-stuffing). */
export function wireBytes(lines: string[]): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n');
}
