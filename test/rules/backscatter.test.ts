import { describe, expect, it } from 'vitest';
import { decideDsn, type DsnFacts } from '../../rules/backscatter.ts';

const base: DsnFacts = { sender: 'bob@sender.test', verdictClass: 'clean', spf: 'pass', dmarc: 'pass', sentLastHour: 0, perHourLimit: 60 };

describe('decideDsn', () => {
  it.each([
    ['a clean, authenticated message', {}, { send: true }],
    ['a message we wrote (no verdict class)', { verdictClass: null, spf: undefined, dmarc: undefined }, { send: true }],
    ['SPF softfail is not a failure', { spf: 'softfail' }, { send: true }],
    ['the null sender', { sender: '' }, { send: false, reason: 'null sender' }],
    ['a virus', { verdictClass: 'virus' }, { send: false, reason: 'message classed virus (backscatter)' }],
    ['spam', { verdictClass: 'spam' }, { send: false, reason: 'message classed spam (backscatter)' }],
    ['high spam', { verdictClass: 'high-spam' }, { send: false, reason: 'message classed high-spam (backscatter)' }],
    ['phishing', { verdictClass: 'phishing' }, { send: false, reason: 'message classed phishing (backscatter)' }],
    ['SPF fail', { spf: 'fail' }, { send: false, reason: 'sender failed SPF (backscatter)' }],
    ['DMARC fail', { dmarc: 'fail' }, { send: false, reason: 'sender failed DMARC (backscatter)' }],
    ['the hourly limit for the sender domain', { sentLastHour: 60 }, { send: false, reason: '60 DSNs to sender.test in the last hour (rate limit)' }],
    ['no limit configured', { sentLastHour: 10_000, perHourLimit: 0 }, { send: true }],
  ])('%s', (_name, facts, expected) => {
    expect(decideDsn({ ...base, ...facts })).toEqual(expected);
  });
});
