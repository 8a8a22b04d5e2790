import { describe, expect, it } from 'vitest';
import { checksSchema } from '../../gateway/config/checks.ts';
import { recipientsSchema } from '../../gateway/config/checks.ts';
import type { DnsResult } from '../../core/dns.ts';
import {
  baseAddress,
  clientKey,
  decideConnections,
  decideFrontline,
  decideRate,
  decideRecipientExists,
  decideSpf,
  decideSubmissionSender,
  isExemptRecipient,
  policyFor,
  trustByNetwork,
  trustBySender,
  type FrontlineFacts,
  type SpfResultName,
} from '../../rules/frontline.ts';

const checks = (input: Record<string, unknown> = {}) => checksSchema.parse(input);
const ok = (...records: string[]): DnsResult<string> => ({ ok: true, records, ttl: 60 });
const nx: DnsResult<string> = { ok: false, kind: 'nxdomain', error: 'ENOTFOUND', code: 'ENOTFOUND' };
const fail: DnsResult<string> = { ok: false, kind: 'temperror', error: 'ESERVFAIL', code: 'ESERVFAIL' };
const NONE = new Set<never>();

/** A client with no PTR, an HELO that does not exist and SPF softfail. */
const shady: FrontlineFacts = {
  clientIp: '192.0.2.9',
  helo: { helo: 'nx.test', clientIp: '192.0.2.9', ourHostnames: ['mx.us.test'], ourIps: ['198.51.100.1'], dns: { a: nx, aaaa: nx, mx: nx as never } },
  rdns: { clientIp: '192.0.2.9', ptr: nx, forward: {} },
  dnsbl: [],
  spf: { result: 'softfail', domain: 'soft.test', clientIp: '192.0.2.9' },
};

describe('policyFor', () => {
  it('defaults: safe for a public MX — scores, not rejects, for the checks legitimate senders fail', () => {
    const p = policyFor(checks());
    expect(p.rdns.missingPtr).toEqual({ action: 'score', score: 2 });
    expect(p.helo.unresolvable).toEqual({ action: 'score', score: 2 });
    expect(p.helo.notFqdn).toEqual({ action: 'reject' });
    expect(p.spf.fail).toEqual({ action: 'reject' });
    expect(p.spf.temperror).toEqual({ action: 'tempfail' });
    expect(p.rejectAt).toBe(5);
    // "auto": DNS trouble only tempfails where the check would reject
    expect(p.helo.dnsError).toEqual({ action: 'ignore' });
    expect(p.rdns.dnsError).toEqual({ action: 'ignore' });
  });

  it('a provider rule is one line; auto dnsError follows it to tempfail', () => {
    const p = policyFor(checks({ helo: { unresolvable: 'reject' }, rdns: { missingPtr: 'reject' } }));
    expect(p.helo.unresolvable).toEqual({ action: 'reject' });
    expect(p.helo.dnsError).toEqual({ action: 'tempfail' });
    expect(p.rdns.dnsError).toEqual({ action: 'tempfail' });
  });

  it('per-domain keys replace the global ones, the rest is inherited', () => {
    const p = policyFor(checks({ rdns: { missingPtr: 'reject' } }), {
      rdns: { missingPtr: { action: 'score', score: 1 } },
      dnsbl: { enabled: false },
      score: { rejectAt: null },
    });
    expect(p.rdns.missingPtr).toEqual({ action: 'score', score: 1 });
    expect(p.rdns.notConfirmed).toEqual({ action: 'score', score: 1 });
    expect(p.dnsbl.enabled).toBe(false);
    expect(p.rejectAt).toBeNull();
  });
});

