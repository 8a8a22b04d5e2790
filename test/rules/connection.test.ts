import { describe, expect, it } from 'vitest';
import type { DnsResult } from '../../core/dns.ts';
import type { DnsblList, DnsblResult } from '../../scanners/dnsbl.ts';
import {
  combineDecisions,
  confirmedPtrName,
  decideDnsbl,
  decideHelo,
  decideRdns,
  DEFAULT_DNSBL_POLICY,
  DEFAULT_HELO_POLICY,
  DEFAULT_RDNS_POLICY,
  heloLookupName,
  parseHelo,
  rdnsForwardLookups,
  temporary,
  type Decision,
  type HeloFacts,
  type HeloPolicy,
  type RdnsFacts,
} from '../../rules/connection.ts';

const ok = (...records: string[]): DnsResult<string> => ({ ok: true, records, ttl: 300 });
const nx: DnsResult<string> = { ok: false, kind: 'nxdomain', error: 'queryA ENOTFOUND', code: 'ENOTFOUND' };
const nodata: DnsResult<string> = { ok: false, kind: 'nodata', error: 'queryA ENODATA', code: 'ENODATA' };
const temp: DnsResult<string> = { ok: false, kind: 'temperror', error: 'queryA ETIMEOUT', code: 'ETIMEOUT' };

/** What the SMTP peer sees, or the score/accept shape. */
const seen = (d: Decision) =>
  d.action === 'reject' || d.action === 'tempfail'
    ? { action: d.action, code: d.reply.code, enhanced: d.reply.enhanced, text: d.reply.text, check: d.check }
    : d.action === 'score'
      ? { action: d.action, score: d.score, check: d.check }
      : { action: d.action };

