// The analysis thread pool (gateway/pipeline/analysis-pool.ts) and the HTML bounds the text scan
// checks before it parses (scanners/html-bounds.ts): a message past a bound is unscannable
// without being parsed; one that takes longer than its budget ends its thread and is
// unscannable ("analysis time limit"); the pool keeps working afterwards.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AnalysisLimit, createAnalysisPool, defaultAnalysisThreads } from '../../../gateway/pipeline/analysis-pool.ts';
import { disarmKey, registrableDomain, scanText } from '../../../gateway/pipeline/text-scan.ts';
import { htmlBoundExceeded } from '../../../scanners/html-bounds.ts';
import { buildMessage, html, text, toStream } from '../../support/mime.ts';

const SETTINGS = { remoteImages: 'keep' as const, phishingNet: true, phishingSafeSites: [] };
const OPTIONS = { maxParts: 500, maxHeaderBytes: 256 * 1024, maxHtmlPartBytes: 4 << 20, maxTextPartBytes: 1 << 20, maxHosts: 50, disarm: [SETTINGS] };
const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-pool-'));
const file = (name: string, body: Buffer) => {
  const f = path.join(dir, name);
  writeFileSync(f, body);
  return f;
};
const nestedDivs = (n: number) => `<html><body>${'<div>'.repeat(n)}<a href="https://deep.test/">x</a>${'</div>'.repeat(n)}</body></html>`;
const sevenBit = (body: string) => ({ contentType: 'text/html; charset=utf-8', encoding: '7bit' as const, body });
const PHISH = '<p><a href="https://evil.test/x">https://www.bank.test/</a></p>';

describe('HTML bounds before parsing', () => {
  it.each([
    ['100,000 nested <div>', nestedDivs(100_000), { maxDepth: 512, maxElements: 100_000 }, 'HTML nested deeper than 512 elements'],
    ['a flat page of many elements', '<p>x</p>'.repeat(2000), { maxDepth: 512, maxElements: 1000 }, 'HTML with more than 1000 elements'],
    ['an ordinary newsletter', `<table><tr><td>${'<p>a<br><img src="x.png"></p>'.repeat(100)}</td></tr></table>`, { maxDepth: 512, maxElements: 1000 }, null],
    ['unclosed <li> and <p> (closed by HTML rules)', `<ul>${'<li><p>x'.repeat(2000)}</ul>`, { maxDepth: 10, maxElements: 100_000 }, null],
    ['SVG paths closed by "/>"', `<svg>${'<path d="M0 0"/>'.repeat(2000)}</svg>`, { maxDepth: 10, maxElements: 100_000 }, null],
    ['<div/> (stays open in HTML)', '<div/>'.repeat(20), { maxDepth: 10, maxElements: 100_000 }, 'HTML nested deeper than 10 elements'],
    ['markup inside <script> is text', `<script>${'<div>'.repeat(2000)}</script>`, { maxDepth: 10, maxElements: 100_000 }, null],
  ])('%s', (_name, markup, bounds, expected) => {
    expect(htmlBoundExceeded(markup, bounds)).toBe(expected);
  });

  it('the text scan reports a part past a bound as unscannable and still looks up the hosts in its text', async () => {
    const msg = buildMessage({ multipart: 'alternative', parts: [text('see www.plain.test'), sevenBit(nestedDivs(100_000))] });
    const r = await scanText(toStream(msg, 64 * 1024), { ...OPTIONS, registrableDomain });
    expect(r.html.get(disarmKey(SETTINGS))?.findings).toEqual([{ part: '2', kind: 'unscannable-html', detail: 'HTML nested deeper than 512 elements' }]);
    expect(r.hosts).toEqual(['www.plain.test', 'deep.test']);
  });
});

describe('the analysis pool', () => {
  const pool = createAnalysisPool({ threads: 2, timeMs: 10_000 });
  // Well below the seconds the heavy message takes, well above a light one on a loaded machine.
  const tight = createAnalysisPool({ threads: 1, timeMs: 1_500 });
  afterAll(async () => {
    await Promise.all([pool.close(), tight.close()]);
  });

  it('scans a message in a thread with the same result as in process', async () => {
    const msg = buildMessage({ multipart: 'alternative', parts: [text('www.one.test'), html(PHISH)] });
    const inThread = await pool.scanTextFile(file('a.eml', msg), OPTIONS);
    const inProcess = await scanText(toStream(msg), { ...OPTIONS, registrableDomain });
    expect(inThread).toEqual(inProcess);
    expect(inThread.html.get(disarmKey(SETTINGS))?.phishing).toEqual([{ part: '2', shown: 'www.bank.test', real: 'evil.test' }]);
  });

  it('disarms HTML in a thread', async () => {
    const r = await pool.disarmHtml('<p onclick="x()">hi</p>', { ...SETTINGS, registrableDomain });
    expect(r.changed).toBe(true);
    expect(r.html).not.toContain('onclick');
  });

  it('ends a thread past its time budget: "analysis time limit", and the next message is scanned', async () => {
    // Within the bounds the options allow here, 30,000 nested elements take seconds to parse.
    const heavy = file('heavy.eml', buildMessage(sevenBit(nestedDivs(30_000))));
    const bounds = { maxDepth: 1_000_000, maxElements: 1_000_000 };
    const err = await tight.scanTextFile(heavy, { ...OPTIONS, htmlBounds: bounds }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnalysisLimit);
    expect((err as Error).message).toBe('analysis time limit (1500 ms)');
    const light = await tight.scanTextFile(file('light.eml', buildMessage(text('www.after.test'))), OPTIONS);
    expect(light.hosts).toEqual(['www.after.test']);
  });
});

describe("the pool's size and idle threads", () => {
  it('uses the cores less one for the event loop, 1 to 2 threads', () => {
    expect([1, 2, 3, 4, 16].map((cores) => defaultAnalysisThreads(cores))).toEqual([1, 1, 2, 2, 2]);
  });

  it('ends a thread left idle (its memory goes back) and starts one again for the next message', async () => {
    const idle = createAnalysisPool({ threads: 1, timeMs: 10_000, idleMs: 200 });
    try {
      const threadIds = async () => (await import('node:fs/promises')).readdir(`/proc/${process.pid}/task`);
      const before = (await threadIds()).length;
      expect((await idle.scanTextFile(file('first.eml', buildMessage(text('www.first.test'))), OPTIONS)).hosts).toEqual(['www.first.test']);
      const withThread = (await threadIds()).length;
      expect(withThread).toBeGreaterThan(before);
      await expect.poll(async () => (await threadIds()).length, { timeout: 5_000, interval: 100 }).toBeLessThan(withThread);
      expect((await idle.scanTextFile(file('second.eml', buildMessage(text('www.second.test'))), OPTIONS)).hosts).toEqual(['www.second.test']);
    } finally {
      await idle.close();
    }
  });
});