describe('decideFrontline', () => {
  it('adds up scores and refuses at the threshold, naming every reason', () => {
    const r = decideFrontline(shady, policyFor(checks()), { skip: NONE, exempt: false });
    expect(r.decision).toMatchObject({ action: 'reject', check: 'score', reply: { code: 550, enhanced: '5.7.1' } });
    expect(r.decision.action === 'reject' && r.decision.reply.text).toBe(
      'Too many signs of spam from client [192.0.2.9]: HELO nx.test: NXDOMAIN; no PTR for 192.0.2.9; SPF softfail for soft.test from 192.0.2.9',
    );
    expect(r.checks.map((c) => c.name)).toEqual(['helo', 'rdns', 'spf', 'score']);
  });

  it('below the threshold: a score, no refusal; with rejectAt null never refused for scores', () => {
    const p = policyFor(checks({ score: { rejectAt: 6 } }));
    expect(decideFrontline(shady, p, { skip: NONE, exempt: false }).decision).toMatchObject({ action: 'score', score: 5 });
    expect(decideFrontline(shady, policyFor(checks({ score: { rejectAt: null } })), { skip: NONE, exempt: false }).decision.action).toBe('score');
  });

  it('a skipped check is not decided; an exempt recipient is never refused but keeps the notes', () => {
    const p = policyFor(checks({ rdns: { missingPtr: 'reject' } }));
    expect(decideFrontline(shady, p, { skip: new Set(['rdns', 'helo']), exempt: false }).decision.action).toBe('score');
    const exempt = decideFrontline(shady, p, { skip: NONE, exempt: true }).decision;
    expect(exempt.action).toBe('accept');
    expect(exempt.notes?.some((n) => n.startsWith('exempt recipient: rdns.missing not applied'))).toBe(true);
  });

  it('a reject beats a tempfail beats scores', () => {
    const facts: FrontlineFacts = {
      ...shady,
      rdns: { clientIp: '192.0.2.9', ptr: fail, forward: {} },
      spf: { result: 'fail', domain: 'f.test', clientIp: '192.0.2.9' },
    };
    const p = policyFor(checks({ rdns: { missingPtr: 'reject' } }));
    expect(decideFrontline(facts, p, { skip: NONE, exempt: false }).decision).toMatchObject({ action: 'reject', check: 'spf.fail' });
    expect(decideFrontline({ ...facts, spf: undefined }, p, { skip: NONE, exempt: false }).decision).toMatchObject({ action: 'tempfail', check: 'rdns.dns' });
  });

  it('confirmed rDNS and a resolving HELO pass', () => {
    const good: FrontlineFacts = {
      clientIp: '192.0.2.9',
      helo: { ...shady.helo!, helo: 'mail.ok.test', dns: { a: ok('192.0.2.9'), aaaa: nx } },
      rdns: { clientIp: '192.0.2.9', ptr: ok('mail.ok.test'), forward: { 'mail.ok.test': ok('192.0.2.9') } },
      dnsbl: [],
    };
    expect(
      decideFrontline(good, policyFor(checks({ rdns: { missingPtr: 'reject', notConfirmed: 'reject' } })), { skip: NONE, exempt: false }).decision.action,
    ).toBe('accept');
  });
});

describe('decideSpf', () => {
  const p = policyFor(checks()).spf;
  it.each<[SpfResultName, string, number | undefined, string | undefined]>([
    ['pass', 'accept', undefined, undefined],
    ['fail', 'reject', 550, '5.7.23'],
    ['softfail', 'score', undefined, undefined],
    ['neutral', 'accept', undefined, undefined],
    ['none', 'accept', undefined, undefined],
    ['permerror', 'accept', undefined, undefined],
    ['temperror', 'tempfail', 451, '4.7.24'],
  ])('%s → %s', (result, action, code, enhanced) => {
    const d = decideSpf({ result, domain: 'x.test', clientIp: '192.0.2.1' }, p);
    expect(d.action).toBe(action);
    if (code) expect(d).toMatchObject({ reply: { code, enhanced } });
  });
  it('the explanation goes into the fail reply as one line; permerror by policy → 550 5.7.24', () => {
    const d = decideSpf({ result: 'fail', domain: 'x.test', clientIp: '192.0.2.1', explanation: 'go away\r\n250 fake' }, p);
    expect(d.action === 'reject' && d.reply.text).toBe('SPF fail: x.test does not designate 192.0.2.1 as permitted sender; go away 250 fake');
    const strict = policyFor(checks({ spf: { permerror: 'reject' } })).spf;
    expect(decideSpf({ result: 'permerror', domain: 'x.test', clientIp: '192.0.2.1' }, strict)).toMatchObject({
      reply: { code: 550, enhanced: '5.7.24', text: 'SPF record of x.test is invalid (permerror)' },
    });
  });
});

describe('trust and exemptions', () => {
  const trusted = checks({ trusted: { networks: ['10.0.0.0/8', '2001:db8::/32'], senders: ['*@partner.test'], skip: ['dnsbl', 'rdns'] } }).trusted;
  it('by network', () => {
    expect(trustByNetwork('10.1.2.3', trusted)).toMatchObject({ by: 'network 10.0.0.0/8' });
    expect(trustByNetwork('::ffff:10.1.2.3', trusted)).not.toBeNull();
    expect(trustByNetwork('2001:db8::5', trusted)?.skip).toEqual(new Set(['dnsbl', 'rdns']));
    expect(trustByNetwork('192.0.2.1', trusted)).toBeNull();
  });
  it('by sender only with SPF pass', () => {
    expect(trustBySender('bob@partner.test', 'pass', trusted)).toMatchObject({ by: 'sender *@partner.test (SPF pass)' });
    expect(trustBySender('bob@partner.test', 'softfail', trusted)).toBeNull();
    expect(trustBySender('bob@partner.test', undefined, trusted)).toBeNull();
  });
  it('exempt recipients by local part or address', () => {
    expect(isExemptRecipient('Postmaster@example.test', ['postmaster'])).toBe(true);
    expect(isExemptRecipient('postmaster', ['postmaster'])).toBe(true);
    expect(isExemptRecipient('abuse@a.test', ['abuse@b.test'])).toBe(false);
  });
});

