// Issue 5, step 1: the MIME walk and the attachment rules in the scan, over real SMTP with the
// suite's real clamd and spamd. Every message is generated here; for each: the verdict, the
// action, and what the recipient (or nobody) got.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eicarBytes } from '../support/eicar.ts';
import { nestedZip } from '../support/zip.ts';
import { FAKE_PE, attachment, buildMessage, text, zip, type PartSpec, mailDate } from '../support/mime.ts';
import { mailboxMessages, sendRaw, splitMessage, startTestGateway, waitForStatus, type TestGateway } from '../support/gateway.ts';
import type { MessageStatus } from '../../gateway/store/metadata.ts';

const HEADERS = ['From: Bob <bob@sender.test>', 'To: alice@example.test', 'Subject: quarterly figures', `Date: ${mailDate()}`, 'MIME-Version: 1.0'];
const withText = (...parts: PartSpec[]): Buffer =>
  buildMessage({ multipart: 'mixed', boundary: 'OUTER', parts: [text('Please see the attachment.\r\n'), ...parts] }, HEADERS);

async function send(gw: TestGateway, raw: Buffer, final: MessageStatus[], rcpt = 'alice@example.test') {
  const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: [rcpt] }, raw);
  expect(sent.code).toBe(250);
  await waitForStatus(gw, sent.id!, final);
  return (await gw.stores.store.get(sent.id!))!;
}

describe('attachments and MIME structure (default policy)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('EICAR three zips deep: virus, quarantined, nothing delivered', async () => {
    const row = await send(
      gw,
      withText(attachment('archive.zip', nestedZip(eicarBytes(), 'readme.txt', 3), { type: 'application/zip' })),
      ['quarantined'],
      'v1@example.test',
    );
    expect(row.verdict).toBe('virus');
    expect(row.reason).toMatch(/^contains the virus .*Eicar/i);
    expect(row.report?.outcome).toMatchObject({ class: 'virus', action: 'quarantine', recipients: ['v1@example.test'] });
    expect(await mailboxMessages(gw, 'v1@example.test')).toHaveLength(0);
  });

  it('an executable renamed .pdf: banned by its content', async () => {
    const row = await send(gw, withText(attachment('invoice.pdf', FAKE_PE, { type: 'application/pdf' })), ['quarantined'], 'b1@example.test');
    expect(row.verdict).toBe('banned');
    expect(row.reason).toBe('the attachment "invoice.pdf" is not allowed: content is a Windows/DOS executable (MZ)');
    expect(row.report?.attachments).toMatchObject({
      status: 'checked',
      files: [{ part: '2', filename: 'invoice.pdf', detected: 'Windows/DOS executable (MZ)' }],
    });
    expect(await mailboxMessages(gw, 'b1@example.test')).toHaveLength(0);
  });

  it('a right-to-left-override name (RFC 2231): banned, the trick named', async () => {
    const part = attachment('x', 'harmless', { ctName: null, disposition: "attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe" });
    const row = await send(gw, withText(part), ['quarantined'], 'b2@example.test');
    expect(row.verdict).toBe('banned');
    const reasons = row.report?.outcome?.reasons ?? [];
    expect(reasons).toContain('the attachment "invoice\u202efdp.exe" is not allowed: .exe files are not allowed');
    expect(reasons.some((r) => /right-to-left override/.test(r))).toBe(true);
  });

  it('a banned name inside a zip, and an encrypted zip: banned', async () => {
    const inner = await send(
      gw,
      withText(attachment('tools.zip', zip([{ name: 'docs/setup.exe', data: 'MZ' }]), { type: 'application/zip' })),
      ['quarantined'],
      'b3@example.test',
    );
    expect(inner.verdict).toBe('banned');
    expect(inner.report?.attachments).toMatchObject({
      findings: expect.arrayContaining([expect.objectContaining({ filename: 'docs/setup.exe', archivePath: ['tools.zip'] })]),
    });
    const locked = await send(
      gw,
      withText(attachment('secret.zip', zip([{ name: 'a.txt', data: 'hi', encrypted: true }]), { type: 'application/zip' })),
      ['quarantined'],
      'b4@example.test',
    );
    expect(locked.verdict).toBe('banned');
    expect(locked.reason).toMatch(/encrypted archive member cannot be scanned/);
  });

  it('a zip past the entry bound (a bomb shape): unscannable, quarantined — never read as clean', async () => {
    const many = zip(Array.from({ length: 1001 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })));
    const row = await send(gw, withText(attachment('many.zip', many, { type: 'application/zip' })), ['quarantined'], 'u1@example.test');
    expect(row.verdict).toBe('unscannable');
    expect(row.reason).toBe('the attachment "many.zip" could not be fully scanned: more than 1000 archive entries');
  });

  it('past the MIME part limit: malformed, quarantined — and the worker goes on', async () => {
    const parts = Array.from({ length: 600 }, (_, i) => text(`part ${i}\r\n`));
    const row = await send(gw, buildMessage({ multipart: 'mixed', parts }, HEADERS), ['quarantined'], 'm1@example.test');
    expect(row.verdict).toBe('malformed');
    expect(row.reason).toBe('the message structure is broken: more than 500 MIME parts');
    // a multipart whose boundary is missing hides its parts from every scanner
    const noBoundary = Buffer.from(`${HEADERS.join('\r\n')}\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n`);
    const row2 = await send(gw, noBoundary, ['quarantined'], 'm2@example.test');
    expect(row2.verdict).toBe('malformed');
    expect(row2.reason).toBe('the message structure is broken: multipart part without a usable boundary');
  });

  it('many parts within the limits, an 8-bit body: delivered, every body byte as sent', async () => {
    const eight = { contentType: 'text/plain; charset=utf-8', encoding: '8bit' as const, body: 'Grüße, café, naïve — 8-bit\r\n' };
    const parts: PartSpec[] = [eight, ...Array.from({ length: 150 }, (_, i) => attachment(`note-${i}.txt`, `line ${i}\r\n`, { type: 'text/plain' }))];
    const raw = buildMessage({ multipart: 'mixed', parts }, HEADERS);
    const row = await send(gw, raw, ['delivered'], 'c1@example.test');
    expect(row.verdict).toBe('clean');
    const [got] = await mailboxMessages(gw, 'c1@example.test');
    expect(splitMessage(got).body.equals(splitMessage(raw).body)).toBe(true);
    expect(row.report?.attachments).toMatchObject({ status: 'checked', parts: 151, findings: [] });
  });
});

