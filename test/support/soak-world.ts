// The soak's internet (test/e2e/soak.test.ts): a fake DNS with the forged sender domains that
// bounces go to, each broken in one way, and the hosted domains' mailbox server, a scripted peer
// that misbehaves at random on one connection in four. Plus the seeded generator behind it all.
import net from 'node:net';
import { startFakeDns, type FakeDns } from './fake-dns.ts';
import { startScriptedPeer, type PeerScript, type ScriptedPeer } from './scripted-peer.ts';

/**
 * Forged sender domains whose bounces cannot be delivered, each broken in one way. A DSN to them
 * ends failed (no such domain, null MX, an MX that points back at loopback: a loop) or deferred
 * until the short queue lifetime of the soak ends (the MX host's lookup fails or times out).
 */
export const BROKEN_SENDER_DOMAINS: Record<string, { mx?: string; mxHost?: 'nxdomain' | 'servfail' | 'hang' | string }> = {
  'nxdomain.test': {}, // the domain itself does not exist
  'mx-nxhost.test': { mx: 'gone.mx-nxhost.test', mxHost: 'nxdomain' }, // MX host name does not resolve: once ended the process
  'mx-servfail.test': { mx: 'mx.mx-servfail.test', mxHost: 'servfail' },
  'mx-timeout.test': { mx: 'mx.mx-timeout.test', mxHost: 'hang' },
  'mx-loopback.test': { mx: 'mx.mx-loopback.test', mxHost: '127.0.0.1' },
  'mx-private.test': { mx: 'mx.mx-private.test', mxHost: '10.1.2.3' },
  'null-mx.test': { mx: '.' },
};
export const UNKNOWN_USER = 'nobody@example.test';

/** The mailbox server's behaviour on one connection: well-behaved three times in four, else one fault. */
function sinkScript(random: () => number, storedAt: Map<string, number[]>): PeerScript {
  const rcpt = (to: string) => (to.toLowerCase() === UNKNOWN_USER ? `550 5.1.1 <${to}>: no such user` : '250 2.1.5 ok');
  if (random() >= 0.25) return timed({ rcpt }, storedAt);
  const faults: PeerScript[] = [
    { greeting: { reset: true } },
    { greeting: { hang: true } }, // until the gateway's connect timeout
    { greeting: '421 4.3.2 Service shutting down, try later' },
    { rcpt: (to) => (to.toLowerCase() === UNKNOWN_USER ? rcpt(to) : '452 4.2.2 Mailbox full, try again later') },
    { rcpt, resetInDataAfter: 100 },
    { rcpt, dot: () => '451 4.3.0 Local problem, try again later' },
    { rcpt, afterDot: 'reset' }, // stored and acknowledged: must not be sent again
    { rcpt, ehlo: '250-peer.test\n250-8BITMIME\n250-SIZE 10000000\n250-ENHANCEDSTATUSCODES\n250 HELP' },
  ];
  return timed(faults[Math.floor(random() * faults.length)]!, storedAt);
}

/** When each copy of a message (by X-Mailmoat-ID) was stored: to tell a duplicate's story. */
function timed(script: PeerScript, storedAt: Map<string, number[]>): PeerScript {
  if (script.dot) return script;
  return {
    ...script,
    dot: (message) => {
      const id = /^X-Mailmoat-ID: (\S+)/im.exec(message.toString('latin1').split('\r\n\r\n')[0]!)?.[1] ?? 'none';
      storedAt.set(id, [...(storedAt.get(id) ?? []), Date.now()]);
      return '250 2.0.0 queued';
    },
  };
}

export interface World {
  dns: FakeDns;
  sink: ScriptedPeer;
  /** Times at which the sink stored a copy, by X-Mailmoat-ID. */
  storedAt: Map<string, number[]>;
  /**
   * The first, dead hop of backup.test: a listener that resets every connection. Held open for the
   * whole soak, so that no other server can take its port (a merely closed port was once reused by
   * a parallel test's mailbox, which then "delivered" backup.test's mail).
   */
  deadPort: number;
  close(): Promise<void>;
}

/** The fake DNS and the mailbox server; `random` draws the mailbox server's faults. */
export async function startWorld(random: () => number): Promise<World> {
  const dns = await startFakeDns({
    'client.sender.test': { A: ['127.0.0.1'] },
    '1.0.0.127.in-addr.arpa': { PTR: ['client.sender.test'] },
    'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 10 }], TXT: ['v=spf1 ip4:127.0.0.0/8 ~all'] },
    'mx.sender.test': { A: ['127.0.0.1'] },
    'mail.named.test': { A: ['127.0.0.1'] },
    'dead.backup.test': { A: ['127.0.0.1'] },
  });
  for (const [domain, b] of Object.entries(BROKEN_SENDER_DOMAINS)) {
    if (!b.mx) continue;
    dns.set(domain, 'MX', [{ exchange: b.mx, priority: 10 }]);
    if (b.mxHost === 'servfail') dns.servfail(b.mx);
    else if (b.mxHost === 'hang') dns.hang(b.mx);
    else if (b.mxHost && b.mxHost !== 'nxdomain') dns.set(b.mx, 'A', [b.mxHost]);
  }
  const storedAt = new Map<string, number[]>();
  const sink = await startScriptedPeer(() => sinkScript(random, storedAt));
  const dead = net.createServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const deadPort = (dead.address() as net.AddressInfo).port;
  const close = async () => {
    await Promise.all([dns.close(), sink.close(), new Promise<void>((resolve) => dead.close(() => resolve()))]);
  };
  return { dns, sink, storedAt, deadPort, close };
}
