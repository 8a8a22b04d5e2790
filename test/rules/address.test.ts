import { describe, expect, it } from 'vitest';
import { checkAddress, checkParameters, KNOWN_MAIL_PARAMETERS, KNOWN_RCPT_PARAMETERS } from '../../rules/address.ts';

const seen = (d: ReturnType<typeof checkAddress>) =>
  d.action === 'reject' ? { code: d.reply.code, enhanced: d.reply.enhanced, text: d.reply.text } : { action: d.action };

describe('address strictness (what smtp-server lets through)', () => {
  it.each<['sender' | 'recipient', string, object]>([
    ['sender', '', { action: 'accept' }],
    ['recipient', 'Postmaster', { action: 'accept' }],
    ['sender', 'user@sender.test', { action: 'accept' }],
    ['sender', "o'brien+tag@sender.test", { action: 'accept' }],
    ['sender', '"john doe"@sender.test', { action: 'accept' }],
    ['recipient', 'jörg@bücher.test', { action: 'accept' }],
    ['recipient', 'user@[192.0.2.1]', { action: 'accept' }],
    ['sender', 'user@x', { code: 553, enhanced: '5.1.7', text: '<user@x>: Sender address rejected: need fully-qualified address' }],
    ['recipient', 'user@localhost', { code: 553, enhanced: '5.1.3', text: '<user@localhost>: Recipient address rejected: need fully-qualified address' }],
    [
      'sender',
      `${'a'.repeat(65)}@sender.test`,
      {
        code: 501,
        enhanced: '5.1.7',
        text: `Bad sender address syntax: <${'a'.repeat(65)}@sender.test>: local part longer than 64 octets (RFC 5321 §4.5.3.1.1)`,
      },
    ],
    [
      'recipient',
      'us(er@sender.test',
      {
        code: 501,
        enhanced: '5.1.3',
        text: 'Bad recipient address syntax: <us(er@sender.test>: local part is not a valid dot-atom or quoted string (RFC 5321 §4.1.2)',
      },
    ],
    ['recipient', `user@${'l'.repeat(64)}.test`, { code: 501, enhanced: '5.1.3' }],
    ['sender', 'user@host.123', { code: 501, enhanced: '5.1.7', text: 'Bad sender address syntax: <user@host.123>: top-level domain is numeric' }],
  ])('%s %s', (role, address, expected) => {
    expect(seen(checkAddress(role, address))).toMatchObject(expected);
  });

  it('requireFqdn can be turned off', () => {
    expect(checkAddress('sender', 'user@x', { requireFqdn: false })).toEqual({ action: 'accept' });
  });

  it('unknown ESMTP parameters get 555 5.5.4', () => {
    expect(checkParameters({ SIZE: '100', BODY: '8BITMIME' }, KNOWN_MAIL_PARAMETERS)).toEqual({ action: 'accept' });
    expect(checkParameters(false, KNOWN_MAIL_PARAMETERS)).toEqual({ action: 'accept' });
    expect(checkParameters({ NOTIFY: 'NEVER', XFOO: 'bar' }, KNOWN_RCPT_PARAMETERS)).toMatchObject({
      action: 'reject',
      reply: { code: 555, enhanced: '5.5.4', text: 'Unsupported parameter XFOO' },
    });
  });
});
