// The receiving side under a bounded soak: 500 messages from 20 concurrent client sessions (hosted
// recipients, viruses, and mail from forged senders at broken domains that bounces), while the
// clients and the next hops misbehave at random and the whole gateway is SIGKILLed twice. The
// promise checked: every message that got a 250 is delivered exactly once, quarantined, or failed
// with a DSN to its sender; nothing is delivered twice; the gateway never ends on its own; and the
// listener answers a new connection at least every second except across the kills.
//
// Everything random comes from one seeded generator: the seed is printed, and
// MAILMOAT_SOAK_SEED=<seed> replays the same plan (the timing of the kills still varies).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/config/schema.ts';
import { openStores, type Stores } from '../../gateway/roles.ts';
import { freePort } from '../../gateway/services/managed.ts';
import { IN_FLIGHT } from '../../gateway/store/metadata.ts';
import { eicarBytes } from '../support/eicar.ts';
import { testConfigInput, waitFor } from '../support/gateway.ts';
import { gatewayProcess, startListenerProbe, type GatewayProcess } from '../support/gateway-process.ts';
import { attachment, buildMessage, mailDate, text } from '../support/mime.ts';
import { BROKEN_SENDER_DOMAINS, startWorld, UNKNOWN_USER } from '../support/soak-world.ts';
import { prng } from '../support/prng.ts';
import { RawSmtp } from '../support/smtp-client.ts';

const MESSAGES = 500;
const SESSIONS = 20;
const KILLS = 2;
/** A listener silent for longer than this, outside a kill, fails the soak. */
const MAX_SILENCE_MS = 3_000; // a probe every 200 ms; more than this outside a kill is a listener that stopped answering, not a loaded machine
/** The queue lifetime is 25 s: everything is final within this after the last message was sent. */
const DRAIN_TIMEOUT_MS = 45_000;
const REPO = path.resolve(import.meta.dirname, '../..');

