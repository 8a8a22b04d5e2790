// RFC 8461 §4.1 MX matching and the enforce/testing decision (rules/mta-sts.ts).
import { describe, expect, it } from 'vitest';
import { applyStsPolicy, mxMatchesPolicy } from '../../rules/mta-sts.ts';

describe('MTA-STS rules', () => {
  it('a wildcard matches exactly one left-most label; names compare without case or trailing dot', () => {
    expect(mxMatchesPolicy('mx1.example.com', ['*.example.com'])).toBe(true);
    expect(mxMatchesPolicy('a.b.example.com', ['*.example.com'])).toBe(false);
    expect(mxMatchesPolicy('example.com', ['*.example.com'])).toBe(false);
    expect(mxMatchesPolicy('MX.Example.COM.', ['mx.example.com'])).toBe(true);
    expect(mxMatchesPolicy('mx.example.com.evil.test', ['mx.example.com'])).toBe(false);
  });
  it('enforce keeps the matching hosts with TLS verified; none matching defers; testing and none change nothing', () => {
    const hops = [
      { host: 'mx.evil.test', tls: 'opportunistic' },
      { host: 'mx1.a.test', tls: 'opportunistic' },
    ];
    expect(applyStsPolicy('a.test', { mode: 'enforce', mx: ['mx1.a.test'] }, hops)).toEqual({
      ok: true,
      hops: [{ host: 'mx1.a.test', tls: 'verified' }],
      wouldRefuse: [],
    });
    expect(applyStsPolicy('a.test', { mode: 'enforce', mx: ['mx9.a.test'] }, hops)).toMatchObject({
      ok: false,
      temporary: true,
      reason: expect.stringMatching(/^4\.7\.5 /),
    });
    expect(applyStsPolicy('a.test', { mode: 'testing', mx: ['mx1.a.test'] }, hops)).toEqual({ ok: true, hops, wouldRefuse: ['mx.evil.test'] });
    expect(applyStsPolicy('a.test', { mode: 'none', mx: [] }, hops)).toEqual({ ok: true, hops, wouldRefuse: [] });
    expect(applyStsPolicy('a.test', undefined, hops)).toEqual({ ok: true, hops, wouldRefuse: [] });
  });
});
