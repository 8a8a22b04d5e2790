// Every verdict explained in plain words: a small corpus of dangerous and spam messages through the
// real gateway, clamd and spamd; each quarantined message's first reason (what the message list,
// the digest and the scan report show) must be a sentence, not a bare scanner rule name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eicarBytes } from '../support/eicar.ts';
import { nestedZip } from '../support/zip.ts';
import { FAKE_ELF, FAKE_PE, attachment, buildMessage, html, mailDate, text, zip, type PartSpec } from '../support/mime.ts';
import { sendRaw, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const head = (subject: string, extra: string[] = []) => [
  'From: Bob <bob@sender.test>',
  'To: alice@example.test',
  `Subject: ${subject}`,
  `Date: ${mailDate()}`,
  'MIME-Version: 1.0',
  ...extra,
];
const mixed = (subject: string, ...parts: PartSpec[]) =>
  buildMessage({ multipart: 'mixed', boundary: 'OUTER', parts: [text('Please see the attachment.\r\n'), ...parts] }, head(subject));
const alt = (subject: string, plain: string, markup: string) =>
  buildMessage({ multipart: 'alternative', boundary: 'ALT', parts: [text(plain), html(markup)] }, head(subject));

const CORPUS: [string, Buffer][] = [
  ['eicar', mixed('invoice', attachment('eicar.com', eicarBytes()))],
  ['eicar in zips', mixed('archive', attachment('archive.zip', nestedZip(eicarBytes(), 'readme.txt', 2), { type: 'application/zip' }))],
  ['exe as pdf', mixed('invoice', attachment('invoice.pdf', FAKE_PE, { type: 'application/pdf' }))],
  ['exe in zip', mixed('tools', attachment('tools.zip', zip([{ name: 'docs/setup.exe', data: 'MZ' }]), { type: 'application/zip' }))],
  ['encrypted zip', mixed('secret', attachment('secret.zip', zip([{ name: 'a.txt', data: 'hi', encrypted: true }]), { type: 'application/zip' }))],
  ['double extension', mixed('report', attachment('report.pdf.exe', FAKE_PE))],
  ['script attachment', mixed('photos', attachment('photos.js', 'WScript.Echo(1)', { type: 'application/javascript' }))],
  ['elf as txt', mixed('notes', attachment('notes.txt', FAKE_ELF, { type: 'text/plain' }))],
  ['gtube', buildMessage(text(`${GTUBE}\r\n`), head('cheap pills'))],
  ['gtube html with link', alt('your account', `${GTUBE}\r\n`, `<p>${GTUBE}</p><p><a href="https://evil-login.example.net/">https://www.paypal.com/</a></p>`)],
  ['gtube html only', buildMessage(html(`<html><body><p>${GTUBE}</p><p>Buy now</p></body></html>`), head('offer'))],
  [
    'gtube no date',
    buildMessage(text(`${GTUBE}\r\nvisit http://cheap.example/ now\r\n`), [
      'From: x@sender.test',
      'To: alice@example.test',
      'Subject: WIN $$$ NOW',
      'MIME-Version: 1.0',
    ]),
  ],
  ['gtube and eicar', buildMessage({ multipart: 'mixed', boundary: 'B', parts: [text(`${GTUBE}\r\n`), attachment('eicar.com', eicarBytes())] }, head('both'))],
  ['malformed', Buffer.from(`${head('broken').join('\r\n')}\r\nContent-Type: multipart/mixed\r\n\r\nno boundary here\r\n`)],
];

/**
 * A plain-language reason: a sentence of several words that names no scanner rule bare (no
 * SpamAssassin rule name of that message, no SNAKE_CASE token).
 */
function isPlain(reason: string | null, row: MessageRecord): boolean {
  if (!reason || reason.split(/\s+/).length < 4) return false;
  const rules = row.report?.spam.status === 'scored' ? row.report.spam.rules : [];
  const words = new Set(reason.split(/[^A-Za-z0-9_]+/));
  return !rules.some((r) => words.has(r)) && !/\b[A-Z0-9]+_[A-Z0-9_]+\b/.test(reason);
}

describe('plain-language reasons over a small corpus', () => {
  let gw: TestGateway;
  const rows: { name: string; row: MessageRecord }[] = [];
  beforeAll(async () => {
    gw = await startTestGateway();
    for (const [i, [name, raw]] of CORPUS.entries()) {
      const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [`c${i}@example.test`] }, raw);
      expect(sent.code, name).toBe(250);
      await waitForStatus(gw, sent.id!, ['quarantined', 'delivered']);
      rows.push({ name, row: (await gw.stores.store.get(sent.id!))! });
    }
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  it('at least 95 % of the quarantined messages have a plain-language first reason', () => {
    const held = rows.filter(({ row }) => row.status === 'quarantined');
    expect(held.length).toBe(CORPUS.length);
    const notPlain = held.filter(({ row }) => !isPlain(row.reason, row)).map(({ name, row }) => `${name}: ${row.reason}`);
    expect(notPlain.length / held.length, notPlain.join('\n')).toBeLessThanOrEqual(0.05);
  });

  it('names the virus, the attachment, the misleading link and the strongest SpamAssassin signs by their descriptions', () => {
    const reason = (name: string) => rows.find((r) => r.name === name)!.row.reason!;
    expect(reason('eicar')).toMatch(/^contains the virus \S*Eicar/i);
    expect(reason('exe as pdf')).toBe('the attachment "invoice.pdf" is not allowed: content is a Windows/DOS executable (MZ)');
    expect(reason('gtube')).toMatch(
      /^SpamAssassin score \d+\.\d, 10\.0 or more is high spam; strongest signs: Generic Test for Unsolicited Bulk Email \(\+1000\.0\)/,
    );
    const linked = rows.find((r) => r.name === 'gtube html with link')!.row;
    expect(linked.report?.outcome?.reasons).toContain('a link shows www.paypal.com but goes to evil-login.example.net');
    // The scan report keeps each rule with its score and description for the message view.
    expect(linked.report?.spam).toMatchObject({
      details: expect.arrayContaining([{ rule: 'GTUBE', score: 1000, description: 'Generic Test for Unsolicited Bulk Email' }]),
    });
  });
});
