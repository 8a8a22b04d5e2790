import { Readable } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { analyseName, evaluateAttachments, mergeAttachmentRules, type AttachmentReport } from '../../rules/attachments.ts';
import { DEFAULT_ATTACHMENT_RULES } from '../../rules/defaults/attachments.ts';
import { walkMessage, type WalkLimits } from '../../scanners/mime-walk.ts';
import { DEFAULT_ZIP_LIMITS } from '../../scanners/zip-inspect.ts';
import { attachment, buildMessage, FAKE_ELF, FAKE_PDF, FAKE_PE, nested, text, toStream, zip, type PartSpec } from '../support/mime.ts';

async function check(root: PartSpec, limits: Partial<WalkLimits> = {}, rules = DEFAULT_ATTACHMENT_RULES): Promise<AttachmentReport> {
  const facts = await walkMessage(toStream(buildMessage(root)), limits);
  return evaluateAttachments(facts, rules);
}

const withBody = (...parts: PartSpec[]): PartSpec => ({ multipart: 'mixed', parts: [text('see attached'), ...parts] });
const rules = (r: AttachmentReport) => r.findings.map((f) => f.rule).sort();

describe('names', () => {
  it('refuses a banned extension', async () => {
    const r = await check(withBody(attachment('setup.exe', 'hello')));
    expect(rules(r)).toEqual(['banned-name']);
    expect(r.classes).toEqual(['banned']);
    expect(r.parts.banned).toEqual(['2']);
    expect(r.findings[0]).toMatchObject({ part: '2', filename: 'setup.exe', class: 'banned' });
  });

  it('finds a double extension', async () => {
    const r = await check(withBody(attachment('invoice.pdf.exe', 'x')));
    expect(rules(r)).toEqual(['banned-name', 'double-extension']);
    const html = await check(withBody(attachment('invoice.pdf.html', '<p>x</p>')));
    expect(rules(html)).toEqual(['double-extension']);
  });

  it('lets a zipped document through (decoy followed by an archive)', async () => {
    const r = await check(withBody(attachment('scan.pdf.zip', zip([{ name: 'scan.pdf', data: FAKE_PDF }]))));
    expect(r.findings).toEqual([]);
  });

  it('sees through a right-to-left override given in RFC 2231 form', async () => {
    // Shown as "invoiceexe.pdf"; saved and run as invoicefdp.exe.
    const part = attachment('x', 'x', { ctName: null, disposition: "attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe" });
    const r = await check(withBody(part));
    expect(rules(r)).toEqual(['banned-name', 'hidden-extension']);
    expect(r.findings.find((f) => f.rule === 'hidden-extension')?.reason).toMatch(/right-to-left/);
  });

  it('flags bidi controls even when the real extension is harmless', async () => {
    const r = await check(
      withBody(attachment('report\u202etxt.pdf', 'x', { ctName: null, disposition: "attachment; filename*=utf-8''report%E2%80%AEtxt.pdf" })),
    );
    expect(rules(r)).toEqual(['hidden-extension']);
  });

  it('strips trailing dots and spaces as Windows does', async () => {
    expect(rules(await check(withBody(attachment('evil.exe.', 'x'))))).toEqual(['banned-name', 'hidden-extension']);
    expect(rules(await check(withBody(attachment('evil.exe   ', 'x'))))).toEqual(['banned-name', 'hidden-extension']);
  });

  it('flags a CLSID extension', async () => {
    const r = await check(withBody(attachment('readme.txt.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}', 'x')));
    expect(rules(r)).toEqual(['hidden-extension']);
    expect(r.findings[0].reason).toMatch(/CLSID/);
  });

  it('flags a Content-Type name that differs from the Content-Disposition filename', async () => {
    const r = await check(withBody(attachment('photo', 'x', { ctName: 'photo.jpg', cdName: 'photo.scr' })));
    expect(rules(r)).toEqual(['banned-name', 'name-mismatch']);
    const benign = await check(withBody(attachment('a', 'x', { ctName: 'a.pdf', cdName: 'b.pdf' })));
    expect(rules(benign)).toEqual(['name-mismatch']);
    const same = await check(withBody(attachment('Report.PDF', 'x', { ctName: 'report.pdf' })));
    expect(same.findings).toEqual([]);
  });

  it('joins RFC 2231 continuations and decodes RFC 2047 words before judging', async () => {
    const continued = attachment('x', 'x', { ctName: null, disposition: `attachment; filename*0*=utf-8''%E2%80%AE; filename*1="gpj.exe"` });
    expect(rules(await check(withBody(continued)))).toEqual(['banned-name', 'hidden-extension']);
    const encodedWord = attachment('x', 'x', { ctName: '=?utf-8?B?aW52b2ljZS5leGU=?=', cdName: null });
    const r = await check(withBody(encodedWord));
    expect(r.findings[0]).toMatchObject({ rule: 'banned-name', filename: 'invoice.exe' });
    const accented = attachment('x', FAKE_PDF, { ctName: null, disposition: "attachment; filename*=iso-8859-1'fr'r%E9sum%E9.pdf" });
    expect((await check(withBody(accented))).findings).toEqual([]);
  });

  it('checks every declared name when duplicates disagree', async () => {
    const dup = attachment('x', 'x', { ctName: null, disposition: 'attachment; filename="a.pdf"; filename="a.exe"' });
    expect(rules(await check(withBody(dup)))).toEqual(['banned-name', 'name-mismatch']);
  });

  it('normalises full-width letters (NFKC) before comparing', () => {
    expect(analyseName('setup.\uff45\uff58\uff45').extensions).toEqual(['exe']);
  });
});

