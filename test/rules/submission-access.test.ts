import { describe, expect, it } from 'vitest';
import { decideSubmissionAccess } from '../../rules/submission-access.ts';

describe('submission access', () => {
  const listener = { auth: 'required' as const, relayNetworks: ['192.0.2.0/28'], requireTls: true };
  it.each([
    ['authenticated over TLS', { clientIp: '198.51.100.1', secure: true, authenticated: true }, listener, 'accept', undefined],
    ['relay network over TLS, no AUTH', { clientIp: '192.0.2.5', secure: true, authenticated: false }, listener, 'accept', undefined],
    ['relay network in the clear where TLS is required', { clientIp: '192.0.2.5', secure: false, authenticated: false }, listener, 'reject', 530],
    [
      'relay network in the clear where allowed',
      { clientIp: '192.0.2.5', secure: false, authenticated: false },
      { ...listener, requireTls: false },
      'accept',
      undefined,
    ],
    ['stranger, AUTH listener', { clientIp: '198.51.100.1', secure: true, authenticated: false }, listener, 'reject', 530],
    [
      'stranger, relay-only listener',
      { clientIp: '198.51.100.1', secure: false, authenticated: false },
      { ...listener, auth: 'off' as const, requireTls: false },
      'reject',
      554,
    ],
  ])('%s', (_name, facts, policy, action, code) => {
    const d = decideSubmissionAccess(facts, policy);
    expect(d.action).toBe(action);
    if (code) expect(d.action !== 'accept' && d.action !== 'score' && d.reply.code).toBe(code);
  });
});
