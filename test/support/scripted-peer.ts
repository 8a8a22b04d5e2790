// A remote SMTP server for tests that misbehaves on cue: a small net-based server on loopback whose
// every reply can be scripted per test — a greeting code or none at all, a reply per command,
// multi-line replies, a reset (RST) at any point, replies dribbled one byte at a time, a STARTTLS
// that ends in a broken handshake. It records what it was sent and what it accepted, so a test can
// count deliveries (a message counts once its final dot got a 2xx from us).
//
// What it leaves out: pipelining checks, AUTH, BDAT, real TLS (a "working" STARTTLS is not
// offered: use the demo mailbox for that), line length limits.
import net from 'node:net';

/**
 * What the peer does at one step. A string is a reply: lines separated by "\n" are sent as one
 * multi-line reply ("250-a\r\n250 b"). `reset` closes the connection with a TCP RST; `hang` never
 * answers (the connection stays open); `close` ends it politely (FIN).
 */
export type PeerAction = string | { reset: true } | { hang: true } | { close: true };

export interface PeerScript {
  /** Default "220 peer.test ESMTP"; `hang` accepts TCP and never greets. */
  greeting?: PeerAction;
  ehlo?: PeerAction;
  /** Advertise STARTTLS; its reply (default "220 go ahead"), after which the peer sends bytes that are not TLS. */
  starttls?: PeerAction;
  mail?: (from: string) => PeerAction;
  rcpt?: (to: string) => PeerAction;
  /** Reply to RSET, default "250 2.0.0 ok" (a reused connection is reset before its next message). */
  rset?: PeerAction;
  /** Reply to DATA, default "354 go ahead". */
  data?: PeerAction;
  /** Reset after this many bytes of message content (mid-DATA). */
  resetInDataAfter?: number;
  /** Reply to the final dot; default "250 2.0.0 queued". `reset` after the reply: see afterDot. */
  dot?: (message: Buffer) => PeerAction;
  /** What happens right after the reply to the final dot (before QUIT): nothing, or a reset. */
  afterDot?: 'reset';
  /** Every byte we send after the greeting is delayed by this many ms (a peer that sends one byte a second). */
  byteDelayMs?: number;
}

export interface ScriptedPeer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Every command line received, in order (across connections). */
  readonly commands: string[];
  /** Messages whose final dot we answered with 2xx: recipients and content. */
  readonly accepted: { rcptTo: string[]; mailFrom: string; data: Buffer }[];
  /**
   * Changes the script for the next connections, and for the next transaction (from MAIL on) of
   * the open ones: a real server's answers change under a connection that stays open too. A
   * function draws one script per connection (random faults) and is not re-applied mid-connection.
   */
  setScript(script: PeerScript | (() => PeerScript)): void;
  close(): Promise<void>;
}

const CRLF = '\r\n';

function toWire(reply: string): string {
  const lines = reply.split('\n');
  return lines.map((line, i) => (i < lines.length - 1 ? line.replace(/^(\d{3})[ -]/, '$1-') : line)).join(CRLF) + CRLF;
}

