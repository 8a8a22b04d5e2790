// Measures what one deeply nested HTML part costs the text scan, before and after the HTML
// bounds (scanners/html-bounds.ts): `node bench/html-nesting.ts [levels...]` (default 20000
// 100000). "before" is the old path (cheerio load() with no nesting check, on this thread);
// "after" is the text scan as the gateway runs it (bounds first, then nothing is parsed).
// Figures for the README; not a test.
import { Readable } from 'node:stream';
import { extractUrls } from '../scanners/html-urls.ts';
import { registrableDomain, scanText } from '../gateway/pipeline/text-scan.ts';

const levels = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const OPTIONS = {
  maxParts: 500,
  maxHeaderBytes: 256 * 1024,
  maxHtmlPartBytes: 4 << 20,
  maxTextPartBytes: 1 << 20,
  maxHosts: 50,
  disarm: [{ remoteImages: 'keep' as const, phishingNet: true, phishingSafeSites: [] }],
  registrableDomain,
};

for (const n of levels.length ? levels : [20_000, 100_000]) {
  const html = `<html><body>${'<div>'.repeat(n)}x${'</div>'.repeat(n)}</body></html>`;
  const msg = Buffer.from(`From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html}\r\n`);
  let t = performance.now();
  const after = await scanText(Readable.from([msg]), OPTIONS);
  const afterMs = performance.now() - t;
  t = performance.now();
  extractUrls(html, { html: true, max: 51, maxHtmlChars: 4 << 20 });
  const beforeMs = performance.now() - t;
  const finding = [...after.html.values()][0]?.findings[0]?.detail;
  console.log(
    `${n} nested <div> (${(msg.length / 1e6).toFixed(2)} MB): before ${(beforeMs / 1000).toFixed(2)} s (URL extraction alone), after ${afterMs.toFixed(0)} ms for the whole text scan → ${finding}`,
  );
}
