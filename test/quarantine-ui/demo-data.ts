// Demo data for the console's pages: three accounts (superadmin, domain admin of a.test, end user
// alice@a.test, who is half-way through setting up two-step login) and a fourth with two-step login
// on, held, delivered and deferred mail with a full scan report, list entries, a release request,
// an API token, an SMTP refusal, a learner snapshot, a digest link and 30 days of numbers, written
// through the real stores of a test harness (harness.ts). Used by the phone-width browser test and by docs/screenshots/take.ts,
// so the screenshots show what the test checked.
//
// Some values are long on purpose (an address and a subject without spaces): a page that does not
// wrap them overflows a phone's screen.
import { issueToken } from '../../quarantine-ui/lib/digest.ts';
import { newRecoveryCodes, newTotpSecret, totpKeys } from '../../quarantine-ui/lib/totp.ts';
import { DAY_MS, HOUR_MS, type StatKind, type StatRow } from '../../gateway/store/stats.ts';
import type { ScanReport } from '../../scanners/types.ts';
import { fakeId, rawMessage, type Harness } from './harness.ts';

export const DEMO_USERS = { superadmin: 'root', domainadmin: 'admina', user: 'alice' } as const;
export type DemoRole = keyof typeof DEMO_USERS;
/** A domain admin of b.test with two-step login on: the password leads to /login/totp. */
export const TOTP_USER = 'adminb';

/** The demo console's config (startHarness): a single sign-on button on the login page. The
 *  provider is only contacted when the button is used, so none needs to run. */
export const DEMO_CONFIG = {
  console: {
    auth: { oidc: { issuer: 'http://127.0.0.1:9/realms/example', clientId: 'mailmoat', label: 'Log in with Example Corp single sign-on' }, roleMapping: [] },
  },
};

export const LONG_ADDRESS = 'newsletter-bounces+a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6@mailer.very-long-marketing-domain.example';
export const LONG_SUBJECT = 'Re:Fwd:Re:URGENT_ACTION_REQUIRED_your_mailbox_storage_is_almost_full_verify_your_account_now_to_avoid_suspension';

/** What the pages' URLs need: the message to open (HTML; `plain`: text only), the domain to edit, a digest link's token. */
export interface DemoIds {
  message: string;
  plain: string;
  domain: string;
  digest: string;
  /** The TOTP key of TOTP_USER (base32), to compute codes. */
  totpSecret: string;
}

const SPAM_DETAILS = [
  { rule: 'GTUBE', score: 1000, description: 'Generic Test for Unsolicited Bulk Email' },
  { rule: 'URIBL_BLACK', score: 1.7, description: 'Contains an URL listed in the URIBL blacklist' },
  { rule: 'HTML_MESSAGE', score: 0.001, description: 'HTML included in message' },
  { rule: 'MISSING_DATE', score: 1.4, description: 'Missing Date: header' },
];

function fullReport(score: number): ScanReport {
  return {
    virus: { status: 'clean' },
    spam: { status: 'scored', score, threshold: 5, rules: SPAM_DETAILS.map((d) => d.rule), details: SPAM_DETAILS },
    auth: {
      status: 'checked',
      spf: { result: 'softfail', domain: 'mailer.very-long-marketing-domain.example' },
      dkim: [{ result: 'none', domain: 'mailer.very-long-marketing-domain.example', selector: 's1', aligned: false }],
      dmarc: { result: 'fail', domain: 'very-long-marketing-domain.example', policy: 'none', from: 'very-long-marketing-domain.example' },
      arc: null,
      header:
        'mx.gateway.test; spf=softfail smtp.mailfrom=mailer.very-long-marketing-domain.example; dkim=none; dmarc=fail (p=none) header.from=very-long-marketing-domain.example',
    },
    urls: {
      status: 'checked',
      hosts: 2,
      truncated: false,
      hits: [{ host: 'verify-account-login.example', list: 'multi.uribl.com', detail: 'black', score: 1.7 }],
      errors: [],
      score: 1.7,
    },
    score: { spam: score, urls: 1.7, auth: 0, total: score + 1.7, threshold: 5, highThreshold: 10 },
  };
}

/** A page's URL: `{message}`, `{plain}`, `{domain}` and `{digest}` in `path` are filled in from the demo data. */
export function demoUrl(base: string, path: string, ids: DemoIds): string {
  return base + path.replace(/\{(message|plain|domain|digest)\}/g, (_, key: 'message' | 'plain' | 'domain' | 'digest') => encodeURIComponent(ids[key]));
}