const SEED = Number(process.env.MAILMOAT_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** The plan (messages, client faults, kill points) comes from `random`, drawn before the run; the peers' faults from a stream of their own. */
const random = prng(SEED);
const peerRandom = prng(SEED ^ 0x5eed);
const pick = <T>(items: readonly T[], r = random): T => items[Math.floor(r() * items.length)];
const chance = (p: number, r = random) => r() < p;

// ---- the plan: what each message is and how its client behaves ----

type Kind = 'hosted' | 'named' | 'backup' | 'virus' | 'bounce';
type ClientFault = 'none' | 'garbage-command' | 'rset-midway' | 'abort-mid-data' | 'drop-after-ehlo';
interface Planned {
  marker: string;
  kind: Kind;
  from: string;
  to: string[];
  clientFault: ClientFault;
  words: string;
}
interface Accepted extends Planned {
  id: string;
}

function planMessage(n: number): Planned {
  const marker = `soak-${SEED}-${n}`;
  const r = random();
  const kind: Kind = r < 0.45 ? 'hosted' : r < 0.58 ? 'named' : r < 0.66 ? 'backup' : r < 0.76 ? 'virus' : 'bounce';
  const user = () => `user${Math.floor(random() * 8)}`;
  const to =
    kind === 'named'
      ? [`${user()}@named.test`]
      : kind === 'backup'
        ? [`${user()}@backup.test`]
        : kind === 'bounce'
          ? [UNKNOWN_USER]
          : chance(0.2)
            ? [`${user()}@example.test`, `extra${n}@example.test`]
            : [`${user()}@example.test`];
  // DSNs to a domain whose MX lookup fails wait out the whole queue lifetime: only early in the run, so the soak ends soon after its last message.
  const brokenDomains = Object.keys(BROKEN_SENDER_DOMAINS).filter(
    (d) => n < MESSAGES * 0.15 || !['servfail', 'hang'].includes(BROKEN_SENDER_DOMAINS[d].mxHost ?? ''),
  );
  const from = kind === 'bounce' ? `forged${n}@${pick(brokenDomains)}` : `s${n}@sender.test`;
  const clientFault = chance(0.12) ? pick<ClientFault>(['garbage-command', 'rset-midway', 'abort-mid-data', 'drop-after-ehlo']) : 'none';
  const words = Array.from({ length: 5 + Math.floor(random() * 200) }, () => pick(['mail', 'moat', 'soak', 'queue', 'spool', 'peer', 'kill'])).join(' ');
  return { marker, kind, from, to, clientFault, words };
}

function messageBytes(m: Planned): Buffer {
  const headers = [
    `From: <${m.from}>`,
    `To: ${m.to.map((t) => `<${t}>`).join(', ')}`,
    `Subject: ${m.marker}`,
    `Date: ${mailDate()}`,
    `Message-ID: <${m.marker}@soak.test>`,
    `X-Soak-Marker: ${m.marker}`,
    'MIME-Version: 1.0',
  ];
  const body = text(`${m.words.replace(/(.{1,70})( |$)/g, '$1\r\n')}`);
  const root = m.kind === 'virus' ? { multipart: 'mixed', parts: [body, attachment('invoice.com', eicarBytes())] } : body;
  return buildMessage(root, headers);
}

// ---- the clients ----

interface Run {
  accepted: Accepted[];
  /** Markers of transactions the client broke off inside DATA: must never be delivered. */
  aborted: Set<string>;
  replies: Map<number, number>;
  onAccepted: () => void;
}

async function connect(port: number, gateway: GatewayProcess): Promise<RawSmtp> {
  const deadline = Date.now() + 40_000;
  for (;;) {
    if (gateway.gaveUp) throw new Error('the gateway stays down');
    try {
      const c = await RawSmtp.connect(port);
      const ehlo = await c.hello('client.sender.test');
      if (ehlo.code === 250) return c;
      c.close();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
  }
}

async function runSession(port: number, gateway: GatewayProcess, plan: Planned[], run: Run): Promise<void> {
  let client: RawSmtp | undefined;
  for (const m of plan) {
    if (gateway.gaveUp) return;
    try {
      client ??= await connect(port, gateway);
      if (m.clientFault === 'drop-after-ehlo') {
        client.destroy(); // gone without QUIT
        client = await connect(port, gateway);
      }
      if (m.clientFault === 'garbage-command') await client.cmd('XYZZY \x01\x02 nonsense');
      if (m.clientFault === 'rset-midway') {
        await client.cmd(`MAIL FROM:<${m.from}>`);
        await client.cmd(`RCPT TO:<${m.to[0]}>`);
        await client.cmd('RSET');
      }
      const bytes = Buffer.concat([messageBytes(m), Buffer.from('.\r\n')]);
      if (m.clientFault === 'abort-mid-data') {
        const mail = await client.cmd(`MAIL FROM:<${m.from}>`);
        const rcpt = await client.cmd(`RCPT TO:<${m.to[0]}>`);
        if (mail.code === 250 && rcpt.code === 250 && (await client.cmd('DATA')).code === 354) {
          run.aborted.add(m.marker);
          client.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
        }
        client.destroy();
        client = undefined;
        continue;
      }
      const replies = await client.transaction(m.from, m.to, bytes);
      const last = replies.at(-1)!;
      run.replies.set(last.code, (run.replies.get(last.code) ?? 0) + 1);
      const id = /queued as (\S+)/.exec(last.text)?.[1];
      if (last.code === 250 && id) {
        run.accepted.push({ ...m, id });
        run.onAccepted();
      } else if (replies.some((r) => r.code === 421)) {
        client.destroy();
        client = undefined;
      } else await client.cmd('RSET');
    } catch {
      // The connection broke (a kill, a timeout): this message got no 250; carry on with a new session.
      client?.destroy();
      client = undefined;
    }
  }
  client?.close();
}

// ---- the soak ----

/** Errors the process guard caught (the process survived them, but each is a bug), by message. */
function escapedErrors(log: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of log.split('\n')) {
    if (!line.includes('"an error escaped')) continue;
    const message = /"message":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 120);
    counts[message] = (counts[message] ?? 0) + 1;
  }
  return counts;
}

/** The line of a crash log that says what was thrown. */
function crashLine(log: string): string {
  const lines = log.split('\n');
  const at = lines.findIndex((l) => /^\w*Error\b|^\s*throw /.test(l));
  return at === -1
    ? lines.slice(-3).join(' ')
    : lines
        .slice(at, at + 6)
        .join(' ')
        .replace(/\s+/g, ' ');
}

interface Kill {
  at: number;
  answeringAgainAt: number;
}

