import { describe, expect, it } from 'vitest';
import { classify, statusHeaders } from '../../rules/verdict.ts';
import { DEFAULT_POLICY, layerPolicy, type Policy } from '../../rules/policy.ts';
import type { AttachmentFindingReport, ScanReport } from '../../scanners/types.ts';

const policy = DEFAULT_POLICY;
const scored = (score: number, rules: string[] = []): ScanReport['spam'] => ({ status: 'scored', score, threshold: 5, rules });
const checked = {
  attachments: { status: 'checked', structure: { status: 'ok' }, parts: 1, files: [], findings: [] },
  html: { status: 'checked', parts: 0, findings: [], phishing: [], changed: false, dangerous: false },
  auth: { status: 'checked', spf: { result: 'none', domain: '' }, dkim: [], dmarc: null, arc: null, header: 'mx; none' },
  urls: { status: 'checked', hosts: 0, truncated: false, hits: [], errors: [], score: 0 },
  list: null,
} satisfies Partial<ScanReport>;
const report = (r: Partial<ScanReport>): ScanReport => ({ virus: { status: 'clean' }, spam: scored(0), ...checked, ...r });
const finding = (cls: string, rule: string, reason: string, part: string | null = '2'): AttachmentFindingReport => ({
  part,
  filename: 'x.exe',
  rule,
  class: cls,
  reason,
});
const withFindings = (...findings: AttachmentFindingReport[]): Partial<ScanReport> => ({
  attachments: { status: 'checked', structure: { status: 'ok' }, parts: 2, files: [], findings },
});
const dmarc = (result: string, p: string): Partial<ScanReport> => ({
  auth: { ...checked.auth, dmarc: { result, domain: 'bank.test', policy: p, from: 'bank.test' } },
});