export async function seedDemo(h: Harness): Promise<DemoIds> {
  await h.addAccount(DEMO_USERS.superadmin, 'superadmin');
  await h.addAccount(DEMO_USERS.domainadmin, 'domainadmin', { domains: ['a.test'] });
  await h.addAccount(DEMO_USERS.user, 'user', { addresses: ['alice@a.test'] });

  const html =
    `<table width="600" style="width:600px;border:1px solid #ccc"><tr><td><h2>Your mailbox is almost full</h2>` +
    `<p>Dear customer, your storage is 99% used. <a href="https://verify-account-login.example/a">Verify your account</a> within 24 hours to avoid suspension.</p>` +
    `<p>https://verify-account-login.example/a/very/long/path/that/does/not/break/anywhere/at/all</p></td></tr></table>`;
  const message = await h.addMessage({
    rcpt: ['alice@a.test'],
    from: LONG_ADDRESS,
    subject: LONG_SUBJECT,
    score: 1004.1,
    raw: rawMessage({ from: `Storage Team <${LONG_ADDRESS}>`, to: 'alice@a.test', subject: LONG_SUBJECT, html }),
  });
  await h.store.addEvent(message, 'received', 'from client.test [192.0.2.1], 898 bytes');
  await h.store.addEvent(message, 'scanned', 'high-spam: spam score 1005.8 >= 10');
  await h.store.addEvent(message, 'quarantined', 'held for alice@a.test');
  await h.store.recordVerdict(message, { verdict: 'high-spam', reason: 'spam score 1005.8 >= 10', report: fullReport(1004.1), subject: LONG_SUBJECT });
  const plain = await h.addMessage({
    rcpt: ['alice@a.test', 'bob@a.test'],
    from: 'offers@deals.example',
    subject: 'Cheap watches, 90% off this week only',
    score: 11.2,
    body: 'Genuine replica watches from $49.\r\nOrder now: https://deals.example/watches?campaign=autumn-2026&utm_source=newsletter&utm_medium=email&utm_content=very-long-tracking-parameter-that-never-breaks\r\n',
  });
  await h.addMessage({ rcpt: ['bob@a.test'], from: 'billing@invoices.example', subject: 'Invoice 2026-1193 (attachment)', verdict: 'virus' });
  await h.addMessage({ rcpt: ['carol@a.test'], from: 'news@shop.example', subject: 'Our autumn catalogue', score: 10.4 });
  await h.addMessage({ rcpt: ['alice@a.test'], from: 'friend@pals.example', subject: 'Lunch on Friday?', status: 'delivered', score: 0.3 });
  await h.addMessage({ rcpt: ['dave@b.test'], from: 'x@spam.example', subject: 'b.test mail', score: 15 });
  await h.store.recordRefusal({
    at: Date.now(),
    clientIp: '203.0.113.9',
    helo: 'unknown.example',
    mailFrom: 'someone@relay.example',
    recipient: 'nobody@not-hosted.example',
    stage: 'rcpt',
    reply: '554 5.7.1 <nobody@not-hosted.example>: Relay access denied',
  });

  await h.lists.add({
    kind: 'allow',
    scope: 'domain',
    owner: 'a.test',
    entry: '*@partner.example',
    comment: 'our main supplier',
    createdBy: DEMO_USERS.domainadmin,
  });
  await h.lists.add({ kind: 'block', scope: 'user', owner: 'alice@a.test', entry: LONG_ADDRESS, comment: 'keeps coming back', createdBy: DEMO_USERS.user });
  await h.lists.add({ kind: 'block', scope: 'global', owner: '*', entry: '198.51.100.0/24', comment: 'snowshoe network', createdBy: DEMO_USERS.superadmin });

  await h.requests.create({
    messageId: message,
    requester: DEMO_USERS.user,
    recipient: 'alice@a.test',
    note: 'I think this one is real: my storage really is full',
  });
  const root = (await h.accounts.byName(DEMO_USERS.superadmin))!;
  await h.deps.tokens.create({
    name: 'customer panel of a.test',
    role: 'domainadmin',
    domains: ['a.test'],
    createdBy: root.id,
    createdByName: DEMO_USERS.superadmin,
  });
  if (h.deps.learner) await h.deps.learner.snapshot('*', DEMO_USERS.superadmin, 'before the spring training');
  const digest = await issueToken(h.deps, message, 'alice@a.test');
  await seedQueue(h);
  await h.deps.stats!.add(demoNumbers(h.deps.now()));
  const totpSecret = await seedTotp(h);
  return { message, plain, domain: 'a.test', digest, totpSecret };
}

