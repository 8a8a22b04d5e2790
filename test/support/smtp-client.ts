// A raw SMTP client for tests that need control over the bytes and their timing: smuggling
// sequences, pipelining, early talking, PROXY headers, STARTTLS with SNI, AUTH. It sends exactly
// what it is given and reads replies (multi-line aware) in order; nothing is normalised.
import net from 'node:net';
import tls from 'node:tls';

/** The initial response of AUTH PLAIN (RFC 4616): NUL, user, NUL, password, in base64. */
export const saslPlain = (user: string, pass: string): string => Buffer.from(`\0${user}\0${pass}`).toString('base64');

export interface Reply {
  code: number;
  /** The text of the last line, e.g. "5.7.1 Relay access denied". */
  text: string;
  lines: string[];
}

export class RawSmtp {
  #socket: net.Socket | tls.TLSSocket;
  #buffer = '';
  #lines: string[] = [];
  #replies: Reply[] = [];
  #waiters: ((r: Reply | Error) => void)[] = [];
  #closed = false;
  /** Everything the server sent, for assertions on what did not happen. */
  transcript = '';

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  /** Connects; `proxy` sends a PROXY v1 header first; `early` is sent before the greeting. */
  static async connect(port: number, o: { localAddress?: string; proxy?: string; early?: string; greeting?: boolean } = {}): Promise<RawSmtp> {
    const socket = net.connect({ host: '127.0.0.1', port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new RawSmtp(socket);
    if (o.proxy) socket.write(o.proxy);
    if (o.early) socket.write(o.early);
    return client;
  }

  #listen(socket: net.Socket | tls.TLSSocket): void {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(new Error('connection closed'));
    });
    socket.on('error', () => {});
  }

  #onData(chunk: Buffer): void {
    const text = chunk.toString('latin1');
    this.transcript += text;
    this.#buffer += text;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) !== -1) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      this.#lines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), text: line.slice(4), lines: this.#lines };
        this.#lines = [];
        const waiter = this.#waiters.shift();
        if (waiter) waiter(reply);
        else this.#replies.push(reply);
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The next reply (in order), within `timeoutMs`. */
  reply(timeoutMs = 5_000): Promise<Reply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        reject(new Error(`no reply within ${timeoutMs} ms; transcript:\n${this.transcript}`));
      }, timeoutMs);
      const done = (r: Reply | Error) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.#waiters.push(done);
    });
  }

  /** Writes bytes as they are (one write: one TCP segment on loopback for small writes). */
  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** Sends one command line (CRLF added) and returns its reply. */
  async cmd(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Greeting, EHLO. */
  async hello(name = 'mail.good.test'): Promise<Reply> {
    const greeting = await this.reply();
    if (greeting.code !== 220) throw new Error(`greeting: ${greeting.code} ${greeting.text}`);
    return this.cmd(`EHLO ${name}`);
  }

  /** STARTTLS, then the TLS handshake with the given SNI name; returns the server certificate's names. */
  async starttls(servername?: string): Promise<{ subject: string; altNames: string; serial: string }> {
    const r = await this.cmd('STARTTLS');
    if (r.code !== 220) throw new Error(`STARTTLS: ${r.code} ${r.text}`);
    const raw = this.#socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false, ...(servername ? { servername } : {}) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#listen(secure);
    const cert = secure.getPeerCertificate();
    return { subject: [cert.subject?.CN ?? ''].flat().join(','), altNames: cert.subjectaltname ?? '', serial: cert.serialNumber };
  }

  /** Sends a whole transaction and returns every reply (MAIL, each RCPT, DATA, end of data). */
  async transaction(from: string, to: string[], body: string | Buffer): Promise<Reply[]> {
    const out: Reply[] = [await this.cmd(`MAIL FROM:<${from}>`)];
    for (const r of to) out.push(await this.cmd(`RCPT TO:<${r}>`));
    const data = await this.cmd('DATA');
    out.push(data);
    if (data.code !== 354) return out;
    this.write(body);
    out.push(await this.reply());
    return out;
  }

  /** Drops the connection without QUIT, as a client that dies does. */
  destroy(): void {
    this.#socket.destroy();
  }

  close(): void {
    if (!this.#closed) this.#socket.end('QUIT\r\n');
    setTimeout(() => this.#socket.destroy(), 200).unref();
  }
}
