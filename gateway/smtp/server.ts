// The SMTP front line: a thin adapter that turns smtp-server's session hooks into calls to
// rules/ (decisions) and the spool and queue (effects). The 250 is sent only once the message is
// fsync'd in the spool AND its scan job is in the queue; any failure before that is a 4xx reply,
// and the client keeps responsibility for the message.
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Spool, Envelope } from '../spool/spool.ts';
import type { MetadataStore } from '../store/metadata.ts';
import type { JobQueue } from '../store/queue.ts';
import { decideRecipient, decideSender } from '../../rules/envelope.ts';
import { SmtpRefusal, formatReply, replies, type SmtpReply } from '../../rules/replies.ts';

export interface SmtpDeps {
  config: Config;
  spool: Spool;
  store: MetadataStore;
  queue: JobQueue;
  logger: Logger;
  newId: () => string;
}

export interface SmtpFront {
  /** Resolves with the bound port (useful when the config says port 0 in tests). */
  listen(): Promise<number>;
  /** Stops accepting, lets sessions finish for up to `graceMs`, then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

type Callback = (err?: Error | null, message?: string) => void;

function toError(reply: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(formatReply(reply)), { responseCode: reply.code });
}

export function createSmtpFront(deps: SmtpDeps): SmtpFront {
  const { config, logger } = deps;
  const hostedDomains = new Set(Object.keys(config.domains));
  // Free space kept in reserve (like Postfix's queue_minfree): refuse new mail with 452 4.3.1
  // while there is less than room for two messages of the largest size.
  const minFreeBytes = 2 * config.smtp.maxMessageBytes;

  const server = new SMTPServer({
    name: config.hostname,
    banner: 'mailmoat ESMTP',
    // An MX takes mail without authentication; AUTH is for the submission listener only.
    disabledCommands: ['AUTH'],
    authOptional: true,
    // STARTTLS stays hidden until real certificates are configured: smtp-server would otherwise
    // offer it with a built-in, publicly known key.
    hideSTARTTLS: true,
    size: config.smtp.maxMessageBytes,
    maxClients: config.smtp.maxClients,
    socketTimeout: config.smtp.socketTimeoutMs,
    // Reverse DNS goes through the gateway's own resolver (front-line checks), not smtp-server's.
    disableReverseLookup: true,
    logger: false,
    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      void (async () => {
        const declared = Number(address.args && (address.args as Record<string, string>).SIZE);
        const spoolHasRoom = await deps.spool.freeBytes().then(
          (free) => free >= minFreeBytes,
          () => false,
        );
        const reply = decideSender({
          declaredSize: Number.isFinite(declared) && declared > 0 ? declared : null,
          maxMessageBytes: config.smtp.maxMessageBytes,
          spoolHasRoom,
        });
        if (reply) refused(deps, session, 'mail', reply, null, address.address);
        callback(reply ? toError(reply) : null);
      })();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      const reply = decideRecipient(address.address, {
        hostedDomains,
        accepted: session.envelope.rcptTo.length,
        maxRecipients: config.smtp.maxRecipients,
      });
      if (reply) refused(deps, session, 'rcpt', reply, address.address);
      callback(reply ? toError(reply) : null);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: Callback) {
      receiveMessage(deps, stream, session).then(
        (id) => callback(null, formatReply(replies.queued(id))),
        (err: unknown) => {
          const reply = err instanceof SmtpRefusal ? err.reply : replies.spoolWriteFailed();
          if (!(err instanceof SmtpRefusal)) logger.error({ err }, 'unexpected error receiving a message');
          callback(toError(reply));
        },
      );
    },
  });
  server.on('error', (err) => logger.warn({ err }, 'smtp server error'));

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.server.once('error', reject);
        server.listen(config.smtp.listen.port, config.smtp.listen.host, () => {
          const addr = server.server.address();
          resolve(typeof addr === 'object' && addr ? addr.port : config.smtp.listen.port);
        });
      });
    },
    close(graceMs = 10_000) {
      const s = server as unknown as { options: { closeTimeout: number } };
      s.options.closeTimeout = graceMs;
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function receiveMessage(deps: SmtpDeps, stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
  const { spool, store, queue, config, logger } = deps;
  const id = deps.newId();
  const { size, oversized } = await spool.receive(id, stream, config.smtp.maxMessageBytes);
  if (oversized || stream.sizeExceeded) {
    const reply = replies.messageTooBig(config.smtp.maxMessageBytes);
    refused(deps, session, 'data', reply, null);
    throw new SmtpRefusal(reply);
  }
  const envelope: Envelope = {
    id,
    receivedAt: Date.now(),
    clientIp: session.remoteAddress,
    clientHostname: session.clientHostname && session.clientHostname !== `[${session.remoteAddress}]` ? session.clientHostname : null,
    helo: session.hostNameAppearsAs ?? '',
    mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
    rcptTo: session.envelope.rcptTo.map((r) => r.address),
    size,
    tls: Boolean(session.secure),
  };
  await spool.commit(envelope);
  try {
    store.recordReceived(envelope);
    await queue.enqueue('scan', id);
  } catch (err) {
    // Not acknowledged, so not ours: remove it, or a later reconciliation would deliver a copy
    // of a message the client is going to send again.
    logger.error({ id, err }, 'could not queue the message; refusing it with 451');
    await spool.remove(id);
    tryRecordRefusal(store, id);
    throw new SmtpRefusal(replies.queueUnavailable());
  }
  logger.info({ id, from: envelope.mailFrom, to: envelope.rcptTo, size, client: envelope.clientIp }, 'message accepted');
  return id;
}

/** Logs a refusal and records it for the message log; a store failure must not change the reply. */
function refused(deps: SmtpDeps, session: SMTPServerSession, stage: string, reply: SmtpReply, recipient: string | null, mailFrom?: string): void {
  const record = {
    at: Date.now(),
    clientIp: session.remoteAddress,
    helo: session.hostNameAppearsAs ?? '',
    mailFrom: mailFrom ?? (session.envelope.mailFrom ? session.envelope.mailFrom.address : null),
    recipient,
    stage,
    reply: `${reply.code} ${formatReply(reply)}`,
  };
  deps.logger.info(record, 'refused');
  try {
    deps.store.recordRefusal(record);
  } catch (err) {
    deps.logger.warn({ err }, 'could not record a refusal');
  }
}

function tryRecordRefusal(store: MetadataStore, id: string): void {
  try {
    store.transition(id, ['queued'], 'refused', `${replies.queueUnavailable().code} ${formatReply(replies.queueUnavailable())}`);
  } catch {
    // the store itself may be what failed; the client's retry is what matters
  }
}