const cleanups: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('soak: the receiving side under misbehaving peers and two SIGKILLs', () => {
  it(`${MESSAGES} messages over ${SESSIONS} sessions: each accepted one delivered once, quarantined or bounced; the listener answers throughout`, async () => {
    console.log(`soak seed ${SEED} (replay with MAILMOAT_SOAK_SEED=${SEED})`);
    const plan = Array.from({ length: MESSAGES }, (_, n) => planMessage(n));
    // Kill points: one in the first third of the accepted messages, one in the second.
    const killAfter = [Math.floor(MESSAGES * (0.2 + random() * 0.15)), Math.floor(MESSAGES * (0.5 + random() * 0.15))];
    const started = Date.now();
    const world = await startWorld(peerRandom);
    cleanups.push(() => world.close());

    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-soak-'));
    let passed = false; // a failed soak keeps its data dir (store, spool, gateway.log) for a look
    cleanups.push(() => (passed && !process.env.MAILMOAT_KEEP_TEST_DIR ? fs.rm(dataDir, { recursive: true, force: true }) : undefined));
    const smtpPort = await freePort();
    const input = testConfigInput(dataDir, world.sink.port, {
      smtp: { listen: { host: '127.0.0.1', port: smtpPort }, maxMessageBytes: 200_000, maxRecipients: 5 },
      domains: {
        // Ten connections to the one mailbox server (the default is 5 per host): it stands in for three.
        'example.test': { downstream: [{ host: '127.0.0.1', port: world.sink.port, tls: 'none', maxConnections: 10 }] },
        // A downstream by name, through the gateway's resolver.
        'named.test': { downstream: [{ host: 'mail.named.test', port: world.sink.port, tls: 'none', maxConnections: 10 }] },
        // A dead first hop: every delivery moves on to the second.
        'backup.test': {
          downstream: [
            { host: 'dead.backup.test', port: world.deadPort, tls: 'none', priority: 10 },
            { host: '127.0.0.1', port: world.sink.port, tls: 'none', priority: 20, maxConnections: 10 },
          ],
        },
      },
      console: { enabled: false },
      dns: { servers: [world.dns.address], timeoutMs: 300, tries: 1 },
      queue: { lockDurationMs: 2_000, scanConcurrency: 8 },
      // Short lives: a bounce whose sender's MX never answers gives up within seconds, not days.
      delivery: { retryDelayMs: 250, maxRetryDelayMs: 1_000, connectTimeoutMs: 1_000, maxLifetimeMs: 25_000, delayWarningMs: 0 },
      scan: { retryDelayMs: 250, maxRetryDelayMs: 1_000, maxAttempts: 20 },
      // The soak is about the message's life, not spam scoring: spamd would be most of its run time.
      policy: { checks: { spam: false } },
    });
    const config = configSchema.parse(input);
    const configFile = path.join(dataDir, 'mailmoat.yaml');
    await fs.writeFile(configFile, JSON.stringify(input));
    const gateway: GatewayProcess = gatewayProcess({ configFile, dataDir, smtpPort });
    cleanups.push(() => gateway.stop());
    await gateway.start();
    const probe = startListenerProbe(smtpPort, 200, 2_000);
    cleanups.push(() => probe.stop());

    const kills: Kill[] = [];
    let killing: Promise<void> = Promise.resolve();
    const run: Run = {
      accepted: [],
      aborted: new Set(),
      replies: new Map(),
      onAccepted: () => {
        if (kills.length >= KILLS || run.accepted.length < killAfter[kills.length]) return;
        const kill: Kill = { at: Date.now(), answeringAgainAt: Infinity };
        kills.push(kill);
        killing = killing.then(async () => {
          kill.at = Date.now();
          await gateway.kill();
          await gateway.start();
          kill.answeringAgainAt = Date.now();
        });
      },
    };
    await Promise.all(
      Array.from({ length: SESSIONS }, (_, s) =>
        runSession(
          smtpPort,
          gateway,
          plan.filter((_, n) => n % SESSIONS === s),
          run,
        ),
      ),
    );
    await killing;
    const sentAt = Date.now();

    // Drain: every accepted message and every message the gateway made (DSNs) reaches a final state.
    const stores: Stores = await openStores(config);
    cleanups.push(() => stores.store.close());
    const drained = await waitFor(
      async () => {
        if (gateway.gaveUp) return 'the gateway stayed down';
        const inFlight = await stores.store.inFlight(1);
        if (inFlight.length > 0) return undefined;
        for (const a of run.accepted) if (IN_FLIGHT.includes((await stores.store.get(a.id))?.status ?? 'queued')) return undefined;
        return 'drained';
      },
      { timeoutMs: DRAIN_TIMEOUT_MS, what: 'the queue to drain' },
    ).catch(() => 'not drained');
    const drainedAt = Date.now();
    await probe.stop();
    const listing = execFileSync(path.join(REPO, 'node_modules/.bin/node'), [path.join(REPO, 'gateway/cli.ts'), 'queue', 'list', '--config', configFile], {
      encoding: 'utf8',
    });

    // What reached the hosted domains' mailbox server, by gateway id and recipient.
    const copies = new Map<string, number>();
    const deliveredMarkers = new Set<string>();
    for (const m of world.sink.accepted) {
      const head = m.data.toString('latin1').split('\r\n\r\n')[0];
      const id = /^X-Mailmoat-ID: (\S+)/im.exec(head)?.[1] ?? 'none';
      const marker = /^X-Soak-Marker: (\S+)/im.exec(head)?.[1];
      if (marker) deliveredMarkers.add(marker);
      for (const r of m.rcptTo) copies.set(`${id} ${r.toLowerCase()}`, (copies.get(`${id} ${r.toLowerCase()}`) ?? 0) + 1);
    }

    const outcomes: Record<string, number> = {};
    let expiredHosted = 0;
    // A kill between the downstream's 250 and our record of it sends the message again after the
    // restart: the one duplicate no MTA can rule out (RFC 5321 §6.1 asks for at-least-once; Postfix
    // has the same window). Allowed only for a message whose delivery attempt was cut by a kill: a
    // deliver job, or the scan job's first attempt (the scan job run again hands the message on).
    const duplicatesAcrossKill = new Set<string>();
    const problems: string[] = [];
    for (const a of run.accepted) {
      const record = await stores.store.get(a.id);
      const status = record?.status ?? 'missing';
      outcomes[`${a.kind}: ${status}`] = (outcomes[`${a.kind}: ${status}`] ?? 0) + 1;
      const counts = a.to.map((r) => copies.get(`${a.id} ${r.toLowerCase()}`) ?? 0);
      const events = await stores.store.events(a.id);
      if (status === 'delivered') {
        const cut = (queue: string) => events.some((e) => e.kind === 'fault' && new RegExp(`^${queue}\\b.*died or stalled`).test(e.detail));
        const handedOn = events.some((e) => e.kind === 'requeued' && (e.data as { by?: string } | undefined)?.by === 'scan job run again');
        const cutByKill = cut('deliver') || (cut('scan') && handedOn);
        if (cutByKill && counts.some((n) => n === 2) && counts.every((n) => n === 1 || n === 2)) duplicatesAcrossKill.add(a.id);
        else if (counts.some((n) => n !== 1)) {
          const stored = world.storedAt
            .get(a.id)
            ?.map((t) => `+${t - started}`)
            .join(', ');
          problems.push(
            `${a.id} (${a.marker}) delivered, but the sink holds ${counts.join('/')} copies for ${a.to.join(', ')} (stored at ${stored} ms; kills at ${kills.map((k) => `+${k.at - started}`).join(', ')} ms); events: ${events.map((e) => e.kind).join(', ')}`,
          );
        }
      } else if (status === 'quarantined') {
        if (counts.some((n) => n !== 0)) problems.push(`${a.id} (${a.marker}) quarantined, but also delivered`);
      } else if (status === 'failed') {
        // A DSN sent, or withheld on purpose and said so (backscatter rules, rate limit).
        if (!events.some((e) => e.kind === 'bounced' || e.kind === 'dsn-suppressed'))
          problems.push(`${a.id} (${a.marker}) failed without a DSN to <${a.from}>: ${record?.lastReply}`);
        if (counts.some((n) => n > 1)) problems.push(`${a.id} (${a.marker}) failed, and delivered more than once`);
      } else problems.push(`${a.id} (${a.marker}, ${a.kind}) ended as ${status}: ${record?.lastReply ?? ''}`);
      // What each kind should come to. The mailbox server only ever fails temporarily, so hosted
      // mail arrives, unless it outlived the soak's short queue lifetime (a slow machine): then it is
      // returned to its sender like any expired message.
      const expired = status === 'failed' && /expired after/.test(record?.lastReply ?? '');
      const expected = a.kind === 'virus' ? 'quarantined' : a.kind === 'bounce' ? 'failed' : expired ? 'failed' : 'delivered';
      if (status !== expected) problems.push(`${a.id} (${a.marker}, ${a.kind}) ended ${status}, expected ${expected}: ${record?.lastReply ?? ''}`);
      if (expired && a.kind !== 'bounce') expiredHosted++;
    }
    if (drained !== 'drained') {
      // Whatever is still in the gateway's hands, with its last events: generated DSNs included.
      for (const r of await stores.store.inFlight(20)) {
        const last = (await stores.store.events(r.id)).slice(-2).map((e) => `${e.kind}: ${e.detail.slice(0, 160)}`);
        problems.push(`${drained}: ${r.id} <${r.mailFrom}> → ${r.rcptTo.join(',')} still ${r.status}; ${last.join(' | ')}`);
      }
    }
    for (const [key, n] of copies) if (n > 1 && !duplicatesAcrossKill.has(key.split(' ')[0])) problems.push(`${key}: ${n} copies at the sink`);
    for (const marker of run.aborted) if (deliveredMarkers.has(marker)) problems.push(`${marker}: the client broke off DATA, yet it was delivered`);

    // The listener: every silence longer than MAX_SILENCE_MS must span a kill and end once the restarted process answers.
    const answered = [started, ...[...probe.answeredAt].sort((x, y) => x - y), drainedAt];
    const silences: string[] = [];
    for (let i = 1; i < answered.length; i++) {
      const [from, to] = [answered[i - 1], answered[i]];
      if (to - from <= MAX_SILENCE_MS) continue;
      const acrossKill = kills.some((k) => from <= k.at + MAX_SILENCE_MS && to >= k.at && to <= k.answeringAgainAt + MAX_SILENCE_MS);
      if (!acrossKill && i > 1) silences.push(`${to - from} ms from +${from - started} ms`);
    }

    const dsns = await stores.store.countByStatus();
    console.log(
      [
        `soak seed ${SEED} in ${dataDir}: ${plan.length} planned, ${run.accepted.length} accepted (250), ${run.aborted.size} broken off in DATA, replies ${JSON.stringify(Object.fromEntries(run.replies))}`,
        `kills ${kills.length} after ${killAfter.join(', ')} accepted, at ${kills.map((k) => `+${k.at - started}`).join(', ')} ms; back in ${kills.map((k) => k.answeringAgainAt - k.at).join(', ')} ms`,
        `sending ${sentAt - started} ms, drained after ${drainedAt - sentAt} ms; total ${Date.now() - started} ms`,
        `outcomes ${JSON.stringify(outcomes)}; hosted mail that expired in the queue: ${expiredHosted}; sent twice across a kill: ${
          [...duplicatesAcrossKill]
            .map(
              (id) =>
                `${id} (stored at ${world.storedAt
                  .get(id)
                  ?.map((t) => `+${t - started}`)
                  .join(', ')} ms)`,
            )
            .join(', ') || 'none'
        }`,
        `all messages by status (DSNs included) ${JSON.stringify(dsns)}`,
        `sink: ${world.sink.connections} connections, ${world.sink.accepted.length} messages stored`,
        `listener probes answered: ${probe.answeredAt.length}; silences outside kills: ${silences.length}`,
        `errors that escaped to the process guard: ${JSON.stringify(escapedErrors(gateway.logTail(100_000)))}`,
      ].join('\n'),
    );
    if (problems.length > 0 || gateway.unexpectedExits.length > 0)
      console.log(
        `gateway log tail:\n${gateway
          .logTail(15)
          .split('\n')
          .map((l) => l.slice(0, 400))
          .join('\n')}`,
      );

    // One assertion, so that a failing soak shows everything that went wrong at once.
    const shown = (list: string[]) => (list.length > 30 ? [...list.slice(0, 30), `… and ${list.length - 30} more`] : list);
    expect({
      crashes: gateway.unexpectedExits.map((e) => `exit ${e.code ?? e.signal} at +${e.at - started} ms: ${crashLine(e.logTail)}`),
      kills: kills.length,
      mostAccepted: run.accepted.length > MESSAGES * 0.6,
      problems: shown(problems),
      silences: shown(silences),
      queueList: listing.trim().split('\n').slice(0, 10),
    }).toEqual({ crashes: [], kills: KILLS, mostAccepted: true, problems: [], silences: [], queueList: ['queue is empty'] });
    passed = true;
  }, 150_000);
});