describe('classify', () => {
  it.each<[string, Partial<ScanReport>, object, Policy?]>([
    [
      'virus wins over everything',
      { virus: { status: 'infected', viruses: ['Eicar'] }, spam: scored(50), ...withFindings(finding('banned', 'banned-name', '.exe files are not allowed')) },
      { class: 'virus', reason: 'contains the virus Eicar' },
    ],
    ['clamd down is a retry, never a pass', { virus: { status: 'error', reason: 'ECONNREFUSED' } }, { kind: 'retry' }],
    ['a check that did not run is a retry', { html: undefined }, { kind: 'retry', reason: 'HTML check did not run' }],
    [
      'a check that is off does not count',
      { html: { status: 'skipped', reason: 'off' } },
      { class: 'clean' },
      layerPolicy(policy, [{ checks: { html: false } }]),
    ],
    ['too big for clamd is unscannable', { virus: { status: 'unscannable', reason: 'size limit' } }, { class: 'unscannable' }],
    ['spamd down is a retry', { spam: { status: 'error', reason: 'timeout' } }, { kind: 'retry' }],
    [
      'malformed MIME',
      withFindings(finding('malformed', 'malformed', 'more than 500 MIME parts', null)),
      { class: 'malformed', reason: 'the message structure is broken: more than 500 MIME parts' },
    ],
    [
      'banned attachment',
      withFindings(finding('banned', 'banned-name', '.exe files are not allowed')),
      { class: 'banned', reason: 'the attachment "x.exe" is not allowed: .exe files are not allowed' },
    ],
    [
      'encrypted archive counts as banned by default',
      withFindings(finding('encrypted', 'encrypted', 'encrypted archive member cannot be scanned')),
      { class: 'banned' },
    ],
    [
      'encrypted archive allowed by policy',
      withFindings(finding('encrypted', 'encrypted', 'x')),
      { class: 'clean' },
      layerPolicy(policy, [{ attachments: { encrypted: 'allow' } }]),
    ],
    ['zip bomb bound is unscannable', withFindings(finding('unscannable', 'archive-limit', 'more than 1000 archive entries')), { class: 'unscannable' }],
    [
      'HTML past its analysis time limit is unscannable, never clean',
      { html: { status: 'unscannable', reason: 'analysis time limit (20000 ms)' }, urls: { status: 'unscannable', reason: 'analysis time limit (20000 ms)' } },
      { class: 'unscannable', reason: 'HTML not analysed: analysis time limit (20000 ms)' },
    ],
    [
      'links not read in time are unscannable with the HTML check off',
      { html: { status: 'skipped', reason: 'off' }, urls: { status: 'unscannable', reason: 'analysis time limit (20000 ms)' } },
      { class: 'unscannable', reason: 'links not read: analysis time limit (20000 ms)' },
      layerPolicy(policy, [{ checks: { html: false } }]),
    ],
    [
      'DMARC p=reject failure is spoofed',
      dmarc('fail', 'reject'),
      { class: 'spoofed', reason: "claims to come from bank.test but fails that domain's DMARC check, and bank.test asks receivers to reject such mail" },
    ],
    [
      'DMARC p=reject failure scores when policy says so',
      dmarc('fail', 'reject'),
      { class: 'spam', score: { auth: 5, total: 5 } },
      layerPolicy(policy, [{ auth: { dmarcReject: 'score' } }]),
    ],
    ['DMARC p=quarantine failure adds to the score', dmarc('fail', 'quarantine'), { class: 'clean', score: { auth: 3, total: 3 } }],
    ['DMARC pass is nothing', dmarc('pass', 'reject'), { class: 'clean' }],
    [
      'phishing link',
      { html: { ...checked.html, phishing: [{ part: '1', shown: 'www.paypal.com', real: 'evil.example' }], changed: true, dangerous: true } },
      { class: 'phishing', reason: 'a link shows www.paypal.com but goes to evil.example' },
    ],
    [
      'URL listings add to the score',
      { spam: scored(3), urls: { ...checked.urls, hits: [{ host: 'bad.test', list: 'bad-sites', detail: 'x', score: 5 }], score: 5 } },
      { class: 'spam', score: { spam: 3, urls: 5, total: 8 } },
    ],
    ['high score is high-spam', { spam: scored(10) }, { class: 'high-spam', reason: 'SpamAssassin score 10.0, 10.0 or more is high spam' }],
    [
      'spam between the thresholds',
      { spam: scored(5, ['GTUBE']) },
      { class: 'spam', reason: 'SpamAssassin score 5.0, 5.0 or more is spam; strongest signs: GTUBE' },
    ],
    ['below threshold is clean', { spam: scored(4.9) }, { class: 'clean', reason: 'spam score 4.9, below 5.0' }],
    [
      'skipped spam scan is clean and says so',
      { spam: { status: 'skipped', reason: 'larger than 512000 bytes' } },
      { class: 'clean', reason: 'not spam-scanned: larger than 512000 bytes' },
    ],
    [
      'an allowed sender skips the spam classes',
      { spam: scored(50), list: { kind: 'allow', scope: 'user', entry: 'bob@x.test' } },
      { class: 'clean', reason: "the sender is on the recipient's allow list (entry bob@x.test), so spam checks do not count (spam score 50.0)" },
    ],
    [
      'an allowed sender never skips the virus check',
      { virus: { status: 'infected', viruses: ['Eicar'] }, list: { kind: 'allow', scope: 'user', entry: 'bob@x.test' } },
      { class: 'virus' },
    ],
    [
      'an allowed sender never skips spoofing',
      { ...dmarc('fail', 'reject'), list: { kind: 'allow', scope: 'domain', entry: 'bank.test' } },
      { class: 'spoofed' },
    ],
    [
      'a blocked sender is blocked',
      { list: { kind: 'block', scope: 'global', entry: 'spammer.test' } },
      { class: 'blocked', reason: 'the sender is on the global block list (entry spammer.test)' },
    ],
    [
      'lists off: a block entry does nothing',
      { list: { kind: 'block', scope: 'global', entry: 'spammer.test' } },
      { class: 'clean' },
      layerPolicy(policy, [{ checks: { lists: false } }]),
    ],
    [
      'spam check off: no spam class',
      { spam: scored(50) },
      { class: 'clean', reason: 'spam check off for this recipient' },
      layerPolicy(policy, [{ checks: { spam: false } }]),
    ],
  ])('%s', (_name, r, expected, p = policy) => {
    expect(classify(report(r), p)).toMatchObject('kind' in expected ? expected : { kind: 'verdict', ...expected });
  });

  it('says the strongest SpamAssassin signs by their descriptions, and what else added to the score', () => {
    const spam: ScanReport['spam'] = {
      status: 'scored',
      score: 7.3,
      threshold: 5,
      rules: ['BAYES_99', 'HTML_MESSAGE', 'URIBL_BLACK', 'MISSING_DATE'],
      details: [
        { rule: 'HTML_MESSAGE', score: 0, description: 'HTML included in message' },
        { rule: 'BAYES_99', score: 3.5, description: 'Bayes spam probability is 99 to 100%' },
        { rule: 'URIBL_BLACK', score: 1.7, description: 'Contains an URL listed in the URIBL blacklist' },
        { rule: 'MISSING_DATE', score: 1.4, description: 'Missing Date: header' },
        { rule: 'T_LOW', score: 0.7, description: 'A weak sign' },
      ],
    };
    const c = classify(report({ spam, urls: { ...checked.urls, hits: [{ host: 'bad.test', list: 'bad-sites', detail: 'x', score: 5 }], score: 5 } }), policy);
    expect(c).toMatchObject({
      class: 'high-spam',
      reason:
        'spam score 12.3 (SpamAssassin 7.3, links to listed sites +5.0), 10.0 or more is high spam; strongest signs: ' +
        'Bayes spam probability is 99 to 100% (+3.5), Contains an URL listed in the URIBL blacklist (+1.7), Missing Date: header (+1.4)',
    });
  });

  it('keeps every reason, the class first', () => {
    const c = classify(report({ spam: scored(12), ...withFindings(finding('banned', 'banned-name', '.exe files are not allowed')) }), policy);
    expect(c.kind === 'verdict' && c.reasons).toEqual([
      'the attachment "x.exe" is not allowed: .exe files are not allowed',
      'SpamAssassin score 12.0, 10.0 or more is high spam',
    ]);
  });
});

