import net from 'node:net';

/** A loopback port free at this moment (for servers that must be told their port before they start). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function refuses(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/**
 * A loopback port that refuses connections, for "the peer is down" tests. A port from freePort() is
 * not good enough: the kernel hands it to the next server another test file starts (which then
 * accepts and says nothing), and an outgoing connection may even get it as its own local port and
 * connect to itself. Ports below 1024 are outside the ephemeral range and no test listens there.
 */
export async function closedPort(): Promise<number> {
  for (const port of CLOSED) if (await refuses(port)) return port;
  throw new Error('no closed port below 1024 on 127.0.0.1');
}
const CLOSED = [1, 3, 5, 7, 9, 11, 13];

/**
 * A port that refuses connections now and that the test will listen on later ("the peer comes
 * back"). Never one of closedPort()'s: a test file running in parallel that wants its peer down
 * would reach this one's server once it is up (and its message land in this test's mailbox).
 * A random port of 600–999 (below the ephemeral range, root only), so that two such tests do
 * not pick the same one.
 */
export async function downForNowPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 600 + Math.floor(Math.random() * 400);
    if (await refuses(port)) return port;
  }
  throw new Error('no closed port in 600–999 on 127.0.0.1');
}
