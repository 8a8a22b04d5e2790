import { describe, expect, it } from 'vitest';
import { decideLists, entryText, ipInAny, matchesEntry, networkMatcher, parseListEntry, type ScopedEntry } from '../../rules/lists.ts';

const parsed = (s: string) => {
  const p = parseListEntry(s);
  return p.ok ? `${p.entry.type}:${entryText(p.entry)}` : `error:${p.error}`;
};

describe('parseListEntry', () => {
  it.each([
    ['Bob@Sender.Test', 'address:bob@sender.test'],
    ['  *@sender.test ', 'domain-exact:*@sender.test'],
    ['sender.test', 'domain:sender.test'],
    ['mail.sub.sender.test', 'domain:mail.sub.sender.test'],
    ['192.0.2.7', 'ip:192.0.2.7'],
    ['192.0.2.7/24', 'cidr:192.0.2.0/24'],
    ['2001:DB8:0:0:0:0:0:1', 'ip:2001:db8::1'],
    ['2001:db8::/32', 'cidr:2001:db8::/32'],
    ['::ffff:192.0.2.9', 'ip:192.0.2.9'],
    ['0.0.0.0/0', 'cidr:0.0.0.0/0'],
  ])('%s → %s', (input, want) => expect(parsed(input)).toBe(want));

  it.each([
    '',
    'bob',
    'bob@',
    '@sender.test',
    'bob@localhost',
    'a b@sender.test',
    '<script>@x.test',
    'bob@-bad-.test',
    '300.1.2.3',
    '192.0.2.1/33',
    '2001:db8::/129',
    '1.2.3.4/24/1',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    '*.sender.test',
    'bob@sender.test\nX-Injected: 1',
    '10.0.0.01',
    'a'.repeat(400),
  ])('refuses %j', (input) => expect(parsed(input)).toMatch(/^error:/));
});

describe('matchesEntry', () => {
  const f = (sender: string, clientIp = '198.51.100.1') => ({ sender, clientIp });
  it('address: exact, case-insensitive', () => {
    expect(matchesEntry('bob@sender.test', f('Bob@SENDER.test'))).toBe(true);
    expect(matchesEntry('bob@sender.test', f('bob@sender.test.evil'))).toBe(false);
    expect(matchesEntry('bob@sender.test', f('xbob@sender.test'))).toBe(false);
  });
  it('*@domain: exactly that domain', () => {
    expect(matchesEntry('*@sender.test', f('anyone@sender.test'))).toBe(true);
    expect(matchesEntry('*@sender.test', f('anyone@mail.sender.test'))).toBe(false);
    expect(matchesEntry('*@sender.test', f('anyone@evilsender.test'))).toBe(false);
  });
  it('domain: the domain and its subdomains, not look-alikes', () => {
    expect(matchesEntry('sender.test', f('a@sender.test'))).toBe(true);
    expect(matchesEntry('sender.test', f('a@mail.sender.test'))).toBe(true);
    expect(matchesEntry('sender.test', f('a@evilsender.test'))).toBe(false);
    expect(matchesEntry('sender.test', f(''))).toBe(false);
  });
  it('IP and CIDR, v4, v6 and v4-mapped', () => {
    expect(matchesEntry('192.0.2.7', f('', '192.0.2.7'))).toBe(true);
    expect(matchesEntry('192.0.2.7', f('', '::ffff:192.0.2.7'))).toBe(true);
    expect(matchesEntry('192.0.2.0/24', f('', '192.0.2.200'))).toBe(true);
    expect(matchesEntry('192.0.2.0/24', f('', '192.0.3.1'))).toBe(false);
    expect(matchesEntry('192.0.2.0/25', f('', '192.0.2.128'))).toBe(false);
    expect(matchesEntry('2001:db8::/32', f('', '2001:db8:ffff::1'))).toBe(true);
    expect(matchesEntry('2001:db8::/32', f('', '2001:db9::1'))).toBe(false);
    expect(matchesEntry('2001:db8::/32', f('', '192.0.2.1'))).toBe(false);
    expect(matchesEntry('0.0.0.0/0', f('', '203.0.113.5'))).toBe(true);
  });
  it('an invalid stored text matches nothing', () => {
    expect(matchesEntry('not valid', f('not valid'))).toBe(false);
  });
});

describe('decideLists', () => {
  const e = (kind: 'allow' | 'block', scope: 'user' | 'domain' | 'global', text: string): ScopedEntry => ({ kind, scope, text });
  const facts = { sender: 'bob@sender.test', clientIp: '192.0.2.7' };

  it('no entry matches: null', () => {
    expect(decideLists([e('block', 'domain', 'other.test')], facts)).toBeNull();
  });
  it('the user scope beats the domain scope', () => {
    expect(decideLists([e('block', 'domain', 'sender.test'), e('allow', 'user', 'bob@sender.test')], facts)).toEqual({
      kind: 'allow',
      scope: 'user',
      entry: 'bob@sender.test',
    });
  });
  it('the domain scope beats the global scope', () => {
    expect(decideLists([e('allow', 'global', '192.0.2.0/24'), e('block', 'domain', '*@sender.test')], facts)?.kind).toBe('block');
  });
  it('within one scope, block beats allow', () => {
    expect(decideLists([e('allow', 'domain', 'bob@sender.test'), e('block', 'domain', '192.0.2.7')], facts)).toEqual({
      kind: 'block',
      scope: 'domain',
      entry: '192.0.2.7',
    });
  });
});

describe('ipInAny', () => {
  it('matches loopback networks', () => {
    expect(ipInAny('127.0.0.1', ['127.0.0.0/8', '::1'])).toBe(true);
    expect(ipInAny('::1', ['127.0.0.0/8', '::1'])).toBe(true);
    expect(ipInAny('10.0.0.1', ['127.0.0.0/8', '::1'])).toBe(false);
  });
});

describe('networkMatcher (a list parsed once, matched per connection)', () => {
  const entries = ['not a network/99', 'example.test', '*@example.test', '10.0.0.0/8', '10.1.2.3', '2001:DB8::/32', '192.0.2.7', '::1'];
  const match = networkMatcher(entries);
  it.each([
    ['10.1.2.3', '10.0.0.0/8'], // the first entry that holds it, in the list's order
    ['::ffff:10.9.9.9', '10.0.0.0/8'],
    ['2001:db8:0:1::5', '2001:DB8::/32'],
    ['2001:DB8::5', '2001:DB8::/32'],
    ['192.0.2.7', '192.0.2.7'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['192.0.2.8', undefined],
    ['example.test', undefined],
    ['', undefined],
  ])('%s → %s, as ipInAny and matchesEntry decide', (ip, hit) => {
    expect(match(ip)).toBe(hit);
    expect(ipInAny(ip, entries)).toBe(hit !== undefined);
    expect(entries.find((e) => matchesEntry(e, { sender: '', clientIp: ip }))).toBe(hit);
  });
});
