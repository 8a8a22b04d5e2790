// The SMTP front line: a thin adapter that turns smtp-server's session hooks into calls to the
// front line (frontline.ts → rules/) and the spool and queue (effects). The 250 is sent only once
// the message is fsync'd in the spool AND its scan job is in the queue; any failure before that is
// a 4xx reply, and the client keeps responsibility for the message.
//
// Listeners: the MX ("smtp": no AUTH, every front-line check) and any number of submission
// listeners (issue 18: 587/2525 STARTTLS, 465 implicit TLS; AUTH only over TLS, relay networks,
// HELO and DNSBL checks by choice; may relay); all end in the same receiveMessage, so submitted
// mail is scanned like any other. Every refusal is recorded for the message log.
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Spool, Envelope, EnvelopeDsn } from '../spool/spool.ts';
import type { MetadataStore } from '../store/metadata.ts';
import type { JobQueue } from '../store/queue.ts';
import type { DnsResolver } from '../../core/dns.ts';
import { smtpMetrics } from '../metrics.ts';
import { decideSender } from '../../rules/envelope.ts';
import { SmtpRefusal, formatReply, replies, type SmtpReply } from '../../rules/replies.ts';
import { BodyGuard } from './body-guard.ts';
import { Frontline, type ListenerKind } from './frontline.ts';
import type { SubmissionAuth } from './auth.ts';
import type { RecipientProber } from './probe.ts';
import { createTlsStore, type CertificateSet, type TlsStore } from './tls.ts';
import { onReload, snapshot } from '../config/live.ts';
import { isDeepStrictEqual } from 'node:util';
import { WireTap } from './wiretap.ts';
import { installImmediateGreeting } from './greeting.ts';
import { connectionOf } from './deadlines.ts';
import { openLedger, type Ledger } from '../ledger/ledger.ts';
import type { StatsCounter } from '../stats.ts';
import { hookFailed, noteLibraryRefusal, refused, toError, watchDeadlines, type Callback } from './refusals.ts';
import type { InlineVerdictGate } from './ports.ts';
import type { SubmissionListener } from '../config/submission.ts';
import type { SubmissionUser } from '../../rules/frontline.ts';
import { captureHead } from './from-header.ts';
import { decideFromHeader } from '../../rules/from-header.ts';
import type { OutboundLimits } from './outbound-limits.ts';

export interface SmtpDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  queue: JobQueue;
  logger: Logger;
  newId: () => string;
  /** The gateway's one DNS resolver: every front-line lookup (and SPF) goes through it. */
  resolver: DnsResolver;
  /** AUTH for the submission listener (required when config.submission.enabled). */
  auth?: SubmissionAuth;
  /** Recipient verification probes (default: real SMTP probes to the downstream). */
  prober?: RecipientProber;
  /** Issue 5, inline verdicts: absent, every stored message is accepted without waiting for its scan. */
  inlineVerdict?: InlineVerdictGate;
  /** Issue 18: sending limits and the AUTH lockout across nodes (Redis). */
  limits?: OutboundLimits;
  /** The numbers over time (gateway/stats.ts): accepted and refused mail per domain. */
  stats?: StatsCounter;
}

