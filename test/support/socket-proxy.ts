// A unix-socket proxy in front of a real engine (clamd), which a test can take down and bring
// back: the engine itself keeps running for the other test files that share it.
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface SocketProxy {
  socketPath: string;
  up: boolean;
  close(): Promise<void>;
}

export async function startSocketProxy(target: string): Promise<SocketProxy> {
  const socketPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'mm-proxy-')), 'engine.sock');
  const proxy: SocketProxy = { socketPath, up: true, close: async () => {} };
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!proxy.up) return client.destroy();
    const upstream = net.connect({ path: target });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  proxy.close = () => {
    for (const s of open) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