describe('HELO', () => {
  const base: HeloFacts = {
    helo: 'mail.sender.test',
    clientIp: '192.0.2.1',
    ourHostnames: ['mx.mailmoat.test'],
    ourIps: ['198.51.100.25', '2001:db8:25::25'],
    dns: { a: ok('192.0.2.1'), aaaa: nodata },
  };
  const bad = (code: number, enhanced: string, text: string, check: string) => ({ action: code >= 500 ? 'reject' : 'tempfail', code, enhanced, text, check });

  it.each<[string, Partial<HeloFacts>, ReturnType<typeof bad> | { action: string }]>([
    ['FQDN that resolves', {}, { action: 'accept' }],
    ['FQDN with trailing dot, mixed case', { helo: 'Mail.Sender.TEST.' }, { action: 'accept' }],
    ['resolves by AAAA only', { dns: { a: nodata, aaaa: ok('2001:db8::1') } }, { action: 'accept' }],
    [
      'resolves by MX only',
      { dns: { a: nodata, aaaa: nodata, mx: { ok: true, records: [{ exchange: 'mx.sender.test', priority: 5 }], ttl: 60 } } },
      { action: 'accept' },
    ],
    ['IPv4 literal equal to the client', { helo: '[192.0.2.1]', dns: undefined }, { action: 'accept' }],
    ['IPv6 literal equal to the client, other spelling', { helo: '[IPv6:2001:DB8:0::7]', clientIp: '2001:db8::7', dns: undefined }, { action: 'accept' }],
    ['IPv4 literal from a mapped client address', { helo: '[192.0.2.1]', clientIp: '::ffff:192.0.2.1', dns: undefined }, { action: 'accept' }],
    ['our own name from our own address', { helo: 'mx.mailmoat.test', clientIp: '198.51.100.25' }, { action: 'accept' }],
    ['underscore', { helo: 'mail_1.sender.test' }, bad(501, '5.5.2', 'Bad HELO: mail_1.sender.test: underscore is not allowed in a host name', 'helo.syntax')],
    [
      'bare IP without brackets',
      { helo: '192.0.2.1' },
      bad(501, '5.5.2', 'Bad HELO: 192.0.2.1: an address must be given as a literal in brackets, e.g. [192.0.2.1]', 'helo.syntax'),
    ],
    ['malformed literal', { helo: '[192.0.2.300]' }, bad(501, '5.5.2', 'Bad HELO: [192.0.2.300]: invalid address literal', 'helo.syntax')],
    ['IPv6 literal without the IPv6: tag', { helo: '[2001:db8::7]' }, bad(501, '5.5.2', 'Bad HELO: [2001:db8::7]: invalid address literal', 'helo.syntax')],
    ['empty label', { helo: 'mail..sender.test' }, bad(501, '5.5.2', 'Bad HELO: mail..sender.test: not a valid host name', 'helo.syntax')],
    ['numeric TLD', { helo: 'host.123' }, bad(501, '5.5.2', 'Bad HELO: host.123: top-level domain is numeric', 'helo.syntax')],
    ['localhost', { helo: 'localhost' }, bad(550, '5.7.1', 'Bad HELO: localhost is a reserved name, not a public host name', 'helo.reserved')],
    [
      'localhost.localdomain',
      { helo: 'localhost.localdomain' },
      bad(550, '5.7.1', 'Bad HELO: localhost.localdomain is a reserved name, not a public host name', 'helo.reserved'),
    ],
    ['server1.local', { helo: 'server1.local' }, bad(550, '5.7.1', 'Bad HELO: server1.local is a reserved name, not a public host name', 'helo.reserved')],
    ['single label server1', { helo: 'server1' }, bad(550, '5.7.1', 'Bad HELO: server1 is not a fully-qualified domain name', 'helo.fqdn')],
    [
      'literal not the client address',
      { helo: '[192.0.2.99]' },
      bad(550, '5.7.1', 'Bad HELO: address literal [192.0.2.99] does not match your address 192.0.2.1', 'helo.literal'),
    ],
    [
      'IPv6 literal, IPv4 client',
      { helo: '[IPv6:2001:db8::7]' },
      bad(550, '5.7.1', 'Bad HELO: address literal [IPv6:2001:db8::7] does not match your address 192.0.2.1', 'helo.literal'),
    ],
    ['our host name', { helo: 'MX.mailmoat.test' }, bad(550, '5.7.1', 'Bad HELO: MX.mailmoat.test is our own name or address, not yours', 'helo.self')],
    ['NXDOMAIN', { dns: { a: nx, aaaa: nx } }, bad(550, '5.7.1', 'Bad HELO: mail.sender.test does not exist', 'helo.nxdomain')],
    [
      'NXDOMAIN wins over a temperror of the other type',
      { dns: { a: temp, aaaa: nx } },
      bad(550, '5.7.1', 'Bad HELO: mail.sender.test does not exist', 'helo.nxdomain'),
    ],
    ['exists without A/AAAA', { dns: { a: nodata, aaaa: nodata } }, bad(550, '5.7.1', 'Bad HELO: mail.sender.test has no address record', 'helo.nodata')],
    [
      'DNS temperror',
      { dns: { a: temp, aaaa: nodata } },
      bad(450, '4.7.1', 'Bad HELO: cannot resolve mail.sender.test now (temporary DNS failure), please try again later', 'helo.dns'),
    ],
    [
      'not looked up at all (adapter bug) fails closed',
      { dns: undefined },
      bad(450, '4.7.1', 'Bad HELO: cannot resolve mail.sender.test now (temporary DNS failure), please try again later', 'helo.dns'),
    ],
    ['.test is not reserved by default', { helo: 'a.b.test' }, { action: 'accept' }],
  ])('%s', (_label, facts, expected) => {
    expect(seen(decideHelo({ ...base, ...facts }))).toEqual(expected);
  });

  it('our own address as a literal, from a stranger', () => {
    // The literal check comes first, so a stranger claiming our address is told it is not theirs.
    expect(seen(decideHelo({ ...base, helo: '[198.51.100.25]' }))).toMatchObject({ check: 'helo.literal', code: 550 });
    const lenient: HeloPolicy = { ...DEFAULT_HELO_POLICY, literalMismatch: { action: 'ignore' } };
    expect(seen(decideHelo({ ...base, helo: '[198.51.100.25]' }, lenient))).toEqual(
      bad(550, '5.7.1', 'Bad HELO: [198.51.100.25] is our own name or address, not yours', 'helo.self'),
    );
  });

  it('policy: each check can score, tempfail or be ignored; reserved suffixes are configurable', () => {
    const policy: HeloPolicy = {
      ...DEFAULT_HELO_POLICY,
      notFqdn: { action: 'score', score: 2.5 },
      unresolvable: { action: 'tempfail' },
      dnsError: { action: 'ignore' },
    };
    expect(seen(decideHelo({ ...base, helo: 'server1' }, policy))).toEqual({ action: 'score', score: 2.5, check: 'helo.fqdn' });
    expect(seen(decideHelo({ ...base, dns: { a: nx, aaaa: nx } }, policy))).toEqual(
      bad(450, '4.7.1', 'Bad HELO: mail.sender.test does not exist', 'helo.nxdomain'),
    );
    expect(decideHelo({ ...base, dns: { a: temp, aaaa: temp } }, policy)).toMatchObject({
      action: 'accept',
      notes: [expect.stringMatching(/^helo\.dns ignored: /)],
    });
    const reserveTest = { ...policy, reservedSuffixes: [...DEFAULT_HELO_POLICY.reservedSuffixes, 'test'] };
    expect(seen(decideHelo({ ...base, helo: 'a.b.test' }, reserveTest))).toMatchObject({ check: 'helo.reserved', code: 550 });
  });

  it('heloLookupName: only for names that passed the static checks', () => {
    const facts = { helo: 'Mail.Sender.test.', clientIp: '192.0.2.1', ourHostnames: [], ourIps: [] };
    expect(heloLookupName(facts)).toBe('mail.sender.test');
    expect(heloLookupName({ ...facts, helo: 'server1' })).toBeUndefined();
    expect(heloLookupName({ ...facts, helo: '[192.0.2.1]' })).toBeUndefined();
    const noDns: HeloPolicy = { ...DEFAULT_HELO_POLICY, unresolvable: { action: 'ignore' }, dnsError: { action: 'ignore' } };
    expect(heloLookupName(facts, noDns)).toBeUndefined();
  });

  it('parseHelo', () => {
    expect(parseHelo('[IPv6:::ffff:192.0.2.1]')).toEqual({ kind: 'literal', address: '::ffff:192.0.2.1' });
    expect(parseHelo('x'.repeat(64) + '.test')).toMatchObject({ kind: 'invalid' });
    expect(parseHelo('-bad.test')).toMatchObject({ kind: 'invalid' });
    expect(parseHelo('xn--bcher-kva.test')).toEqual({ kind: 'name', name: 'xn--bcher-kva.test' });
  });

  it('echoed names cannot inject reply lines', () => {
    const d = decideHelo({ ...base, helo: 'bad\r\n250 ok_.test' });
    expect(d.action === 'reject' && d.reply.text).not.toMatch(/[\r\n]/);
  });
});

