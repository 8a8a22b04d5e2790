// Proxies in front of a real engine (a unix socket: clamd; TCP: PostgreSQL), which a test can take down and bring
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
    splice(client, net.connect({ path: target }), open);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  proxy.close = () => {
    for (const s of open) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return proxy;
}

export interface TcpProxy {
  port: number;
  /** Drops every open connection and refuses new ones: the engine is gone for this client. */
  cut(): void;
  restore(): void;
  /**
   * Forwards nothing more, either way, and holds new connections open without an answer: a hung
   * engine (stopped with SIGSTOP) whose connections still look alive. restore() ends the stall.
   */
  stall(): void;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of a real engine (PostgreSQL), which a test can cut and restore. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  let up = true;
  let stalled = false;
  const held = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    if (stalled) {
      held.add(client);
      client.on('error', () => {});
      client.on('close', () => held.delete(client));
      return;
    }
    splice(client, net.connect(target), open);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const dropAll = () => {
    for (const s of open) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      up = false;
      dropAll();
    },
    restore() {
      up = true;
      if (stalled) {
        stalled = false;
        for (const s of open) s.resume();
        for (const s of held) s.destroy();
      }
    },
    stall() {
      stalled = true;
      // Paused sockets read nothing, so nothing is piped on: both directions stop.
      for (const s of open) s.pause();
    },
    close() {
      for (const s of held) s.destroy();
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Joins a client to its upstream both ways; either side failing closes both. */
function splice(client: net.Socket, upstream: net.Socket, open: Set<net.Socket>): void {
  for (const s of [client, upstream]) {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {
      client.destroy();
      upstream.destroy();
    });
  }
  client.pipe(upstream).pipe(client);
}
