import net from 'node:net';

/** A loopback port free at this moment (for servers that must be told their port before they start). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A loopback port that refuses connections, for "the peer is down" tests. A port from freePort() is
 * not good enough: the kernel hands it to the next server another test file starts (which then
 * accepts and says nothing), and an outgoing connection may even get it as its own local port and
 * connect to itself. Ports below 1024 are outside the ephemeral range and no test listens there.
 */
export async function closedPort(): Promise<number> {
  for (const port of [1, 3, 5, 7, 9, 11, 13]) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(false)));
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) return port;
  }
  throw new Error('no closed port below 1024 on 127.0.0.1');
}