describe('banned attachments removed by policy (action strip)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ domains: { 'example.test': { policy: { actions: { banned: { do: 'strip', notifyAdmin: true } } } } } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('delivers the rest with a note in its place and the subject tagged {Filename?}', async () => {
    const raw = withText(attachment('invoice.pdf.exe', FAKE_PE), attachment('report.pdf', Buffer.from('%PDF-1.7\n%%EOF\n'), { type: 'application/pdf' }));
    const row = await send(gw, raw, ['delivered'], 'alice@example.test');
    expect(row.verdict).toBe('banned');
    expect(row.report?.outcome).toMatchObject({ action: 'strip' });
    expect(row.report?.attachments).toMatchObject({ stripped: ['2'] });
    const [got] = await mailboxMessages(gw, 'alice@example.test');
    const head = splitMessage(got).head.replace(/\r\n[ \t]+/g, ' ');
    expect(head).toContain('Subject: {Filename?} quarterly figures\r\n');
    expect(head).toMatch(/X-Mailmoat-Warning: banned: the attachment "invoice\.pdf\.exe" is not allowed: \.exe files are not allowed/);
    const segments = (b: Buffer) => b.toString('latin1').split('--OUTER').slice(1, -1);
    const [textIn, , pdfIn] = segments(raw);
    const [textOut, noteOut, pdfOut] = segments(got);
    expect(textOut).toBe(textIn); // the text part byte for byte
    expect(pdfOut).toBe(pdfIn); // the allowed attachment byte for byte
    expect(noteOut).toBe(
      '\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: 7bit\r\n\r\n' +
        '[mailmoat removed an attachment: "invoice.pdf.exe"]\r\n' +
        'Reason: .exe files are not allowed\r\nReason: double extension: looks like .pdf but is .exe\r\nReason: content is a Windows/DOS executable (MZ)\r\n' +
        `The rest of the message is as it was sent. Message id ${row.id};\r\nask your mail administrator if you need the original attachment.\r\n`,
    );
    expect(got.toString('latin1')).not.toContain(FAKE_PE.toString('base64').slice(0, 40));
    // the administrator is told (postmaster of the recipient's domain, a message of its own)
    await waitForStatus(gw, `${row.id}-A1`, ['delivered']);
    const [notice] = await mailboxMessages(gw, 'postmaster@example.test');
    expect(splitMessage(notice).head).toMatch(/Subject: \[mailmoat\] delivered with attachments removed: quarterly figures/);
    expect(notice.toString('latin1')).toMatch(/Verdict: {2}banned/);
  });
});
