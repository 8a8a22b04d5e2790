// Session deadlines on a live smtp-server connection (the decisions are in rules/deadlines.ts).
//
// smtp-server has only an idle timeout, reset by every byte. We follow the conversation through
// the two places every connection passes: `send` (each reply we write: after it the client owes a
// command, after 354 it owes the message) and `_onCommand` (a complete command line is in). Both are
// methods of smtp-server 3.x's SMTPConnection, wrapped per connection; a missing one (a changed
// library) is an error at the first connection, not a silent loss of the deadlines.
import type { Socket } from 'node:net';
import {
  busy,
  commandTimeoutMs,
  creditData,
  expectCommand,
  nextDeadline,
  startData,
  startSession,
  type DeadlineKind,
  type DeadlinePolicy,
  type DeadlineState,
} from '../../rules/deadlines.ts';

/** The parts of smtp-server's SMTPConnection we use. */
export interface ConnectionInternals {
  _socket: Socket;
  session: { id: string };
  send(code: number, data?: unknown, context?: unknown): void;
  _onCommand(command: Buffer, callback?: () => void): void;
}

export class SessionDeadlines {
  readonly #policy: DeadlinePolicy;
  readonly #load: () => { open: number; max: number };
  readonly #onExpire: (kind: DeadlineKind) => void;
  readonly #now: () => number;
  #state: DeadlineState;
  #timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (it may be earlier than the deadline now due: #check looks again). */
  #armedAt: number | undefined;
  #stopped = false;

  constructor(o: { policy: DeadlinePolicy; load: () => { open: number; max: number }; onExpire: (kind: DeadlineKind) => void; now?: () => number }) {
    this.#policy = o.policy;
    this.#load = o.load;
    this.#onExpire = o.onExpire;
    this.#now = o.now ?? Date.now;
    this.#state = startSession(o.policy, this.#now());
  }

  commandExpected(): void {
    this.#set(expectCommand(this.#state, this.#now(), this.#timeout()));
  }

  dataStarted(): void {
    this.#set(startData(this.#state, this.#policy, this.#now(), this.#timeout()));
  }

  /** Message bytes arrived: only moves a deadline later, so the timer is checked lazily when it fires. */
  dataBytes(n: number): void {
    this.#state = creditData(this.#state, this.#policy, this.#now(), n, this.#timeout());
  }

  busy(): void {
    this.#set(busy(this.#state));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #timeout(): number {
    return commandTimeoutMs(this.#policy, this.#load());
  }

  #set(state: DeadlineState): void {
    this.#state = state;
    const next = nextDeadline(state);
    // One timer per session, not one per command: a deadline that moved later is found when the
    // armed timer fires (#check re-arms it); only an earlier one (or none armed) sets it now.
    if (next && (this.#armedAt === undefined || next.at < this.#armedAt)) this.#arm(next.at);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = undefined;
    if (this.#stopped) return;
    this.#armedAt = at;
    this.#timer = setTimeout(() => this.#check(), Math.max(0, at - this.#now()));
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = undefined;
    this.#armedAt = undefined;
    const next = nextDeadline(this.#state);
    if (this.#stopped || !next) return;
    if (next.at > this.#now()) return this.#arm(next.at);
    this.stop();
    this.#onExpire(next.kind);
  }
}

/**
 * Follows one connection: deadlines start with the greeting. `expire` is called once, when a
 * deadline passes while the client owes us something; it must answer 421 and close.
 */
export function watchConnection(conn: ConnectionInternals, deadlines: SessionDeadlines): void {
  if (typeof conn.send !== 'function' || typeof conn._onCommand !== 'function') {
    throw new Error('smtp-server connection internals changed: session deadlines cannot be enforced');
  }
  const send = conn.send.bind(conn);
  const onCommand = conn._onCommand.bind(conn);
  let counting: { socket: Socket; count: (chunk: Buffer) => void } | undefined;
  const stopCounting = () => {
    counting?.socket.off('data', counting.count);
    counting = undefined;
  };
  conn.send = (code, data, context) => {
    send(code, data, context);
    if (code === 421) return deadlines.stop(); // smtp-server closes the connection after any 421
    if (code === 354) {
      // The message comes on the socket of the moment (the TLS one after STARTTLS); its bytes
      // are counted there as they arrive, without taking them from smtp-server's parser.
      deadlines.dataStarted();
      const count = (chunk: Buffer) => deadlines.dataBytes(chunk.length);
      counting = { socket: conn._socket, count };
      conn._socket.on('data', count);
      const stream = (conn as unknown as { _dataStream?: NodeJS.ReadableStream })._dataStream;
      stream?.once('end', () => {
        stopCounting();
        deadlines.busy();
      });
      return;
    }
    // Intermediate AUTH replies (334) also wait for a line from the client: a command deadline.
    stopCounting();
    deadlines.commandExpected();
  };
  conn._onCommand = (command, callback) => {
    deadlines.busy();
    onCommand(command, callback);
  };
}

/** The connection smtp-server made for `socket` (the newest one: connect() has just added it). */
export function connectionOf(connections: Set<unknown>, socket: Socket): ConnectionInternals | undefined {
  let found: ConnectionInternals | undefined;
  for (const c of connections as Set<ConnectionInternals>) if (c._socket === socket) found = c;
  return found;
}
