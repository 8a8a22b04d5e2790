import { describe, expect, it } from 'vitest';
import { WireTap } from '../../../gateway/smtp/wiretap.ts';

/** Each string is one read from the socket. */
function tap(reads: string[]) {
  const t = new WireTap();
  for (const r of reads) t.observe(Buffer.from(r, 'latin1'));
  return t.findings;
}

describe('WireTap', () => {
  it.each([
    [
      'lawful: EHLO alone, then a MAIL/RCPT/DATA group, then the body',
      ['EHLO a\r\n', 'MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n', 'Subject: x\r\n\r\nhi\r\n.\r\n'],
      undefined,
    ],
    ['lawful: next transaction right after the end of data', ['EHLO a\r\n', 'DATA\r\n', 'hi\r\n.\r\nMAIL FROM:<a@b.c>\r\n'], undefined],
    ['lawful: the body in many reads, the end split across two', ['EHLO a\r\n', 'DATA\r\n', 'line\r', '\n.', '\r\nQUIT\r\n'], undefined],
    ['lawful: an empty message', ['EHLO a\r\n', 'DATA\r\n', '.\r\n', 'QUIT\r\n'], undefined],
    ['the message with DATA', ['EHLO a\r\n', 'MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nbody\r\n.\r\n'], 'DATA'],
    ['commands with EHLO', ['EHLO a\r\nMAIL FROM:<a@b.c>\r\n'], 'EHLO'],
    ['commands with HELO', ['HELO a\r\nMAIL FROM:<a@b.c>\r\n'], 'HELO'],
    ['a group after HELO (no PIPELINING)', ['HELO a\r\n', 'MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n'], 'MAIL (after HELO, without PIPELINING)'],
    ['command words in any case, after leading blanks', ['  ehlo a\r\n', '\tmail FROM:<a@b.c>\r\n', 'Data\r\nbody\r\n.\r\n'], 'DATA'],
    ['a blank line is no command', ['EHLO a\r\n', '   \r\n', 'MAIL FROM:<a@b.c>\r\n'], undefined],
    ['smuggled "DATA" inside a body is body', ['EHLO a\r\n', 'DATA\r\n', 'x\n.\nMAIL FROM:<e@v.il>\r\nDATA\r\nsmuggled\r\n.\r\n'], undefined],
  ])('%s', (_name, reads, pipelining) => {
    expect(tap(reads).pipelining).toBe(pipelining);
  });

  it('finds the end of data wherever the reads cut the body and its end, and resumes at the next command', () => {
    // Lines that look like an end but are not ("." not alone on its line) and a HELO that is body
    // (a false end would report it), then the end, then an EHLO pipelined with MAIL: seen only if
    // command mode resumes exactly after the end.
    const body = 'x\r\n.y\r\nHELO q\r\n..\r\nz.\r\n\r\n.\r\n';
    const after = 'EHLO b\r\nMAIL FROM:<a@b.c>\r\n';
    for (let i = 0; i <= body.length; i++) {
      for (let j = i; j <= body.length; j++) {
        const reads = ['EHLO a\r\n', 'DATA\r\n', body.slice(0, i), body.slice(i, j), body.slice(j) + after].filter((r) => r.length > 0);
        expect(tap(reads).pipelining, JSON.stringify(reads)).toBe('EHLO');
      }
    }
    expect(tap(['EHLO a\r\n', 'DATA\r\n', ...body, after]).pipelining).toBe('EHLO');
  });

  it('notices a command line ended by a bare LF, not one in the body', () => {
    expect(tap(['EHLO a\r\n', 'MAIL FROM:<a@b.c>\n']).bareLfInCommand).toBe(true);
    expect(tap(['EHLO a\r\n', 'DATA\r\n', 'a\nb\r\n.\r\n']).bareLfInCommand).toBe(false);
  });

  it('stops at STARTTLS: what follows is TLS', () => {
    expect(tap(['EHLO a\r\n', 'STARTTLS\r\n', '\x16\x03\x01garbage\nEHLO\r\nMAIL\r\n'])).toEqual({ bareLfInCommand: false });
  });
});