describe('statusHeaders', () => {
  it('reports score, flag and rules for a scored message', () => {
    const r = report({ spam: scored(6.25, ['GTUBE', 'MISSING_DATE']) });
    const c = classify(r, policy);
    if (c.kind !== 'verdict') throw new Error('expected a verdict');
    expect(statusHeaders(r, c.class, c.score, policy)).toEqual([
      ['X-Mailmoat-Status', 'spam; virus=clean; spam score=6.3 required=5.0'],
      ['X-Spam-Flag', 'YES'],
      ['X-Spam-Score', '6.3'],
      ['X-Spam-Status', 'Yes, score=6.3 required=5.0 tests=GTUBE,MISSING_DATE'],
    ]);
  });
  it('says when spam was not scanned and adds no X-Spam headers', () => {
    const r = report({ spam: { status: 'skipped', reason: 'larger than 10 bytes' } });
    const c = classify(r, policy);
    if (c.kind !== 'verdict') throw new Error('expected a verdict');
    expect(statusHeaders(r, c.class, c.score, policy)).toEqual([['X-Mailmoat-Status', 'clean; virus=clean; spam not scanned (larger than 10 bytes)']]);
  });
  it('names the DMARC result and URL hits', () => {
    const r = report({ ...dmarc('pass', 'reject'), urls: { ...checked.urls, hits: [{ host: 'a.test', list: 'bad-sites', detail: 'x', score: 1 }], score: 1 } });
    const c = classify(r, policy);
    if (c.kind !== 'verdict') throw new Error('expected a verdict');
    expect(statusHeaders(r, c.class, c.score, policy)[0]).toEqual([
      'X-Mailmoat-Status',
      'clean; virus=clean; spam score=1.0 required=5.0; dmarc=pass; url-hits=1',
    ]);
  });
});
