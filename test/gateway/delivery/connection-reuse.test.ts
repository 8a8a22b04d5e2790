// Delivery connections reused per downstream (gateway/delivery/connection-pool.ts, smtp-send.ts)
// over real sockets to a scripted peer: a second message to the same target goes over the same
// connection after RSET; a connection is never reused after a failed transaction; a reused
// connection the peer had dropped neither loses nor doubles the message (one more try on a new
// connection, only when the peer had accepted nothing of it); idle and message-count limits end it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/load.ts';
import type { Config } from '../../../gateway/config/schema.ts';
import { ConnectionPool } from '../../../gateway/delivery/connection-pool.ts';
import { sendToTarget } from '../../../gateway/delivery/smtp-send.ts';
import type { Target } from '../../../gateway/delivery/transport.ts';
import type { Envelope } from '../../../gateway/spool/spool.ts';
import { MINIMAL_CONFIG } from '../../support/config.ts';
import { startScriptedPeer, type PeerScript, type ScriptedPeer } from '../../support/scripted-peer.ts';

let config: Config;
let dir: string;
const cleanups: (() => unknown)[] = [];

beforeAll(() => {
  config = parseConfig(MINIMAL_CONFIG, 'mailmoat.yaml');
  config.delivery = { ...config.delivery, connectTimeoutMs: 1_000, socketTimeoutMs: 2_000, transactionTimeoutMs: 3_000 };
  dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-reuse-'));
});

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function peer(script: PeerScript = {}): Promise<ScriptedPeer> {
  const p = await startScriptedPeer(script);
  cleanups.push(() => p.close());
  return p;
}

function pool(o: Partial<ConstructorParameters<typeof ConnectionPool>[0]> = {}): ConnectionPool {
  const p = new ConnectionPool({ idleMs: 10_000, maxMessages: 100, maxIdle: 4, ...o });
  cleanups.push(() => p.close());
  return p;
}

const target = (port: number): Target => ({
  host: 'mbox.example.test',
  address: '127.0.0.1',
  port,
  tls: 'none',
  maxConnections: 2,
  maxPerMinute: 0,
  configured: true,
  lane: 'hosted',
});

let n = 0;
/** Sends one message (its subject names it) to alice@ and returns her outcome and the reply. */
async function send(p: ScriptedPeer, connections: ConnectionPool, subject = `message ${++n}`) {
  const file = path.join(dir, `${subject.replace(/\W/g, '-')}.eml`);
  writeFileSync(file, `From: bob@sender.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`);
  const envelope = { id: subject, mailFrom: 'bob@sender.test', rcptTo: ['alice@example.test'] } as Envelope;
  const [r] = await sendToTarget(config, target(p.port), envelope, file, ['alice@example.test'], connections);
  return { outcome: r!.outcome, reply: r!.reply, copies: () => p.accepted.filter((m) => m.data.includes(`Subject: ${subject}\r\n`)).length };
}

const until = async (what: () => boolean) => {
  for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(what()).toBe(true);
};

describe('delivery connection reuse', () => {
  it('three messages to one downstream: one connection, RSET between messages, no QUIT until the pool closes', async () => {
    const p = await peer();
    const connections = pool();
    for (let i = 0; i < 3; i++) expect((await send(p, connections)).outcome).toBe('delivered');
    expect(p.connections).toBe(1);
    expect(p.accepted).toHaveLength(3);
    expect(p.commands.filter((c) => c === 'RSET')).toHaveLength(2);
    expect(p.commands).not.toContain('QUIT');
    connections.close();
    await until(() => p.commands.includes('QUIT'));
  });

  it('without a pool (or with reuseIdleMs 0) every message has its own connection, ended with QUIT', async () => {
    const p = await peer();
    const off = pool({ idleMs: 0 });
    expect((await send(p, off)).outcome).toBe('delivered');
    expect((await send(p, off)).outcome).toBe('delivered');
    expect(p.connections).toBe(2);
    expect(p.commands).not.toContain('RSET');
    await until(() => p.commands.filter((c) => c === 'QUIT').length === 2);
  });

  it('a connection whose transaction failed is not reused: the next message opens a new one', async () => {
    let refuse = true;
    const p = await peer({ dot: () => (refuse ? '451 4.3.0 local error in processing' : '250 2.0.0 queued') });
    const connections = pool();
    expect((await send(p, connections)).outcome).toBe('deferred');
    refuse = false;
    expect((await send(p, connections)).outcome).toBe('delivered');
    expect(p.connections).toBe(2);
    expect(p.commands).not.toContain('RSET');
  });

  it('the peer drops the idle connection at RSET: the message goes once, on a new connection', async () => {
    const p = await peer({ rset: { reset: true } });
    const connections = pool();
    expect((await send(p, connections)).outcome).toBe('delivered');
    const second = await send(p, connections);
    expect(second.outcome).toBe('delivered');
    expect(second.copies()).toBe(1);
    expect(p.connections).toBe(2);
  });

  it('the peer ends the reused session with 421 to MAIL FROM: the message goes once, on a new connection', async () => {
    let mails = 0;
    const p = await peer({ mail: () => (++mails === 2 ? '421 4.4.2 idle too long, closing' : '250 2.1.0 ok') });
    const connections = pool();
    expect((await send(p, connections)).outcome).toBe('delivered');
    const second = await send(p, connections);
    expect(second).toMatchObject({ outcome: 'delivered' });
    expect(second.copies()).toBe(1);
    expect(p.connections).toBe(2);
    expect(mails).toBe(3);
  });

  it('a failure after MAIL FROM was accepted on a reused connection is not retried at once: deferred, not doubled', async () => {
    const p = await peer();
    const connections = pool();
    expect((await send(p, connections)).outcome).toBe('delivered');
    p.setScript({ resetInDataAfter: 10 });
    const second = await send(p, connections);
    expect(second.outcome).toBe('deferred');
    expect(second.copies()).toBe(0);
    expect(p.connections).toBe(1);
  });

  it('the peer closes the idle connection: it leaves the pool, the next message opens a new one', async () => {
    const p = await peer({ afterDot: 'reset' });
    const connections = pool();
    expect((await send(p, connections)).outcome).toBe('delivered');
    await until(() => connections.idleCount === 0);
    p.setScript({});
    const second = await send(p, connections);
    expect(second.outcome).toBe('delivered');
    expect(second.copies()).toBe(1);
    expect(p.connections).toBe(2);
  });

  it('limits: a connection is closed (QUIT) after maxMessages, and after idleMs without a message', async () => {
    const p = await peer();
    const connections = pool({ maxMessages: 2, idleMs: 300 });
    for (let i = 0; i < 3; i++) expect((await send(p, connections)).outcome).toBe('delivered');
    expect(p.connections).toBe(2); // messages 1-2, then 3
    await until(() => p.commands.filter((c) => c === 'QUIT').length === 2); // the full one at once, the idle one after 300 ms
    expect(connections.idleCount).toBe(0);
  });
});
