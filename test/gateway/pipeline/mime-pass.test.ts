// One MIME pass per message (gateway/pipeline/mime-pass.ts): the walk (attachment rules) and the
// text scan (URLs, HTML disarm prediction) take the chunks of one splitter. What a verdict is
// made of must not move: over a seeded corpus of ordinary, odd and broken messages the shared pass
// gives exactly the facts and text findings that each analyser gave with a splitter of its own,
// and the analysis of a message splits it once (it split it twice before, and read it five times).
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/load.ts';
import { analyse, reportFor, walkLimits, type Scanners } from '../../../gateway/pipeline/analyse.ts';
import { createAnalysisPool } from '../../../gateway/pipeline/analysis-pool.ts';
import { mimePass } from '../../../gateway/pipeline/mime-pass.ts';
import { disarmNeeded } from '../../../gateway/pipeline/act.ts';
import { writeCopy } from '../../../gateway/pipeline/rewrite.ts';
import { recipientPolicies } from '../../../gateway/pipeline/policy.ts';
import { registrableDomain, scanText } from '../../../gateway/pipeline/text-scan.ts';
import type { Envelope, Spool } from '../../../gateway/spool/spool.ts';
import { walkMessage } from '../../../scanners/mime-walk.ts';
import { splitterStats } from '../../../scanners/splitter.ts';
import { mimeCorpus, PHISH } from '../../support/mime-corpus.ts';
import { FAKE_PE, attachment, buildMessage, html, text, toStream } from '../../support/mime.ts';

// Small bounds, so that the corpus hits them: part count, nesting, header bytes.
const WALK = { maxParts: 12, maxDepth: 4, maxHeaderBytes: 2048, maxArchiveBytes: 1 << 20 };
const SETTINGS = { remoteImages: 'placeholder' as const, phishingNet: true, phishingSafeSites: [] };
const TEXT = { maxParts: 12, maxHeaderBytes: 2048, maxHtmlPartBytes: 4096, maxTextPartBytes: 2048, maxHosts: 5, disarm: [SETTINGS], registrableDomain };

describe('one MIME pass for the walk and the text scan', () => {
  const messages = mimeCorpus();

  it('gives the facts and text findings each analyser gave alone, over a seeded corpus of 154 messages', async () => {
    let malformed = 0;
    for (const { name, msg } of messages) {
      const alone = { facts: await walkMessage(toStream(msg, 700), WALK), text: await scanText(toStream(msg, 700), TEXT) };
      const shared = await mimePass(Readable.from([msg]), { walk: WALK, text: TEXT });
      expect(shared, name).toEqual(alone);
      // The bytes themselves, as a worker thread gets them (no stream around them).
      expect(await mimePass(new Uint8Array(msg), { walk: WALK, text: TEXT }), `${name} as bytes`).toEqual(alone);
      if (alone.facts.outcome.status !== 'ok') malformed++;
    }
    // The corpus reaches the bounds and the broken structures, not only the happy path.
    expect(malformed).toBeGreaterThan(5);
  });

  it("skips the copy's HTML disarming only where the prediction says it changes nothing: the copy is then the same bytes", async () => {
    const copy = async (msg: Buffer, disarm: typeof SETTINGS | null): Promise<Buffer | string> => {
      const out: Buffer[] = [];
      const sink = new Writable({
        write(c: Buffer, _e, done) {
          out.push(c);
          done();
        },
      });
      const spec = {
        stamp: { prepend: [['X-Mailmoat-ID', 'm1']] as [string, string][], removePrefixes: [], subjectTag: null },
        strip: [],
        disarm: disarm && { ...disarm, registrableDomain, maxHtmlPartBytes: TEXT.maxHtmlPartBytes },
        limits: { maxParts: WALK.maxParts, maxHeaderBytes: WALK.maxHeaderBytes },
      };
      return writeCopy(Readable.from([msg]), sink, spec).then(
        () => Buffer.concat(out),
        (err: Error) => `refused: ${err.message}`,
      );
    };
    let skipped = 0;
    let disarmed = 0;
    for (const { name, msg } of messages) {
      const { text } = await mimePass(Readable.from([msg]), { walk: WALK, text: TEXT });
      if (disarmNeeded(SETTINGS, text!) !== null) {
        disarmed++;
        continue;
      }
      skipped++;
      expect(await copy(msg, null), name).toEqual(await copy(msg, SETTINGS));
    }
    // Both sides are reached: clean HTML (skipped) and HTML the copy must change (disarmed).
    expect(skipped).toBeGreaterThan(10);
    expect(disarmed).toBeGreaterThan(10);
    expect(disarmNeeded(SETTINGS, { status: 'skipped', reason: 'HTML and URL checks off' })).toBe(SETTINGS);
  });

  it('gives the same in a worker thread, from the bytes read once', async () => {
    const pool = createAnalysisPool({ threads: 1, timeMs: 10_000 });
    try {
      const { registrableDomain: _fn, ...plain } = TEXT;
      for (const { name, msg } of messages.slice(0, 30)) {
        const inThread = await pool.mimePass({ bytes: msg }, { walk: WALK, text: plain });
        expect(inThread, name).toEqual(await mimePass(Readable.from([msg]), { walk: WALK, text: TEXT }));
      }
    } finally {
      await pool.close();
    }
  });
});

describe('the analysis of a message', () => {
  const config = parseConfig(
    'hostname: mx.example.test\ndataDir: data\ndomains:\n  example.test:\n    downstream: [{ host: 10.0.0.5 }]\nspamd:\n  enabled: false\n  host: 127.0.0.1\n  port: 1\n',
    'mailmoat.yaml',
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-mime-pass-'));

  it('splits the message once for the attachment, HTML and URL checks, and reads it once for clamd', async () => {
    const msg = buildMessage({
      multipart: 'mixed',
      parts: [{ multipart: 'alternative', parts: [text('www.one.test'), html(PHISH)] }, attachment('setup.exe', FAKE_PE)],
    });
    const file = path.join(dir, 'm1');
    writeFileSync(file, msg);
    const envelope: Envelope = {
      id: 'm1',
      receivedAt: Date.now(),
      clientIp: '192.0.2.1',
      clientHostname: null,
      helo: 'a.test',
      mailFrom: 'a@sender.test',
      rcptTo: ['b@example.test'],
      size: msg.length,
      tls: false,
    };
    const seenByClamd: Buffer[] = [];
    const scanners: Scanners = {
      async virus(input) {
        seenByClamd.push(Buffer.isBuffer(input) ? input : Buffer.concat(await input.toArray()));
        return { status: 'clean' };
      },
      spam: () => Promise.reject(new Error('spamd is off')),
    };
    const policies = await recipientPolicies(config, envelope, undefined);
    const before = splitterStats.created;
    const analysis = await analyse({ config, spool: { messagePath: () => file } as unknown as Spool, scanners }, envelope, policies);
    expect(splitterStats.created - before).toBe(1);
    expect(seenByClamd).toEqual([msg]);
    const report = reportFor(analysis, policies[0]);
    expect(report.attachments).toMatchObject({
      status: 'checked',
      findings: expect.arrayContaining([expect.objectContaining({ part: '2', class: 'banned' })]),
    });
    expect(report.html).toMatchObject({ status: 'checked', phishing: [{ part: '1.2', shown: 'www.bank.test', real: 'evil.test' }] });
    // The rewrite gets the same bytes, not another read of the file.
    expect(analysis.body).toEqual(msg);
    expect(walkLimits(config).maxParts).toBe(config.mime.maxParts);
  });
});