describe('reverse DNS', () => {
  const base: RdnsFacts = { clientIp: '192.0.2.1', ptr: ok('mail.sender.test'), forward: { 'mail.sender.test': ok('192.0.2.1') } };

  it.each<[string, Partial<RdnsFacts>, object]>([
    ['PTR confirmed forward', {}, { action: 'accept' }],
    [
      'second PTR name confirms',
      { ptr: ok('other.test', 'mail.sender.test'), forward: { 'other.test': ok('192.0.2.9'), 'mail.sender.test': ok('192.0.2.1') } },
      { action: 'accept' },
    ],
    ['IPv6 client confirmed by AAAA', { clientIp: '2001:db8::1', forward: { 'mail.sender.test': ok('2001:DB8:0::1') } }, { action: 'accept' }],
    [
      'no PTR (NXDOMAIN)',
      { ptr: nx },
      { action: 'reject', code: 550, enhanced: '5.7.25', text: 'Client host [192.0.2.1] has no reverse DNS (PTR) record', check: 'rdns.missing' },
    ],
    [
      'no PTR (NODATA)',
      { ptr: nodata },
      { action: 'reject', code: 550, enhanced: '5.7.25', text: 'Client host [192.0.2.1] has no reverse DNS (PTR) record', check: 'rdns.missing' },
    ],
    [
      'PTR temperror',
      { ptr: temp },
      {
        action: 'tempfail',
        code: 450,
        enhanced: '4.7.25',
        text: 'Client host [192.0.2.1]: cannot verify reverse DNS now (temporary DNS failure), please try again later',
        check: 'rdns.dns',
      },
    ],
    ['forward does not match: scores by default', { forward: { 'mail.sender.test': ok('192.0.2.77') } }, { action: 'score', score: 1, check: 'rdns.fcrdns' }],
    ['forward NXDOMAIN: scores by default', { forward: { 'mail.sender.test': nx } }, { action: 'score', score: 1, check: 'rdns.fcrdns' }],
    ['forward temperror', { forward: { 'mail.sender.test': temp } }, { action: 'tempfail', code: 450, enhanced: '4.7.25', check: 'rdns.dns' }],
    ['forward not looked up fails closed', { forward: {} }, { action: 'tempfail', code: 450, check: 'rdns.dns' }],
    [
      'mapped client address shown as IPv4',
      { clientIp: '::ffff:192.0.2.1', ptr: nx },
      { action: 'reject', text: 'Client host [192.0.2.1] has no reverse DNS (PTR) record' },
    ],
  ])('%s', (_label, facts, expected) => {
    expect(seen(decideRdns({ ...base, ...facts }))).toMatchObject(expected);
  });

  it('FCrDNS reject and missing-PTR score, by policy', () => {
    const policy = { ...DEFAULT_RDNS_POLICY, missingPtr: { action: 'score' as const, score: 3 }, notConfirmed: { action: 'reject' as const } };
    expect(seen(decideRdns({ ...base, forward: { 'mail.sender.test': ok('192.0.2.77') } }, policy))).toEqual({
      action: 'reject',
      code: 550,
      enhanced: '5.7.25',
      text: 'Client host [192.0.2.1]: reverse DNS name mail.sender.test does not resolve back to this address',
      check: 'rdns.fcrdns',
    });
    expect(seen(decideRdns({ ...base, ptr: nx }, policy))).toEqual({ action: 'score', score: 3, check: 'rdns.missing' });
    expect(seen(decideRdns({ ...base, ptr: nx }, { ...policy, missingPtr: { action: 'tempfail' } }))).toEqual({
      action: 'tempfail',
      code: 450,
      enhanced: '4.7.25',
      text: 'Client host [192.0.2.1] has no reverse DNS (PTR) record',
      check: 'rdns.missing',
    });
    expect(seen(decideRdns({ ...base, ptr: temp }, { ...policy, dnsError: { action: 'ignore' } }))).toEqual({ action: 'accept' });
  });

  it('forward lookups to make, and the confirmed name', () => {
    expect(rdnsForwardLookups('192.0.2.1', ok('a.test', 'b.test'))).toEqual([
      { name: 'a.test', type: 'a' },
      { name: 'b.test', type: 'a' },
    ]);
    expect(rdnsForwardLookups('2001:db8::1', ok('a.test'))).toEqual([{ name: 'a.test', type: 'aaaa' }]);
    expect(rdnsForwardLookups('192.0.2.1', nx)).toEqual([]);
    const many = ok(...Array.from({ length: 12 }, (_, i) => `h${i}.test`));
    expect(rdnsForwardLookups('192.0.2.1', many)).toHaveLength(10);
    expect(confirmedPtrName(base)).toBe('mail.sender.test');
  });
});

