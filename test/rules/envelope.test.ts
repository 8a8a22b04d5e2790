import { describe, expect, it } from 'vitest';
import { decideRecipient, decideSender, domainOf } from '../../rules/envelope.ts';
import { retryDelay } from '../../rules/retry.ts';

const hosted = new Set(['example.test']);

describe('decideRecipient', () => {
  it('accepts a hosted domain, case-insensitively and with a trailing dot', () => {
    expect(decideRecipient('Alice@EXAMPLE.test', { hostedDomains: hosted, accepted: 0, maxRecipients: 5 })).toBeNull();
    expect(decideRecipient('alice@example.test.', { hostedDomains: hosted, accepted: 0, maxRecipients: 5 })).toBeNull();
  });
  it('refuses other domains and subdomains as relay attempts', () => {
    for (const rcpt of ['a@other.test', 'a@sub.example.test', 'a@example.test.evil.test', 'no-domain']) {
      expect(decideRecipient(rcpt, { hostedDomains: hosted, accepted: 0, maxRecipients: 5 })).toMatchObject({ code: 554, enhanced: '5.7.1' });
    }
  });
  it('refuses past the recipient limit with 452 4.5.3', () => {
    expect(decideRecipient('a@example.test', { hostedDomains: hosted, accepted: 5, maxRecipients: 5 })).toMatchObject({ code: 452, enhanced: '4.5.3' });
  });
  it('takes the domain after the last @', () => {
    expect(domainOf('"a@b"@Example.Test')).toBe('example.test');
  });
});

describe('decideSender', () => {
  it('refuses a declared size over the limit and a full spool', () => {
    expect(decideSender({ declaredSize: 101, maxMessageBytes: 100, spoolHasRoom: true })).toMatchObject({ code: 552, enhanced: '5.3.4' });
    expect(decideSender({ declaredSize: 100, maxMessageBytes: 100, spoolHasRoom: true })).toBeNull();
    expect(decideSender({ declaredSize: null, maxMessageBytes: 100, spoolHasRoom: false })).toMatchObject({ code: 452, enhanced: '4.3.1' });
  });
});

describe('retryDelay', () => {
  it('doubles from the first delay up to the cap', () => {
    const policy = { retryDelayMs: 60_000, maxRetryDelayMs: 600_000 };
    expect([1, 2, 3, 4, 5, 50].map((n) => retryDelay(n, policy))).toEqual([60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
  });
});
