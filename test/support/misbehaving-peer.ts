// A remote SMTP server on loopback that misbehaves on request, for delivery tests: it stands in
// for the internet's mail servers (the hosted domains' mailbox servers, the MX hosts of forged
// senders that bounces go to). Each connection draws one fault from `fault()`, so a test can
// script it or draw it at random from a seeded generator.
//
// What it does: a plain SMTP server (EHLO with a multi-line reply, MAIL, RCPT, DATA with dot
// unstuffing, RSET, NOOP, QUIT; no PIPELINING, STARTTLS or DSN advertised) that stores a message
// only when it answers 250 to the final dot, so a test can count deliveries exactly: a fault that
// ends the transaction before that 250 stores nothing (the sender rightly tries again), and
// "reset-after-250" stores the message and then drops the connection (the sender must not send it
// again). What it leaves out: TLS, pipelining, BDAT, size limits.
import net from 'node:net';

export type PeerFault =
  | 'none'
  /** TCP reset right after the connection is accepted, before any greeting. */
  | 'reset-at-connect'
  /** The banner is never sent; the connection is held open (a stalled or tarpitting server). */
  | 'silent'
  | 'greet-421'
  | 'greet-554'
  /** Every recipient of the transaction gets 452 4.2.2 (mailbox full: try again later). */
  | 'rcpt-452'
  /** TCP reset after the first bytes of the message, before the final dot. */
  | 'reset-mid-data'
  /** 451 after the final dot: not stored. */
  | '451-after-dot'
  /** 250 after the final dot (stored), then a reset instead of the reply to QUIT. */
  | 'reset-after-250';

export const PEER_FAULTS: readonly PeerFault[] = ['none', 'reset-at-connect', 'silent', 'greet-421', 'greet-554', 'rcpt-452', 'reset-mid-data', '451-after-dot', 'reset-after-250'];

export interface StoredMessage {
  mailFrom: string;
  rcptTo: string[];
  data: Buffer;
}

export interface MisbehavingPeer {
  host: string;
  port: number;
  /** Messages answered with 250 at the final dot, in order. */
  readonly messages: StoredMessage[];
  /** Connections per fault drawn. */
  readonly faults: Partial<Record<PeerFault, number>>;
  close(): Promise<void>;
}

export interface PeerOptions {
  host: string;
  /** 0: any free port. */
  port?: number;
  /** The fault of each new connection (default: none). */
  fault?: () => PeerFault;
  /** A permanent refusal for some recipients, e.g. 550 5.1.1 for unknown users. */
  refuseRecipient?: (address: string) => string | undefined;
}

const EHLO_REPLY = (name: string) => `250-${name}\r\n250-8BITMIME\r\n250-SIZE 10485760\r\n250 ENHANCEDSTATUSCODES\r\n`;

export async function startMisbehavingPeer(o: PeerOptions): Promise<MisbehavingPeer> {
  const messages: StoredMessage[] = [];
  const faults: Partial<Record<PeerFault, number>> = {};
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const fault = o.fault?.() ?? 'none';
    faults[fault] = (faults[fault] ?? 0) + 1;
    serve(socket, fault, o, messages);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: o.host,
    port,
    messages,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function serve(socket: net.Socket, fault: PeerFault, o: PeerOptions, messages: StoredMessage[]): void {
  if (fault === 'reset-at-connect') return void socket.resetAndDestroy();
  if (fault === 'silent') return;
  if (fault === 'greet-421') return void socket.end('421 4.3.2 Service shutting down, try later\r\n');
  if (fault === 'greet-554') return void socket.end('554 5.7.1 No SMTP service here\r\n');
  socket.write(`220 peer.test ESMTP ready\r\n`);
  let buffer = Buffer.alloc(0);
  let inData = false;
  let dataLines: Buffer[] = [];
  let mailFrom: string | undefined;
  let rcptTo: string[] = [];
  const reply = (line: string) => socket.writable && socket.write(`${line}\r\n`);
  const endOfData = () => {
    inData = false;
    const data = Buffer.concat(dataLines);
    dataLines = [];
    const envelope = { mailFrom: mailFrom ?? '', rcptTo };
    mailFrom = undefined;
    rcptTo = [];
    if (fault === '451-after-dot') return reply('451 4.3.0 Local problem, try again later');
    messages.push({ ...envelope, data });
    reply('250 2.0.0 Ok: stored');
    if (fault === 'reset-after-250') setImmediate(() => socket.resetAndDestroy());
  };
  const command = (line: string) => {
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === 'EHLO') return void socket.write(EHLO_REPLY('peer.test'));
    if (verb === 'HELO') return reply('250 peer.test');
    if (verb === 'MAIL') {
      mailFrom = /<([^>]*)>/.exec(line)?.[1] ?? '';
      rcptTo = [];
      return reply('250 2.1.0 Ok');
    }
    if (verb === 'RCPT') {
      if (mailFrom === undefined) return reply('503 5.5.1 MAIL first');
      const address = /<([^>]*)>/.exec(line)?.[1] ?? '';
      if (fault === 'rcpt-452') return reply('452 4.2.2 Mailbox full, try again later');
      const refusal = o.refuseRecipient?.(address);
      if (refusal) return reply(refusal);
      rcptTo.push(address);
      return reply('250 2.1.5 Ok');
    }
    if (verb === 'DATA') {
      if (rcptTo.length === 0) return reply('554 5.5.1 No valid recipients');
      inData = true;
      return reply('354 End data with <CR><LF>.<CR><LF>');
    }
    if (verb === 'RSET') {
      mailFrom = undefined;
      rcptTo = [];
      return reply('250 2.0.0 Ok');
    }
    if (verb === 'NOOP') return reply('250 2.0.0 Ok');
    if (verb === 'QUIT') return void socket.end('221 2.0.0 Bye\r\n');
    return reply('502 5.5.2 Command not recognised');
  };
  socket.on('data', (chunk: Buffer) => {
    if (inData && fault === 'reset-mid-data') return void socket.resetAndDestroy();
    buffer = Buffer.concat([buffer, chunk]);
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.subarray(0, nl + 1);
      buffer = buffer.subarray(nl + 1);
      if (!inData) {
        command(line.toString('latin1').replace(/\r?\n$/, ''));
        if (inData && fault === 'reset-mid-data' && buffer.length > 0) return void socket.resetAndDestroy();
        continue;
      }
      if (line.equals(Buffer.from('.\r\n'))) endOfData();
      else dataLines.push(line[0] === 0x2e ? line.subarray(1) : line); // RFC 5321 §4.5.2 dot unstuffing
    }
  });
}