describe('DNSBL', () => {
  const zen: DnsblList = { zone: 'zen.spamhaus.org', kind: 'ip', type: 'block' };
  const scoreList: DnsblList = { zone: 'b.barracudacentral.org', kind: 'ip', type: 'block', action: 'score', weight: 2 };
  const wl: DnsblList = { zone: 'list.dnswl.org', kind: 'ip', type: 'allow' };
  const listed = (list: DnsblList, reason?: string): DnsblResult => ({
    status: 'listed',
    codes: ['127.0.0.2'],
    meanings: ['SBL'],
    ...(reason ? { reason } : {}),
    list,
    query: 'q',
  });
  const none = (list: DnsblList): DnsblResult => ({ status: 'not-listed', list, query: 'q' });
  const error = (list: DnsblList): DnsblResult => ({ status: 'error', error: 'ETIMEOUT: queryA ETIMEOUT', list, query: 'q' });
  const refused = (list: DnsblList): DnsblResult => ({ status: 'refused', codes: ['127.255.255.254'], list, query: 'q' });
  const client = (...results: DnsblResult[]) => ({ subject: '192.0.2.1', role: 'client' as const, results });

  it.each<[string, DnsblResult[], object]>([
    [
      'listed with TXT reason',
      [listed(zen, 'https://www.spamhaus.org/query/ip/192.0.2.1')],
      {
        action: 'reject',
        code: 554,
        enhanced: '5.7.1',
        text: 'Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1',
        check: 'dnsbl.zen.spamhaus.org',
      },
    ],
    [
      'listed without TXT',
      [listed(zen)],
      {
        action: 'reject',
        code: 554,
        enhanced: '5.7.1',
        text: 'Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org',
        check: 'dnsbl.zen.spamhaus.org',
      },
    ],
    ['not listed', [none(zen), none(scoreList)], { action: 'accept' }],
    ['score list adds its weight', [none(zen), listed(scoreList)], { action: 'score', score: 2, check: 'dnsbl.b.barracudacentral.org' }],
    ['reject beats score', [listed(scoreList), listed(zen)], { action: 'reject', code: 554 }],
    ['allow list hit skips the block lists', [listed(wl), listed(zen)], { action: 'accept' }],
    ['refused is never a listing', [refused(zen)], { action: 'accept' }],
    ['error: ignored by default', [error(zen)], { action: 'accept' }],
    [
      'error with onError tempfail on the list',
      [error({ ...zen, onError: 'tempfail' })],
      {
        action: 'tempfail',
        code: 451,
        enhanced: '4.7.1',
        text: 'Service temporarily unavailable; client [192.0.2.1] could not be checked against zen.spamhaus.org, please try again later',
        check: 'dnsbl.zen.spamhaus.org',
      },
    ],
    ['a listing beats an error tempfail', [error({ ...scoreList, action: 'reject', onError: 'tempfail' }), listed(zen)], { action: 'reject', code: 554 }],
  ])('%s', (_label, results, expected) => {
    expect(seen(decideDnsbl(client(...results)))).toMatchObject(expected);
  });

  it('notes say what was ignored, refused or allowlisted', () => {
    expect(decideDnsbl(client(error(zen))).notes).toEqual([
      'dnsbl.zen.spamhaus.org error ignored: zen.spamhaus.org lookup failed for 192.0.2.1: ETIMEOUT: queryA ETIMEOUT',
    ]);
    expect(decideDnsbl(client(refused(zen))).notes?.[0]).toMatch(/refused our query \(127\.255\.255\.254\)/);
    expect(decideDnsbl(client(listed(wl), listed(zen)))).toEqual({
      action: 'accept',
      allowlisted: true,
      notes: ['allowlisted by list.dnswl.org (127.0.0.2)'],
    });
  });

  it('policy-wide error tempfail, and default action score', () => {
    const policy = { ...DEFAULT_DNSBL_POLICY, onError: 'tempfail' as const, defaultAction: 'score' as const };
    expect(seen(decideDnsbl(client(error(zen)), policy))).toMatchObject({ action: 'tempfail', code: 451 });
    expect(seen(decideDnsbl(client(listed(zen)), policy))).toEqual({ action: 'score', score: 1, check: 'dnsbl.zen.spamhaus.org' });
  });

  it('domain subjects and hostile TXT reasons', () => {
    const dbl: DnsblList = { zone: 'dbl.spamhaus.org', kind: 'domain', type: 'block' };
    const d = decideDnsbl({ subject: 'spammy.test', role: 'sender', results: [listed(dbl, 'bad\r\n250 2.0.0 ok')] });
    expect(seen(d)).toMatchObject({ text: 'Service unavailable; sender domain spammy.test blocked using dbl.spamhaus.org; bad 250 2.0.0 ok' });
    const h = decideDnsbl({ subject: 'spammy.test', role: 'helo', results: [listed(dbl)] });
    expect(seen(h)).toMatchObject({ text: 'Service unavailable; HELO name spammy.test blocked using dbl.spamhaus.org' });
  });
});

