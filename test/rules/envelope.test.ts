import { describe, expect, it } from 'vitest';
import { decideRecipient, decideSender, domainOf } from '../../rules/envelope.ts';
import { decideDeferral, retryDelay } from '../../rules/retry.ts';

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

describe('decideDeferral', () => {
  const policy = { retryDelayMs: 1_000, maxRetryDelayMs: 60_000, maxLifetimeMs: 100_000, delayWarningMs: 10_000 };
  it('retries with backoff, never scheduling past the end of the lifetime', () => {
    expect(decideDeferral({ receivedAt: 0, now: 5_000, attempt: 3, alreadyWarned: false }, policy)).toEqual({
      action: 'retry',
      delayMs: 4_000,
      warnSender: false,
    });
    expect(decideDeferral({ receivedAt: 0, now: 95_000, attempt: 20, alreadyWarned: true }, policy)).toEqual({
      action: 'retry',
      delayMs: 5_000,
      warnSender: false,
    });
  });
  it('warns the sender once after the warning time', () => {
    expect(decideDeferral({ receivedAt: 0, now: 10_000, attempt: 4, alreadyWarned: false }, policy)).toMatchObject({ warnSender: true });
    expect(decideDeferral({ receivedAt: 0, now: 20_000, attempt: 5, alreadyWarned: true }, policy)).toMatchObject({ warnSender: false });
    expect(decideDeferral({ receivedAt: 0, now: 20_000, attempt: 5, alreadyWarned: false }, { ...policy, delayWarningMs: 0 })).toMatchObject({
      warnSender: false,
    });
  });
  it('gives up at the end of the lifetime', () => {
    expect(decideDeferral({ receivedAt: 0, now: 100_000, attempt: 9, alreadyWarned: true }, policy)).toEqual({
      action: 'give-up',
      reason: 'message expired after 100 seconds in the queue',
    });
  });
});
