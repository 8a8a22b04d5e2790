import { describe, expect, it } from 'vitest';
import { decideVerdict, statusHeaders } from '../../rules/verdict.ts';
import type { ScanReport } from '../../scanners/types.ts';

const policy = { threshold: 5, highThreshold: 10, subjectTag: '{Spam?}' };
const scored = (score: number, rules: string[] = []): ScanReport['spam'] => ({ status: 'scored', score, threshold: 5, rules });

describe('decideVerdict', () => {
  it.each<[string, ScanReport, object]>([
    ['virus wins over everything', { virus: { status: 'infected', viruses: ['Eicar'] }, spam: scored(50) }, { action: 'quarantine', class: 'virus', reason: 'virus: Eicar' }],
    ['clamd down is a retry, never a pass', { virus: { status: 'error', reason: 'ECONNREFUSED' }, spam: scored(0) }, { action: 'retry' }],
    ['too big for clamd is unscannable', { virus: { status: 'unscannable', reason: 'size limit' }, spam: scored(0) }, { action: 'quarantine', class: 'unscannable' }],
    ['spamd down is a retry', { virus: { status: 'clean' }, spam: { status: 'error', reason: 'timeout' } }, { action: 'retry' }],
    ['high score is quarantined', { virus: { status: 'clean' }, spam: scored(10) }, { action: 'quarantine', class: 'high-spam', reason: 'spam score 10.0 >= 10' }],
    ['spam is delivered tagged', { virus: { status: 'clean' }, spam: scored(5) }, { action: 'deliver', class: 'spam', subjectTag: '{Spam?}' }],
    ['below threshold is clean', { virus: { status: 'clean' }, spam: scored(4.9) }, { action: 'deliver', class: 'clean', subjectTag: null }],
    ['skipped spam scan is delivered and says so', { virus: { status: 'clean' }, spam: { status: 'skipped', reason: 'larger than 512000 bytes' } }, { action: 'deliver', class: 'clean', reason: 'not spam-scanned: larger than 512000 bytes' }],
  ])('%s', (_name, report, expected) => {
    expect(decideVerdict(report, policy)).toMatchObject(expected);
  });
});

describe('statusHeaders', () => {
  it('reports score, flag and rules for a scored message', () => {
    const report: ScanReport = { virus: { status: 'clean' }, spam: scored(6.25, ['GTUBE', 'MISSING_DATE']) };
    expect(statusHeaders(report, decideVerdict(report, policy), policy)).toEqual([
      ['X-Mailmoat-Status', 'spam; virus=clean; spam score=6.3 required=5.0'],
      ['X-Spam-Flag', 'YES'],
      ['X-Spam-Score', '6.3'],
      ['X-Spam-Status', 'Yes, score=6.3 required=5.0 tests=GTUBE,MISSING_DATE'],
    ]);
  });
  it('says when spam was not scanned and adds no X-Spam headers', () => {
    const report: ScanReport = { virus: { status: 'clean' }, spam: { status: 'skipped', reason: 'larger than 10 bytes' } };
    expect(statusHeaders(report, decideVerdict(report, policy), policy)).toEqual([
      ['X-Mailmoat-Status', 'clean; virus=clean; spam not scanned (larger than 10 bytes)'],
    ]);
  });
});