describe('combining', () => {
  const reject: Decision = { action: 'reject', reply: { code: 550, enhanced: '5.7.1', text: 'x' }, reason: 'r', check: 'c1' };
  const tempfail: Decision = { action: 'tempfail', reply: { code: 450, enhanced: '4.7.1', text: 'y' }, reason: 't', check: 'c2' };
  const score = (n: number, check: string): Decision => ({ action: 'score', score: n, reason: check, check });

  it('reject > tempfail > summed scores > accept, notes kept', () => {
    expect(combineDecisions([tempfail, reject]).action).toBe('reject');
    expect(combineDecisions([score(1, 'a'), tempfail]).action).toBe('tempfail');
    expect(combineDecisions([score(1, 'a'), score(2.5, 'b'), { action: 'accept', notes: ['n'] }])).toEqual({
      action: 'score',
      score: 3.5,
      reason: 'a; b',
      check: 'a,b',
      notes: ['n'],
    });
    expect(combineDecisions([])).toEqual({ action: 'accept' });
  });

  it('temporary() turns a permanent reply into its 4xx twin', () => {
    expect(temporary({ code: 550, enhanced: '5.7.1', text: 't' })).toEqual({ code: 450, enhanced: '4.7.1', text: 't' });
    expect(temporary({ code: 554, enhanced: '5.7.1', text: 't' })).toEqual({ code: 451, enhanced: '4.7.1', text: 't' });
    expect(temporary({ code: 451, enhanced: '4.7.1', text: 't' })).toEqual({ code: 451, enhanced: '4.7.1', text: 't' });
  });
});