export interface SmtpFront {
  /** Starts the listeners; resolves with the MX port (useful when the config says port 0 in tests). */
  listen(): Promise<number>;
  /** Bound ports, once listening: the MX, the first submission listener, and every submission listener by name. */
  readonly ports: { smtp: number; submission?: number; listeners: Record<string, number> };
  /** Re-reads the TLS certificate files now (also done by an mtime poll); false when nothing changed. */
  reloadTls(): boolean;
  /** Stops accepting, lets sessions finish for up to `graceMs`, then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

/**
 * What a session runs with from its connection to its end. A config reload makes a new generation
 * for the sessions that connect later; the sessions in flight finish with theirs.
 */
interface Generation {
  config: Config;
  frontline: Frontline;
  deps: SmtpDeps;
  /** Opened once per generation, not per message (it is a bundle of closures over the same ports). */
  ledger: Ledger;
}

interface Generations {
  /** Binds a new connection (by its session id) to the current generation. */
  bind(sessionId: string): Generation;
  of(session: SMTPServerSession): Generation;
  release(sessionId: string): void;
}

function generation(deps: SmtpDeps, config: Config, previous?: Generation): Generation {
  const frontline = new Frontline({
    config,
    logger: deps.logger,
    resolver: deps.resolver,
    ...(deps.limits ? { limits: deps.limits } : {}),
    ...(deps.prober ? { prober: deps.prober } : {}),
    ...(previous ? { previous: previous.frontline } : {}),
  });
  const { store, spool, queue, logger } = deps;
  return { config, frontline, deps: { ...deps, config }, ledger: openLedger({ store, spool, queue, logger }) };
}

/** The smtp-server options that follow the config; a reload sets them for the connections that come next. */
function listenerOptions(config: Config): Partial<SMTPServerOptions> {
  return {
    name: config.hostname,
    size: config.smtp.maxMessageBytes,
    maxClients: config.smtp.maxClients,
    socketTimeout: config.smtp.socketTimeoutMs,
    maxCommandLength: config.smtp.maxCommandLength,
    // PROXY v1 only from the configured balancers: every check then sees the real client address.
    useProxy: config.proxy.from.length > 0 ? config.proxy.from : false,
  };
}

export function createSmtpFront(deps: SmtpDeps): SmtpFront {
  installImmediateGreeting();
  const { logger } = deps;
  const config = snapshot(deps.config);
  let current = generation(deps, config);
  const bound = new Map<string, Generation>();
  const gens: Generations = {
    bind: (id) => (bound.set(id, current), current),
    of: (session) => bound.get(session.id) ?? current,
    release: (id) => bound.delete(id),
  };
  let tlsConfig = config.tls;
  let tlsStore = tlsConfig.certificates.length > 0 ? createTlsStore(tlsConfig) : undefined;
  const state: ListenerState = { closing: false };
  const listen = (kind: ListenerKind, spec?: SubmissionListener) => createListener(deps.logger, gens, kind, () => tlsStore, state, config, spec);
  const servers: { kind: ListenerKind; name?: string; server: SMTPServer; host: string; port: number }[] = [
    { kind: 'smtp', server: listen('smtp'), ...config.smtp.listen },
  ];
  for (const spec of config.submission.listeners) {
    if (!deps.auth && spec.auth === 'required') throw new Error(`the submission listener ${spec.name} needs an authenticator`);
    servers.push({ kind: 'submission', name: spec.name, server: listen('submission', spec), host: spec.host, port: spec.port });
  }
  const applyCertificates = (set: CertificateSet) => {
    for (const { server } of servers) server.updateSecureContext({ key: set.key, cert: set.cert, minVersion: tlsConfig.minVersion });
    smtpMetrics.tlsReloads.inc({ outcome: 'ok' });
    logger.info({ names: [...set.byName.keys()] }, 'TLS certificates reloaded');
  };
  tlsStore?.onReload(applyCertificates);
  const onTlsError = (err: unknown) => {
    smtpMetrics.tlsReloads.inc({ outcome: 'error' });
    logger.error({ err }, 'TLS certificates could not be reloaded; the previous ones stay in use');
  };
  const reloadTls = (): boolean => {
    if (!tlsStore) return false;
    try {
      return tlsStore.reload({ force: true });
    } catch (err) {
      onTlsError(err);
      return false;
    }
  };
  // A new config (SIGHUP, `mailmoat reload`): new sessions get a new generation and listener
  // options; the certificate files are read again (new files: a new store). Whether STARTTLS is
  // offered at all is fixed at start (gateway/config/reload.ts keeps tls then).
  const stopReloads = onReload(deps.config, (next) => {
    try {
      current = generation(deps, next, current);
      for (const { server } of servers) Object.assign((server as unknown as { options: SMTPServerOptions }).options, listenerOptions(next));
      if (tlsStore && !isDeepStrictEqual(next.tls, tlsConfig)) {
        const store = createTlsStore(next.tls);
        stopWatching();
        tlsStore = store;
        tlsConfig = next.tls;
        store.onReload(applyCertificates);
        applyCertificates(store.current);
        stopWatching = store.watch(onTlsError);
      } else {
        reloadTls();
      }
    } catch (err) {
      logger.error({ err }, 'the SMTP front could not take the new config; new sessions keep the previous one');
    }
  });
  let stopWatching = () => {};
  const ports: SmtpFront['ports'] = { smtp: config.smtp.listen.port, listeners: {} };

  return {
    ports,
    async listen() {
      for (const s of servers) {
        const port = await new Promise<number>((resolve, reject) => {
          s.server.server.once('error', reject);
          s.server.listen(s.port, s.host, () => {
            const addr = s.server.server.address();
            resolve(typeof addr === 'object' && addr ? addr.port : s.port);
          });
        });
        if (s.kind === 'smtp') ports.smtp = port;
        else {
          ports.listeners[s.name!] = port;
          ports.submission ??= port;
        }
      }
      if (tlsStore) stopWatching = tlsStore.watch(onTlsError);
      return ports.smtp;
    },
    reloadTls,
    async close(graceMs = 10_000) {
      stopReloads();
      stopWatching();
      // Graceful: new connections and new transactions get 421 while the transactions in flight
      // finish, up to the deadline; then the rest is closed (smtp-server sends them a 421 too).
      state.closing = true;
      const deadline = Date.now() + graceMs;
      const open = () => servers.reduce((n, { server }) => n + (server as unknown as { connections: Set<unknown> }).connections.size, 0);
      while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await Promise.all(
        servers.map(({ server }) => {
          const s = server as unknown as { options: { closeTimeout: number } };
          s.options.closeTimeout = 1_000;
          return new Promise<void>((resolve) => server.close(() => resolve()));
        }),
      );
    },
  };
}

/** Shared by the listeners of one front: set when the gateway is shutting down. */
interface ListenerState {
  closing: boolean;
}

function createListener(
  logger: Logger,
  gens: Generations,
  kind: ListenerKind,
  tls: () => TlsStore | undefined,
  state: ListenerState,
  initial: Config,
  spec?: SubmissionListener,
): SMTPServer {
  const first = tls();
  const submission = kind === 'submission';
  // AUTH only where the listener takes it, and (below) only once the session is encrypted.
  const takesAuth = submission && spec?.auth !== 'off';
  const implicitTls = spec?.tls === 'implicit';
  const tlsOptions: Partial<SMTPServerOptions> = first
    ? {
        key: first.current.key,
        cert: first.current.cert,
        minVersion: initial.tls.minVersion,
        SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, tls()?.contextFor(name)),
      }
    : {};
  const reply = (cb: Callback, r: SmtpReply | null) => cb(r ? toError(r) : null);
  const server: SMTPServer = new SMTPServer({
    // smtp-server writes "<hostname> ESMTP" itself; the banner is only what follows it.
    banner: 'mailmoat',
    // An MX takes mail without authentication; AUTH is for the submission listeners only. Whether
    // a transaction needs it (or a relay network) is decided at MAIL (rules/submission-access.ts).
    disabledCommands: takesAuth ? [] : ['AUTH'],
    authOptional: true,
    // RFC 8314: port 465 speaks TLS from the first byte.
    secure: implicitTls,
    authMethods: ['PLAIN', 'LOGIN'],
    authRequiredMessage: formatReply(replies.authRequired()),
    // STARTTLS stays hidden until real certificates are configured: smtp-server would otherwise
    // offer it with a built-in, publicly known key.
    hideSTARTTLS: !first,
    ...tlsOptions,
    // DSN (RFC 3461): RET/ENVID and each recipient's NOTIFY/ORCPT are kept with the message,
    // passed on downstream and honoured in our own bounces.
    hideDSN: false,
    ...listenerOptions(initial),
    // Reverse DNS goes through the gateway's own resolver (front-line checks), not smtp-server's.
    disableReverseLookup: true,
    logger: false,
    onConnect(session: SMTPServerSession, callback: Callback) {
      if (state.closing) return reply(callback, replies.shuttingDown());
      const { deps, frontline } = gens.of(session);
      // Submission: AUTH is neither offered nor accepted before STARTTLS (Postfix smtpd_tls_auth_only).
      if (submission && !session.secure) session.disabledCommands = ['AUTH'];
      frontline.connect(session, kind, spec).then(
        async (r) => {
          smtpMetrics.connections.inc({ listener: kind, outcome: r ? 'refused' : 'accepted' });
          if (r) await refused(deps, session, 'connect', r, null);
          reply(callback, r);
        },
        (err: unknown) => hookFailed(deps, callback, err, 'connect'),
      );
    },
    onSecure(socket: Socket, session: SMTPServerSession, callback: Callback) {
      // The TLS session is a new byte stream: it gets a fresh wire tap (attached synchronously,
      // before smtp-server pipes the TLS socket into its parser, so no read is missed by either).
      const tap = new WireTap();
      socket.on('data', (chunk: Buffer) => tap.observe(chunk));
      gens.of(session).frontline.attachTap(session.id, tap);
      if (takesAuth) session.disabledCommands = [];
      callback();
    },
    onAuth(
      auth: SMTPServerAuthentication,
      session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: { user?: unknown; message?: string; responseCode?: number }) => void,
    ) {
      const { deps, frontline } = gens.of(session);
      const failed = async () => {
        const r = frontline.authFailed(session)!;
        await refused(deps, session, 'auth', r, null);
        return r.code === 421 ? callback(toError(r)) : callback(null, { message: formatReply(r), responseCode: r.code });
      };
      if (!takesAuth || !deps.auth || !session.secure || (auth.method !== 'PLAIN' && auth.method !== 'LOGIN')) return void failed();
      const username = auth.username ?? '';
      const ip = session.remoteAddress;
      const { limits } = deps;
      const authAuth = deps.auth;
      void (async () => {
        // A locked username or address is refused before its password is even looked at: the
        // right password guessed during a lockout must not get in either.
        const locked = await limits?.authLocked(ip, username);
        if (locked) {
          await refused(deps, session, 'auth', locked, null);
          return callback(toError(locked));
        }
        const user = await authAuth.authenticate(username, auth.password ?? '', { ip, secured: true });
        if (user) {
          await limits?.authSucceeded(ip, username);
          return callback(null, { user });
        }
        await limits?.authFailed(ip, username);
        await failed();
      })().catch((err: unknown) => {
        logger.error({ err }, 'authentication backend failed');
        callback(toError({ code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' }));
      });
    },
    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      if (state.closing) return reply(callback, replies.shuttingDown());
      const { deps, frontline, config } = gens.of(session);
      void (async () => {
        const checked = await frontline.mail(address, session);
        if (checked) {
          await refused(deps, session, 'mail', checked, null, address.address);
          return reply(callback, checked);
        }
        const declared = Number(address.args && (address.args as Record<string, string>).SIZE);
        // Free space kept in reserve (like Postfix's queue_minfree): refuse new mail with 452 4.3.1
        // while there is less than room for two messages of the largest size.
        const spoolHasRoom = await deps.spool.freeBytes().then(
          (free) => free >= 2 * config.smtp.maxMessageBytes,
          () => false,
        );
        const r = decideSender({
          declaredSize: Number.isFinite(declared) && declared > 0 ? declared : null,
          maxMessageBytes: config.smtp.maxMessageBytes,
          spoolHasRoom,
        });
        if (r) await refused(deps, session, 'mail', r, null, address.address);
        reply(callback, r);
      })().catch((err: unknown) => hookFailed(deps, callback, err, 'mail'));
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      const { deps, frontline } = gens.of(session);
      frontline.rcpt(address, session).then(
        async (r) => {
          if (r) await refused(deps, session, 'rcpt', r, address.address);
          reply(callback, r);
        },
        (err: unknown) => hookFailed(deps, callback, err, 'rcpt'),
      );
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: Callback) {
      const g = gens.of(session);
      const { deps } = g;
      receiveMessage(g, stream, session).then(
        (id) => {
          smtpMetrics.accepted.inc({ listener: kind });
          deps.stats?.count(
            'received',
            session.envelope.rcptTo.map((r) => r.address),
          );
          callback(null, formatReply(replies.queued(id)));
        },
        (err: unknown) => {
          const r = err instanceof SmtpRefusal ? err.reply : replies.spoolWriteFailed();
          if (!(err instanceof SmtpRefusal)) logger.error({ err }, 'unexpected error receiving a message');
          callback(toError(r));
        },
      );
    },
    onClose(session: SMTPServerSession) {
      const { deps, frontline } = gens.of(session);
      noteLibraryRefusal(deps, session);
      frontline.close(session);
      gens.release(session.id);
    },
  });
  // Taps see what the parser sees. connect() is where smtp-server pipes a socket into its parser;
  // the tap's 'data' listener is added right after, so neither misses a read (see wiretap.ts).
  // The connection is bound to the config generation of this moment, before any of its hooks run.
  const connect = server.connect.bind(server);
  server.connect = (socket, socketOptions) => {
    const id = (socketOptions as { id?: string } | null | undefined)?.id;
    const g = id ? gens.bind(id) : undefined;
    connect(socket, socketOptions);
    if (!id || !g) return;
    const tap = new WireTap();
    socket.on('data', (chunk: Buffer) => tap.observe(chunk));
    g.frontline.attachTap(id, tap);
    const conn = connectionOf(server.connections, socket);
    if (conn) watchDeadlines(g.deps, server, conn);
    else gens.release(id); // refused at once (smtp.maxClients): no hook will run
  };
  server.on('error', (err) => logger.warn({ err }, 'smtp server error'));
  return server;
}

async function receiveMessage(g: Generation, stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
  const { deps, frontline, ledger } = g;
  const { spool, config, logger } = deps;
  const id = deps.newId();
  // Before the first await: a client that drops mid-DATA makes smtp-server destroy this stream at
  // any moment, with an error only if someone listens; unheard, it would escape the session.
  let dropped: Error | undefined;
  let body: BodyGuard | undefined;
  stream.once('error', (err) => {
    dropped = err;
    body?.destroy(err);
  });
  // Our trace headers go on top; bare CR/LF are counted (or normalised) on the way to disk.
  body = new BodyGuard({ prefix: await frontline.dataHeaders(session), normalize: frontline.normalizes(session), stripNul: frontline.stripsNul() });
  const submitted = frontline.submitted(session);
  const head = submitted?.user && config.submission.senders.checkFromHeader ? captureHead(stream) : undefined;
  if (dropped || stream.destroyed) throw Object.assign(new SmtpRefusal(replies.spoolWriteFailed()), { cause: dropped });
  // The spool's pipeline listens on the body only once its file is open; a drop before that must
  // not escape as an 'error' event. The pipeline still fails with it (the stream stays errored).
  body.on('error', () => {});
  const { size, oversized } = await spool.receive(id, stream.pipe(body), config.smtp.maxMessageBytes + body.prefixBytes).finally(() => {
    // If the spool gave up early, the rest of DATA must still be read, or the session stalls.
    if (!stream.readableEnded) {
      stream.unpipe(body);
      stream.resume();
    }
  });
  if (oversized || stream.sizeExceeded) {
    const reply = replies.messageTooBig(config.smtp.maxMessageBytes);
    await refused(deps, session, 'data', reply, null);
    throw new SmtpRefusal(reply);
  }
  const rejected = frontline.afterData(session, body.report);
  if (rejected) {
    await spool.discardIncoming(id);
    await refused(deps, session, 'data', rejected, null);
    throw new SmtpRefusal(rejected);
  }
  const from = head ? decideFromHeader(head.head(), session.user as SubmissionUser, config.submission.senders) : undefined;
  if (from && from.action === 'reject') {
    await spool.discardIncoming(id);
    await refused(deps, session, 'data', from.reply, null);
    throw new SmtpRefusal(from.reply);
  }
  const envelope: Envelope = {
    id,
    receivedAt: Date.now(),
    clientIp: session.remoteAddress,
    clientHostname: (await frontline.verifiedHostname(session)) ?? null,
    helo: session.hostNameAppearsAs ?? '',
    mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
    rcptTo: session.envelope.rcptTo.map((r) => r.address),
    size,
    tls: Boolean(session.secure),
    dsn: dsnParameters(session),
  };
  // Issue 8: a spam report is spooled like any message, but the worker learns from it instead of delivering it.
  const report = frontline.reportOf(session);
  if (report) envelope.report = report;
  if (submitted) envelope.submitted = submitted;
  try {
    await spool.commit(envelope);
  } catch (err) {
    throw notStored(deps, id, spool.shared ? 'database' : 'spool', err);
  }
  let failing: 'database' | 'queue' = 'database';
  try {
    await ledger.accept(envelope, () => (failing = 'queue'));
  } catch (err) {
    await ledger.abandonAccept(id, `${replies.queueUnavailable().code} ${formatReply(replies.queueUnavailable())}`);
    throw notStored(deps, id, failing, Object.assign(new SmtpRefusal(replies.queueUnavailable()), { cause: err }));
  }
  // Issue 5, inline verdicts: may wait (bounded) for the scan and throw the refusal it ends in.
  if (!report) await deps.inlineVerdict?.(config, envelope);
  if (logger.isLevelEnabled('info')) {
    logger.info({ id, from: envelope.mailFrom, to: envelope.rcptTo, size, client: envelope.clientIp, user: sessionUser(session) }, 'message accepted');
  }
  return id;
}

/**
 * A message that could not be stored gets a 4xx, and the operator a log line and a count that name
 * the store that failed (whichever it is: the spool's disk, the database, Redis).
 */
function notStored(deps: SmtpDeps, id: string, store: 'spool' | 'database' | 'queue', err: unknown): SmtpRefusal {
  const refusal = err instanceof SmtpRefusal ? err : new SmtpRefusal(replies.spoolWriteFailed());
  const reply = `${refusal.reply.code} ${formatReply(refusal.reply)}`;
  smtpMetrics.storeFailures.inc({ store });
  smtpMetrics.refusals.inc({ stage: 'data', code: String(refusal.reply.code) });
  deps.logger.error(
    { id, store, err: err instanceof SmtpRefusal ? (err.cause ?? err) : err, reply },
    `could not store the message (${store}); refused with ${refusal.reply.code}`,
  );
  return refusal;
}

const sessionUser = (session: SMTPServerSession): string | undefined => (session.user as { username?: string } | undefined)?.username;

/** The DSN parameters of a transaction, or undefined when the client gave none. */
function dsnParameters(session: SMTPServerSession): EnvelopeDsn | undefined {
  const { dsn } = session.envelope as { dsn?: { ret: string | null; envid: string | null } };
  const recipients: NonNullable<EnvelopeDsn['recipients']> = {};
  for (const r of session.envelope.rcptTo) {
    if (r.dsn && (r.dsn.notify?.length || r.dsn.orcpt)) recipients[r.address] = { notify: r.dsn.notify, orcpt: r.dsn.orcpt };
  }
  if (!dsn?.ret && !dsn?.envid && Object.keys(recipients).length === 0) return undefined;
  return { ret: dsn?.ret ?? undefined, envid: dsn?.envid ?? undefined, recipients };
}
