// Issue 5, steps 5, 6 and 8: first-match rules, allow/block lists from the store, actions per
// verdict class (notify, forward, headers only), recipients split per policy group, and the scan
// report stored with each message — over real SMTP with real clamd and spamd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EICAR } from '../support/eicar.ts';
import { attachment, buildMessage, text, mailDate } from '../support/mime.ts';
import { mailboxMessages, sendRaw, splitMessage, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { releaseMessage } from '../../gateway/quarantine.ts';
import { silentLogger } from '../../gateway/log.ts';
import { openListStore, type ListStore } from '../../gateway/store/lists.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const message = (subject: string, body: string) =>
  `From: Bob <bob@sender.test>\r\nTo: team@example.test\r\nSubject: ${subject}\r\nDate: ${mailDate()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${body}`;
const unfold = (b: Buffer) => splitMessage(b).head.replace(/\r\n[ \t]+/g, ' ');

describe('rules, lists, actions and policy groups', () => {
  let gw: TestGateway;
  let lists: ListStore;
  beforeAll(async () => {
    gw = await startTestGateway({
      domains: {
        'example.test': {
          policy: {
            actions: {
              'high-spam': { do: 'quarantine', notifyRecipient: true },
              virus: { do: 'quarantine', forwardTo: ['security@example.test'] },
            },
          },
          rules: [{ name: 'ceo gets headers only', match: { to: ['ceo@example.test'] }, set: { actions: { 'high-spam': 'headers' } } }],
        },
        'other.test': {},
      },
      overrides: {
        rules: [
          { name: 'partner: no spam check', match: { from: ['*@partner.test'] }, set: { checks: { spam: false } } },
          { name: 'lab: none of this applies', match: { client: ['192.0.2.0/24'] }, set: { checks: { virus: false } } },
        ],
        policy: { checks: { auth: false } },
      },
    });
    lists = openListStore(gw.stores.sql);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  async function send(from: string, to: string[], raw: string | Buffer) {
    const sent = await sendRaw(gw.smtpPort, { from, to }, raw);
    expect(sent.code).toBe(250);
    return sent.id!;
  }

  it('a first-match rule on the sender turns the spam check off', async () => {
    const id = await send('news@partner.test', ['r1@example.test'], message('partner news', `${GTUBE}\r\n`));
    await waitForStatus(gw, id, ['delivered']);
    const row = (await gw.stores.store.get(id))!;
    expect(row).toMatchObject({ verdict: 'clean', reason: 'spam check off for this recipient' });
    expect(row.report?.outcome?.rules).toEqual(['partner: no spam check']);
    expect(unfold((await mailboxMessages(gw, 'r1@example.test'))[0])).toContain('spam not scanned (off)');
  });

  it('high spam to a normal recipient: quarantined, and the recipient gets a notice', async () => {
    const id = await send('bob@sender.test', ['r2@example.test'], message('cheap pills', `${GTUBE}\r\n`));
    await waitForStatus(gw, id, ['quarantined']);
    expect((await gw.stores.store.get(id))?.report?.outcome).toMatchObject({ class: 'high-spam', action: 'quarantine', sent: [`${id}-N1`] });
    await waitForStatus(gw, `${id}-N1`, ['delivered']);
    const [notice] = await mailboxMessages(gw, 'r2@example.test');
    const head = unfold(notice);
    expect(head).toContain('Subject: [mailmoat] quarantined: cheap pills');
    expect(head).toContain('Auto-Submitted: auto-generated');
    expect(notice.toString('latin1')).not.toContain(GTUBE); // a notice never carries the content
  });

  it('a virus: quarantined and a copy forwarded to security', async () => {
    const raw = buildMessage({ multipart: 'mixed', parts: [text('see attached'), attachment('eicar.txt', EICAR, { type: 'text/plain' })] }, [
      'From: bob@sender.test',
      'Subject: fyi',
      'MIME-Version: 1.0',
    ]);
    const id = await send('bob@sender.test', ['r3@example.test'], raw);
    await waitForStatus(gw, id, ['quarantined']);
    await waitForStatus(gw, `${id}-F1`, ['delivered']);
    const [copy] = await mailboxMessages(gw, 'security@example.test');
    expect(unfold(copy)).toMatch(new RegExp(`X-Mailmoat-Forwarded: copy of ${id}: virus; contains the virus `));
    expect(splitMessage(copy).body.equals(splitMessage(raw).body)).toBe(true);
  });

  it('the allow list lifts spam, never a virus; the block list blocks', async () => {
    expect((await lists.add({ kind: 'allow', scope: 'user', owner: 'r4@example.test', entry: 'bob@sender.test', createdBy: 'test' })).ok).toBe(true);
    expect((await lists.add({ kind: 'block', scope: 'domain', owner: 'example.test', entry: 'spammer.test', createdBy: 'test' })).ok).toBe(true);
    const allowed = await send('bob@sender.test', ['r4@example.test'], message('allowed', `${GTUBE}\r\n`));
    await waitForStatus(gw, allowed, ['delivered']);
    expect(await gw.stores.store.get(allowed)).toMatchObject({
      verdict: 'clean',
      reason: expect.stringMatching(
        /^the sender is on the recipient's allow list \(entry bob@sender\.test\), so spam checks do not count \(spam score \d+\.\d\)$/,
      ),
    });
    expect((await gw.stores.store.get(allowed))?.report?.list).toEqual({ kind: 'allow', scope: 'user', entry: 'bob@sender.test' });
    const virus = buildMessage({ multipart: 'mixed', parts: [text('x'), attachment('e.txt', EICAR, { type: 'text/plain' })] }, [
      'From: bob@sender.test',
      'Subject: v',
      'MIME-Version: 1.0',
    ]);
    const infected = await send('bob@sender.test', ['r4@example.test'], virus);
    await waitForStatus(gw, infected, ['quarantined']);
    expect((await gw.stores.store.get(infected))?.verdict).toBe('virus');
    const blocked = await send('x@mail.spammer.test', ['r5@example.test'], message('blocked', 'hi\r\n'));
    await waitForStatus(gw, blocked, ['quarantined']);
    expect(await gw.stores.store.get(blocked)).toMatchObject({ verdict: 'blocked', reason: "the sender is on the domain's block list (entry spammer.test)" });
  });

  it('recipients whose policies differ are split into one message per group', async () => {
    // r6 has bob on its allow list, ceo gets headers only, r7 and someone at other.test quarantine.
    expect((await lists.add({ kind: 'allow', scope: 'user', owner: 'r6@example.test', entry: 'sender.test', createdBy: 'test' })).ok).toBe(true);
    const rcpts = ['r6@example.test', 'r7@example.test', 'ceo@example.test', 'x@other.test'];
    const id = await send('bob@sender.test', rcpts, message('mixed', `${GTUBE}\r\n`));
    await waitForStatus(gw, id, ['delivered']);
    const parent = (await gw.stores.store.get(id))!;
    expect(parent.rcptTo).toEqual(['r6@example.test']);
    // r7 and x@other.test are handled alike (their notices differ, but notices do not split a group)
    expect(parent.report?.outcome).toMatchObject({ class: 'clean', splitInto: [`${id}-2`, `${id}-3`] });
    const children = [2, 3].map((n) => `${id}-${n}`);
    await Promise.all(children.map((c) => waitForStatus(gw, c, ['quarantined', 'delivered'])));
    const rows = await Promise.all(children.map(async (c) => (await gw.stores.store.get(c))!));
    expect(rows.map((r) => [r.rcptTo, r.verdict, r.status])).toEqual([
      [['r7@example.test', 'x@other.test'], 'high-spam', 'quarantined'],
      [['ceo@example.test'], 'high-spam', 'delivered'],
    ]);
    expect(rows[0].report?.outcome).toMatchObject({ splitFrom: id, sent: [`${id}-2-N1`] });
    expect((await gw.stores.store.get(`${id}-2-N1`))?.rcptTo).toEqual(['r7@example.test']);
    expect((await gw.stores.store.events(id)).filter((e) => e.kind === 'split').map((e) => e.detail)).toEqual([
      `r7@example.test, x@other.test split off into ${id}-2`,
      `ceo@example.test split off into ${id}-3`,
    ]);
    // each recipient got exactly its own version
    expect(unfold((await mailboxMessages(gw, 'r6@example.test'))[0])).toMatch(/Subject: mixed\r\n/);
    const ceo = unfold((await mailboxMessages(gw, 'ceo@example.test'))[0]);
    expect(ceo).toContain('Subject: mixed\r\n');
    expect(ceo).toMatch(
      /X-Mailmoat-Warning: high-spam: SpamAssassin score \d+\.\d, 10\.0 or more is high spam; strongest signs: Generic Test for Unsolicited Bulk Email/,
    );
    expect(ceo).toContain('X-Spam-Flag: YES');
    expect(ceo).toContain(`X-Mailmoat-ID: ${id}-3`);
    // releasing the quarantined copy delivers to its two recipients only, once
    const deps = { config: gw.config, ...gw.stores, queue: gw.queue, logger: silentLogger() };
    expect(await releaseMessage(deps, `${id}-2`, 'test')).toEqual({ ok: true });
    await waitForStatus(gw, `${id}-2`, ['released']);
    await waitFor(async () => ((await mailboxMessages(gw, 'r7@example.test')).length > 0 ? true : undefined), { what: 'released copy' });
    expect((await gw.stores.store.deliveries(`${id}-2`)).map((d) => d.recipient)).toEqual(['r7@example.test', 'x@other.test']);
    expect(await mailboxMessages(gw, 'r6@example.test')).toHaveLength(1);
  });
});