describe('recipients', () => {
  const list = recipientsSchema.parse({ mode: 'list', list: ['alice', 'Bob@B.test'] });
  it.each([
    ['alice@a.test', 'accept'],
    ['ALICE+tag@a.test', 'accept'],
    ['bob@b.test', 'accept'],
    ['bob@a.test', 'reject'],
  ])('list: %s → %s', (r, action) => {
    expect(decideRecipientExists(r, list).action).toBe(action);
  });
  it('verify: exists / unknown (550 5.1.1) / failed (450 4.1.1, never accepted)', () => {
    const v = recipientsSchema.parse({ mode: 'verify' });
    expect(decideRecipientExists('a@a.test', v, { status: 'exists' }).action).toBe('accept');
    expect(decideRecipientExists('a@a.test', v, { status: 'unknown', reply: '550 5.1.1 no' })).toMatchObject({ reply: { code: 550, enhanced: '5.1.1' } });
    expect(decideRecipientExists('a@a.test', v, { status: 'failed', reason: 'timeout' })).toMatchObject({
      action: 'tempfail',
      reply: { code: 450, enhanced: '4.1.1' },
    });
    expect(decideRecipientExists('a@a.test', v).action).toBe('tempfail');
  });
  it('baseAddress', () => {
    expect(baseAddress('A+b+c@X.test', '+')).toBe('a@x.test');
    expect(baseAddress('+x@x.test', '+')).toBe('+x@x.test');
    expect(baseAddress('a+b@x.test', '')).toBe('a+b@x.test');
  });
});

describe('limits', () => {
  it('connections and rates', () => {
    expect(decideConnections('192.0.2.1', 3, 3).action).toBe('accept');
    expect(decideConnections('192.0.2.1', 4, 3)).toMatchObject({ reply: { code: 421, enhanced: '4.7.0' } });
    expect(decideConnections('192.0.2.1', 400, 0).action).toBe('accept');
    expect(decideRate('message', '192.0.2.1', 11, { max: 10, windowSec: 60 })).toMatchObject({ reply: { code: 450, enhanced: '4.7.1' } });
    expect(decideRate('connection', '192.0.2.1', 11, { max: 10, windowSec: 60 })).toMatchObject({ reply: { code: 421, enhanced: '4.7.0' } });
    expect(decideRate('recipient', '192.0.2.1', 11, null).action).toBe('accept');
  });
  it('clients are counted by IPv4 address or IPv6 /64', () => {
    expect(clientKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2::9')).toBe(clientKey('2001:db8:1:2:ffff::1'));
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
  });
});

describe('submission sender', () => {
  const user = { username: 'alice@a.test', role: 'user' as const, domains: [], addresses: ['alice@a.test', 'info@a.test'] };
  it.each([
    ['alice@a.test', 'accept'],
    ['INFO@a.test', 'accept'],
    ['', 'accept'],
    ['boss@a.test', 'reject'],
  ])('user sends as %s → %s', (sender, action) => {
    expect(decideSubmissionSender(sender, user).action).toBe(action);
  });
  it('a domain admin may use its domains; the reply is 553 5.7.1', () => {
    const admin = { username: 'admin', role: 'domainadmin' as const, domains: ['a.test'], addresses: [] };
    expect(decideSubmissionSender('x@a.test', admin).action).toBe('accept');
    expect(decideSubmissionSender('x@b.test', admin)).toMatchObject({
      reply: { code: 553, enhanced: '5.7.1', text: '<x@b.test>: Sender address rejected: not owned by user admin' },
    });
  });
  it('a superadmin is exempt only when configured; ownership "domain" lets an account use its whole domain', () => {
    const root = { username: 'root', role: 'superadmin' as const, domains: [], addresses: [] };
    expect(decideSubmissionSender('ceo@bank.test', root).action).toBe('reject');
    expect(decideSubmissionSender('ceo@bank.test', root, { ownership: 'address', superadminAnySender: true }).action).toBe('accept');
    const mailbox = { username: 'bob@c.test', role: 'user' as const, domains: ['c.test'], addresses: ['bob@c.test'] };
    expect(decideSubmissionSender('sales@c.test', mailbox).action).toBe('reject');
    expect(decideSubmissionSender('sales@c.test', mailbox, { ownership: 'domain', superadminAnySender: false }).action).toBe('accept');
    expect(decideSubmissionSender('sales@d.test', mailbox, { ownership: 'domain', superadminAnySender: false }).action).toBe('reject');
  });
});