/** Deferred mail for the queue page: two messages for a.test (one with a long error) and one for b.test. */
async function seedQueue(h: Harness): Promise<void> {
  // The buttons show only where the console can retry and flush; no delivery runs here, so they say so.
  h.deps.queueOps ??= {
    retry: async () => ({ ok: false, reason: 'no delivery workers in the demo' }),
    flush: async () => ({ flushed: [], skipped: [] }),
  };
  const deferred: { rcpt: string[]; from: string; reply: string; ago: number }[] = [
    { rcpt: ['carol@a.test'], from: 'orders@shop.example', reply: '451 4.3.2 mailbox server busy, try again later', ago: 3 * HOUR_MS },
    {
      rcpt: ['alice@a.test', 'dave@a.test'],
      from: LONG_ADDRESS,
      reply: `421 4.4.2 mx1.a.test connection timed out after 30000 ms while waiting for the greeting; the next attempt is at the retry schedule's next step`,
      ago: 40 * 60_000,
    },
    { rcpt: ['erin@b.test'], from: 'news@shop.example', reply: '450 4.2.1 mailbox temporarily unavailable', ago: 20 * 60_000 },
  ];
  for (const d of deferred) {
    const id = fakeId();
    await h.store.recordReceived({
      id,
      receivedAt: h.deps.now() - d.ago,
      clientIp: '192.0.2.7',
      helo: 'client.test',
      mailFrom: d.from,
      rcptTo: d.rcpt,
      size: 2048,
    });
    await h.store.recordVerdict(id, {
      verdict: 'clean',
      reason: 'spam score 0.4 < 5',
      report: { virus: { status: 'clean' }, spam: { status: 'scored', score: 0.4, threshold: 5, rules: [] } },
      subject: 'Your order has shipped',
    });
    await h.store.transition(id, ['queued'], 'deferred');
    for (const r of d.rcpt) await h.store.recordDelivery(id, r, 'deferred', d.reply);
  }
}

/** 30 days of numbers for a.test and b.test: the last 8 days by hour, older days as one rolled-up row each (gateway/store/stats.ts). */
function demoNumbers(now: number): StatRow[] {
  const rows: StatRow[] = [];
  const thisHour = Math.floor(now / HOUR_MS) * HOUR_MS;
  // a day's rhythm: little at night, most in office hours; a fixed wobble instead of randomness, so the pictures do not change
  const perHour = (hour: number, scale: number) =>
    Math.round(scale * (3 + 10 * Math.max(0, Math.sin(((new Date(hour).getUTCHours() - 6) / 24) * 2 * Math.PI)) + ((hour / HOUR_MS) % 5)));
  const add = (domain: string, hour: number, received: number) => {
    const spam = Math.round(received * 0.35);
    const counts: Record<StatKind, number> = {
      received,
      refused: Math.round(received * 0.2),
      spam,
      virus: (hour / HOUR_MS) % 7 === 0 ? 1 : 0,
      quarantined: Math.round(spam * 0.6),
      delivered: received - Math.round(spam * 0.6),
      deferred: (hour / HOUR_MS) % 9 === 0 ? 2 : 0,
      failed: (hour / HOUR_MS) % 31 === 0 ? 1 : 0,
    };
    for (const [kind, n] of Object.entries(counts) as [StatKind, number][]) if (n > 0) rows.push({ domain, hour, kind, n });
  };
  for (const [domain, scale] of [
    ['a.test', 1],
    ['b.test', 0.4],
  ] as const) {
    for (let hour = thisHour - 8 * DAY_MS + HOUR_MS; hour <= thisHour; hour += HOUR_MS) add(domain, hour, perHour(hour, scale));
    for (let day = Math.floor((thisHour - 8 * DAY_MS) / DAY_MS) * DAY_MS; day > thisHour - 31 * DAY_MS; day -= DAY_MS)
      add(domain, day, perHour(day + 12 * HOUR_MS, scale) * 14);
  }
  return rows;
}

/** alice is half-way through setting two-step login up (the page with the QR code); TOTP_USER has it on. Returns TOTP_USER's key. */
async function seedTotp(h: Harness): Promise<string> {
  const keys = totpKeys(h.deps.secret);
  const alice = (await h.accounts.byName(DEMO_USERS.user))!;
  await h.deps.totp.begin(alice.id, keys.seal(alice.id, newTotpSecret()));
  await h.addAccount(TOTP_USER, 'domainadmin', { domains: ['b.test'] });
  const on = (await h.accounts.byName(TOTP_USER))!;
  const secret = newTotpSecret();
  await h.deps.totp.begin(on.id, keys.seal(on.id, secret));
  // step 1 (1970) as the last one used, so any current code is accepted once
  await h.deps.totp.enable(
    on.id,
    1,
    newRecoveryCodes().map((c) => keys.hashRecoveryCode(on.id, c)),
  );
  return secret;
}
