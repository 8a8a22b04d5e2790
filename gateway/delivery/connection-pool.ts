// Idle downstream connections kept for the next message to the same target (address, port, TLS
// mode, SNI name), like Postfix's connection cache: a new TCP connection, greeting, EHLO and
// STARTTLS per message costs the downstream and us more than the message itself. Only a
// connection whose transaction ended with the downstream's 250 is kept; anything that errors, the
// peer closing it, its idle time running out or its message count reaching the limit ends it.
// A kept connection is reset (RSET) before its next message (smtp-send.ts).
//
// Bounded: per target, a connection is only made when none is idle, so open connections (busy +
// idle) never exceed the busy ones the delivery slots allow (slots.ts); in all, at most `maxIdle`
// wait, the oldest going first.
import type SMTPConnection from 'nodemailer/lib/smtp-connection';

export type SmtpError = Error & { code?: string; command?: string; response?: string; responseCode?: number; recipient?: string; rejectedErrors?: SmtpError[] };

/** One connection to a downstream, with the handler of whoever uses it now. */
export class Downstream {
  /** Transactions that ended with a 250 on this connection. */
  messages = 0;
  #onError: ((err: SmtpError) => void) | undefined;
  #onEnd: (() => void) | undefined;

  readonly conn: SMTPConnection;
  readonly key: string;

  constructor(conn: SMTPConnection, key: string) {
    this.conn = conn;
    this.key = key;
    // 'on', not 'once': nodemailer may emit a second error (a reset after our QUIT), which
    // without a listener would be thrown and end the process.
    conn.on('error', (err: SmtpError) => this.#onError?.(err));
    conn.on('end', () => this.#onEnd?.());
  }

  /** Who hears of this connection's errors and of its end from now on. */
  handle(onError: ((err: SmtpError) => void) | undefined, onEnd?: () => void): void {
    this.#onError = onError;
    this.#onEnd = onEnd;
  }

  get usable(): boolean {
    return !this.conn.destroyed;
  }

  /** QUIT after a finished transaction, else just close; never throws (the socket may not even exist). */
  end(polite: boolean): void {
    this.handle(undefined);
    try {
      if (polite) this.conn.quit();
      else this.conn.close();
    } catch {
      try {
        this.conn.close();
      } catch {
        // nothing left to close
      }
    }
  }
}

export interface PoolLimits {
  /** How long a connection may wait for its next message (0: no reuse, one connection per message). */
  idleMs: number;
  /** Messages per connection, after which it is closed (QUIT). */
  maxMessages: number;
  /** Idle connections in all. */
  maxIdle: number;
}

interface Idle {
  downstream: Downstream;
  timer: NodeJS.Timeout;
}

export class ConnectionPool {
  readonly #idle: Idle[] = [];
  #closed = false;
  readonly limits: PoolLimits;

  constructor(limits: PoolLimits) {
    this.limits = limits;
  }

  get enabled(): boolean {
    return !this.#closed && this.limits.idleMs > 0 && this.limits.maxIdle > 0;
  }

  /** The most recently used idle connection to `key` that is still open, taken out of the pool. */
  take(key: string): Downstream | undefined {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const entry = this.#idle[i]!;
      if (entry.downstream.key !== key) continue;
      this.#remove(entry);
      if (entry.downstream.usable) return entry.downstream;
      entry.downstream.end(false);
    }
    return undefined;
  }

  /** A connection whose transaction ended with a 250: kept for the next message, or QUIT. */
  give(downstream: Downstream): void {
    if (!this.enabled || !downstream.usable || downstream.messages >= this.limits.maxMessages) return downstream.end(true);
    while (this.#idle.length >= this.limits.maxIdle) {
      const oldest = this.#idle[0]!;
      this.#remove(oldest);
      oldest.downstream.end(true);
    }
    const entry: Idle = {
      downstream,
      timer: setTimeout(() => {
        this.#remove(entry);
        downstream.end(true);
      }, this.limits.idleMs),
    };
    entry.timer.unref();
    // While idle, an error (a socket timeout, a reset) or the peer closing it just ends it.
    const drop = () => {
      this.#remove(entry);
      downstream.end(false);
    };
    downstream.handle(drop, drop);
    this.#idle.push(entry);
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** Ends every idle connection (QUIT); later ones are not kept. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#idle.splice(0)) {
      clearTimeout(entry.timer);
      entry.downstream.end(true);
    }
  }

  #remove(entry: Idle): void {
    clearTimeout(entry.timer);
    const at = this.#idle.indexOf(entry);
    if (at >= 0) this.#idle.splice(at, 1);
  }
}