describe('content type by magic', () => {
  it('treats an executable named .pdf as an executable', async () => {
    const r = await check(withBody(attachment('invoice.pdf', FAKE_PE, { type: 'application/pdf' })));
    expect(rules(r)).toEqual(['banned-type']);
    expect(r.findings[0].reason).toMatch(/Windows\/DOS executable/);
  });

  it('catches ELF content under a text name, and passes a real PDF', async () => {
    expect(rules(await check(withBody(attachment('notes.txt', FAKE_ELF))))).toEqual(['banned-type']);
    expect((await check(withBody(attachment('invoice.pdf', FAKE_PDF)))).findings).toEqual([]);
  });

  it('finds a zip disguised as a PDF', async () => {
    const r = await check(withBody(attachment('invoice.pdf', zip([{ name: 'a.txt', data: 'hi' }]))));
    expect(rules(r)).toEqual(['type-mismatch']);
  });

  it('does not read inline body text as a file', async () => {
    const r = await check({ multipart: 'mixed', parts: [text('MZ is a fine abbreviation'), text('#!/bin/sh is a shebang')] });
    expect(r.findings).toEqual([]);
  });
});

describe('archives', () => {
  it('finds a banned name in a nested zip', async () => {
    const inner = zip([
      { name: 'readme.txt', data: 'hi' },
      { name: 'payload/evil.exe', data: 'not really', deflate: true },
    ]);
    const outer = zip([{ name: 'docs/inner.zip', data: inner }]);
    const r = await check(withBody(attachment('docs.zip', outer, { type: 'application/zip' })));
    expect(r.findings).toEqual([
      expect.objectContaining({ part: '2', rule: 'banned-name', filename: 'payload/evil.exe', archivePath: ['docs.zip', 'docs/inner.zip'] }),
    ]);
  });

  it('finds executable content under a harmless name inside a zip', async () => {
    const r = await check(withBody(attachment('photos.zip', zip([{ name: 'photo.jpg', data: FAKE_PE, deflate: true }]))));
    expect(rules(r)).toEqual(['banned-type']);
  });

  it('reports encrypted members as their own class', async () => {
    const r = await check(withBody(attachment('secret.zip', zip([{ name: 'contract.docx', data: 'x', encrypted: true }]))));
    expect(r.findings).toEqual([expect.objectContaining({ rule: 'encrypted', class: 'encrypted', filename: 'contract.docx' })]);
    expect(r.classes).toEqual(['encrypted']);
    const ignored = await check(
      withBody(attachment('secret.zip', zip([{ name: 'c.docx', data: 'x', encrypted: true }]))),
      {},
      { ...DEFAULT_ATTACHMENT_RULES, encrypted: 'ignore' },
    );
    expect(ignored.findings).toEqual([]);
  });

  it('bounds a high-ratio entry (zip bomb) as unscannable', async () => {
    const bomb = zip([{ name: 'zeros.bin', data: Buffer.alloc(8 * 1024 * 1024), deflate: true }]);
    expect(bomb.length).toBeLessThan(20_000);
    const r = await check(withBody(attachment('bomb.zip', bomb)));
    expect(r.findings).toEqual([expect.objectContaining({ rule: 'archive-limit', class: 'unscannable' })]);
    expect(r.findings[0].reason).toMatch(/compression ratio/);
  });

  it('bounds the entry count, the declared total and the nesting depth', async () => {
    const many = zip(Array.from({ length: 30 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })));
    const tight = { zip: { ...DEFAULT_ZIP_LIMITS, maxEntries: 20 } };
    expect((await check(withBody(attachment('many.zip', many)), tight)).findings[0].reason).toMatch(/more than 20 archive entries/);

    const big = zip([{ name: 'a.txt', data: Buffer.alloc(600_000, 0x41), deflate: true }]);
    const small = { zip: { ...DEFAULT_ZIP_LIMITS, maxTotalUncompressed: 500_000 } };
    expect((await check(withBody(attachment('big.zip', big)), small)).findings[0].reason).toMatch(/declared uncompressed size/);

    let deep = zip([{ name: 'core.exe', data: 'x' }]);
    for (let i = 0; i < 5; i++) deep = zip([{ name: `level${i}.zip`, data: deep }]);
    const r = await check(withBody(attachment('deep.zip', deep)));
    expect(r.classes).toEqual(['unscannable']);
    expect(r.findings[0]).toMatchObject({ rule: 'archive-limit', filename: 'level1.zip', archivePath: ['deep.zip', 'level4.zip', 'level3.zip', 'level2.zip'] });
    expect(r.findings[0].reason).toMatch(/nested deeper than 4/);
  });

  it('calls an unreadable zip unscannable, never clean', async () => {
    const broken = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100, 0x41)]);
    const r = await check(withBody(attachment('broken.zip', broken)));
    expect(r.findings).toEqual([expect.objectContaining({ rule: 'archive-limit', class: 'unscannable' })]);
  });

  it('bounds the bytes buffered to open a zip', async () => {
    const z = zip([{ name: 'a.txt', data: Buffer.alloc(50_000, 0x42) }]);
    const r = await check(withBody(attachment('a.zip', z)), { maxArchiveBytes: 10_000 });
    expect(r.findings[0].reason).toMatch(/zip larger than 10000 bytes/);
  });
});