export async function startScriptedPeer(initial: PeerScript | (() => PeerScript) = {}, host = '127.0.0.1'): Promise<ScriptedPeer> {
  let script = initial;
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, commands: [] as string[], accepted: [] as ScriptedPeer['accepted'] };

  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // a client reset is part of the game
    let s = typeof script === 'function' ? script() : script;
    let queue = Promise.resolve();
    let dead = false;
    let greeted = false;

    const send = (text: string) => {
      const delay = greeted ? (s.byteDelayMs ?? 0) : 0;
      queue = queue.then(async () => {
        if (dead) return;
        if (!delay) {
          socket.write(text);
          return;
        }
        for (const ch of Buffer.from(text)) {
          if (dead || socket.destroyed) return;
          socket.write(Buffer.from([ch]));
          await new Promise((r) => setTimeout(r, delay));
        }
      });
    };
    /** Does one action; returns false when the connection is over. */
    const act = (a: PeerAction): boolean => {
      if (typeof a === 'string') {
        send(toWire(a));
        return true;
      }
      if ('hang' in a) return true;
      dead = true;
      if ('reset' in a) socket.resetAndDestroy();
      else socket.end();
      return false;
    };

    let buffer = Buffer.alloc(0);
    let inData = false;
    let dataBytes = 0;
    let envelope = { mailFrom: '', rcptTo: [] as string[] };
    let accepted: string[] = [];

    const onLine = (line: string) => {
      state.commands.push(line);
      const [verb = '', ...rest] = line.split(' ');
      const arg = rest.join(' ');
      const address = /<([^>]*)>/.exec(arg)?.[1] ?? '';
      switch (verb.toUpperCase()) {
        case 'EHLO':
        case 'HELO': {
          const ext = ['8BITMIME', 'SMTPUTF8', 'DSN', 'SIZE 10000000', ...(s.starttls !== undefined ? ['STARTTLS'] : [])];
          return act(s.ehlo ?? ['250-peer.test', ...ext.map((e) => `250-${e}`)].join('\n').replace(/250-([^\n]*)$/, '250 $1'));
        }
        case 'STARTTLS': {
          const ok = act(s.starttls ?? '220 2.0.0 go ahead');
          // Whatever the client sends now is a TLS ClientHello; answer with bytes that are not TLS.
          if (ok && typeof s.starttls === 'string' && s.starttls.startsWith('220')) {
            socket.removeAllListeners('data');
            socket.once('data', () => {
              socket.write('this is not TLS\r\n');
              socket.end();
            });
          }
          return ok;
        }
        case 'MAIL':
          if (typeof script !== 'function') s = script;
          envelope = { mailFrom: address, rcptTo: [] };
          accepted = [];
          return act(s.mail?.(address) ?? '250 2.1.0 ok');
        case 'RCPT': {
          const reply = s.rcpt?.(address) ?? '250 2.1.5 ok';
          if (typeof reply === 'string' && reply.startsWith('2')) accepted.push(address);
          return act(reply);
        }
        case 'DATA': {
          const reply = s.data ?? '354 go ahead';
          if (typeof reply === 'string' && reply.startsWith('354')) {
            inData = true;
            dataBytes = 0;
          }
          return act(reply);
        }
        case 'RSET':
          return act(s.rset ?? '250 2.0.0 ok');
        case 'NOOP':
          return act('250 2.0.0 ok');
        case 'QUIT':
          act('221 2.0.0 bye');
          dead = true;
          queue = queue.then(() => void socket.end());
          return false;
        default:
          return act('502 5.5.2 command not recognized');
      }
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (!dead) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          const seen = end < 0 ? buffer.length : end;
          if (s.resetInDataAfter !== undefined && dataBytes + seen >= s.resetInDataAfter) {
            act({ reset: true });
            return;
          }
          if (end < 0) return;
          const message = buffer.subarray(0, end + 2);
          buffer = buffer.subarray(end + 5);
          inData = false;
          const reply = s.dot?.(message) ?? '250 2.0.0 queued';
          if (typeof reply === 'string' && reply.startsWith('2')) {
            state.accepted.push({ mailFrom: envelope.mailFrom, rcptTo: accepted, data: Buffer.from(message) });
          }
          if (!act(reply)) return;
          if (s.afterDot === 'reset') {
            queue = queue.then(() => {
              dead = true;
              socket.resetAndDestroy();
            });
            return;
          }
          continue;
        }
        const eol = buffer.indexOf(CRLF);
        if (eol < 0) return;
        const line = buffer.subarray(0, eol).toString('latin1');
        buffer = buffer.subarray(eol + 2);
        if (!onLine(line)) return;
      }
    });

    act(s.greeting ?? '220 peer.test ESMTP scripted');
    greeted = true;
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    commands: state.commands,
    accepted: state.accepted,
    setScript: (next) => void (script = next),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A port where a TCP connect never completes, as behind a firewall that drops SYNs: a listener
 * with a full accept queue (backlog 0, never accepting), whose kernel then drops new SYNs. Node
 * always accepts, so the listener is a small python3 process; the queue is filled from here.
 */
export async function startBlackholePort(): Promise<{ port: number; close(): Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const py = spawn(
    'python3',
    ['-c', "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(0); print(s.getsockname()[1], flush=True); time.sleep(3600)"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    py.once('error', reject);
    py.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  const fillers = Array.from({ length: 3 }, () => net.connect(port, '127.0.0.1').on('error', () => undefined));
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    async close() {
      for (const f of fillers) f.destroy();
      py.kill();
    },
  };
}