describe('message structure', () => {
  it('calls too many parts malformed', async () => {
    const parts = Array.from({ length: 30 }, (_, i) => text(`part ${i}`));
    const r = await check({ multipart: 'mixed', parts }, { maxParts: 20 });
    expect(r.classes).toEqual(['malformed']);
    expect(r.findings[0]).toMatchObject({ part: null, rule: 'malformed', reason: 'more than 20 MIME parts' });
  });

  it('calls too deep nesting malformed', async () => {
    const r = await check(nested(30, text('deep')));
    expect(r.findings).toEqual([expect.objectContaining({ rule: 'malformed', reason: 'MIME nesting deeper than 20' })]);
  });

  it('calls an oversized header block malformed', async () => {
    const msg = buildMessage(text('x'), ['Subject: x', `X-Long: ${'a'.repeat(5000)}`]);
    const facts = await walkMessage(toStream(msg), { maxHeaderBytes: 1024 });
    expect(facts.outcome).toEqual({ status: 'malformed', reason: 'MIME header block too large' });
  });

  it('calls a multipart without a boundary malformed', async () => {
    const msg = Buffer.from('Content-Type: multipart/mixed\r\n\r\nContent-Type: application/x-msdownload\r\n\r\nMZ\r\n');
    const facts = await walkMessage(toStream(msg));
    expect(facts.outcome.status).toBe('malformed');
  });

  it('walks into an attached message', async () => {
    const inner = buildMessage(withBody(attachment('tool.exe', FAKE_PE)));
    const fwd: PartSpec = { contentType: 'message/rfc822', disposition: 'attachment; filename="fwd.eml"', encoding: 'base64', body: inner };
    const r = await check(withBody(fwd));
    expect(r.findings.map((f) => [f.part, f.rule])).toEqual([
      ['2.2', 'banned-name'],
      ['2.2', 'banned-type'],
    ]);
  });

  it('passes a clean message and numbers parts IMAP-style', async () => {
    const facts = await walkMessage(
      toStream(buildMessage({ multipart: 'mixed', parts: [{ multipart: 'alternative', parts: [text('a'), text('b')] }, attachment('a.pdf', FAKE_PDF)] })),
    );
    expect(facts.parts.map((p) => p.id)).toEqual(['1.1', '1.2', '2']);
    expect(facts.parts[2]).toMatchObject({ filename: 'a.pdf', size: FAKE_PDF.length, detected: { format: 'pdf' } });
    expect(evaluateAttachments(facts, DEFAULT_ATTACHMENT_RULES)).toEqual({
      findings: [],
      classes: [],
      parts: { malformed: [], banned: [], unscannable: [], encrypted: [] },
    });
  });

  it('rejects when the input stream fails (an I/O error is not a verdict)', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk gone'));
      },
    });
    await expect(walkMessage(failing)).rejects.toThrow('disk gone');
  });
});

describe('per-domain overrides', () => {
  it('patches lists and replaces scalars', async () => {
    const r = mergeAttachmentRules(DEFAULT_ATTACHMENT_RULES, { bannedExtensions: { add: ['.PDF'], remove: ['js'] }, nameMismatch: 'ignore' });
    expect(r.bannedExtensions).toContain('pdf');
    expect(r.bannedExtensions).not.toContain('js');
    expect(r.nameMismatch).toBe('ignore');
    expect((await check(withBody(attachment('app.js', 'x')), {}, r)).findings).toEqual([]);
    expect(DEFAULT_ATTACHMENT_RULES.bannedExtensions).toContain('js');
  });
});

it('keeps the MailScanner-grade list in the defaults', () => {
  const required = 'exe pif scr bat com cmd vbs vbe js jse wsf wsh hta lnk cpl msi msp reg ps1 jar scf iso img'.split(' ');
  for (const ext of required) expect(DEFAULT_ATTACHMENT_RULES.bannedExtensions).toContain(ext);
  // a ratio bomb needs deflate; make sure the fixture really is one
  expect(deflateRawSync(Buffer.alloc(1 << 20)).length).toBeLessThan(2048);
});
