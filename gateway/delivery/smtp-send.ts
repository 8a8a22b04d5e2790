// One SMTP transaction with one next-hop address (nodemailer's SMTPConnection), ending in an
// outcome for every recipient whatever the peer does: no greeting, resets, a reply a byte at a
// time, a broken TLS handshake. Every nodemailer callback is guarded and the connection is closed
// exactly once; the promise always settles (the transaction deadline sees to that).
import { createReadStream } from 'node:fs';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Config } from '../config/schema.ts';
import type { Envelope } from '../spool/spool.ts';
import type { DeliveryOutcome } from '../store/metadata.ts';
import { describeTarget, type Target } from './transport.ts';
import { Downstream, type ConnectionPool, type SmtpError } from './connection-pool.ts';

export interface RecipientResult {
  recipient: string;
  outcome: DeliveryOutcome;
  reply: string;
}

function tlsOptions(t: Target, plaintextFallback: boolean) {
  // SNI and the certificate check use the host's name, the connection its address.
  const servername = t.host === t.address ? undefined : t.host;
  switch (plaintextFallback ? 'none' : t.tls) {
    case 'none':
      return { ignoreTLS: true };
    case 'opportunistic':
      // Downstream servers are often the hosted domains' own, with internal certificates.
      return { opportunisticTLS: true, servername, tls: { rejectUnauthorized: false, servername } };
    case 'required':
      return { requireTLS: true, servername, tls: { rejectUnauthorized: false, servername } };
    default:
      return { requireTLS: true, servername, tls: { rejectUnauthorized: true, servername } };
  }
}

/**
 * Sends to one address. Under `tls: opportunistic` a failed STARTTLS handshake is followed by one
 * plaintext attempt on a new connection, as Postfix does at security level "may"; under `required`
 * and `verified` it defers. With a pool, an idle connection to the same target is reused (RSET
 * first); when it fails before the downstream accepted MAIL FROM (typically: the peer had closed
 * it), nothing of the message was sent, so it is tried once more on a new connection.
 */
export async function sendToTarget(
  config: Config,
  t: Target,
  envelope: Envelope,
  message: string | Buffer,
  recipients: string[],
  pool?: ConnectionPool,
): Promise<RecipientResult[]> {
  const first = await attempt(config, t, envelope, message, recipients, false, pool);
  if (t.tls === 'opportunistic' && first.tlsFailed) return (await attempt(config, t, envelope, message, recipients, true, pool)).results;
  return first.results;
}

type Attempt = { results: RecipientResult[]; tlsFailed: boolean; beforeMail: boolean };

async function attempt(
  config: Config,
  t: Target,
  envelope: Envelope,
  message: string | Buffer,
  recipients: string[],
  plaintext: boolean,
  pool: ConnectionPool | undefined,
): Promise<Attempt> {
  const key = poolKey(t, plaintext);
  const idle = pool?.enabled ? pool.take(key) : undefined;
  if (idle) {
    const reused = await transaction(config, t, envelope, message, recipients, { key, plaintext, pool, reuse: idle });
    if (!reused.beforeMail) return reused;
  }
  return transaction(config, t, envelope, message, recipients, { key, plaintext, pool });
}

/** What a kept connection must match: the address and port, and how TLS was (not) set up on it. */
function poolKey(t: Target, plaintext: boolean): string {
  return `${t.address}|${t.port}|${plaintext ? 'none' : t.tls}|${t.host.toLowerCase()}`;
}

function connect(config: Config, t: Target, key: string, plaintext: boolean): Downstream {
  const conn = new SMTPConnection({
    host: t.address,
    port: t.port,
    name: config.hostname,
    connectionTimeout: config.delivery.connectTimeoutMs,
    greetingTimeout: config.delivery.connectTimeoutMs,
    socketTimeout: config.delivery.socketTimeoutMs,
    allowInternalNetworkInterfaces: true,
    ...tlsOptions(t, plaintext),
  });
  return new Downstream(conn, key);
}

function transaction(
  config: Config,
  t: Target,
  envelope: Envelope,
  message: string | Buffer,
  recipients: string[],
  o: { key: string; plaintext: boolean; pool: ConnectionPool | undefined; reuse?: Downstream },
): Promise<Attempt> {
  const where = describeTarget(t);
  const all = (outcome: DeliveryOutcome, reply: string) => recipients.map((recipient) => ({ recipient, outcome, reply }));
  const rcptDsn = envelope.dsn?.recipients?.[recipients[0]!];
  return new Promise((resolve) => {
    let downstream: Downstream | undefined;
    let done = false;
    let tlsFailed = false;
    // Only for a reused connection: set while nothing of this message has been accepted by the peer.
    let beforeMail = false;
    const finish = (results: RecipientResult[], ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (downstream) {
        downstream.handle(undefined);
        if (ok && o.pool) o.pool.give(downstream);
        else downstream.end(ok);
      }
      resolve({ results, tlsFailed, beforeMail });
    };
    const deadline = setTimeout(() => {
      finish(all('deferred', `${where}: 4.4.2 no answer within ${config.delivery.transactionTimeoutMs} ms (transaction deadline)`), false);
    }, config.delivery.transactionTimeoutMs);
    const onError = (err: SmtpError) => {
      const conn = downstream!.conn;
      // A broken handshake surfaces as a socket error while nodemailer is upgrading.
      if (err.code === 'ETLS' || err.command === 'STARTTLS' || (conn as unknown as { upgrading?: boolean }).upgrading) tlsFailed = true;
      if (o.reuse && notAccepted(conn, err)) beforeMail = true;
      const tls = tlsFailed ? ' (STARTTLS failed)' : '';
      finish(all(tlsFailed ? 'deferred' : outcomeOf(err.responseCode), `${where}: ${describe(err)}${tls}`), false);
    };
    const send = () => {
      const conn = downstream!.conn;
      const dsn = envelope.dsn ? { ret: envelope.dsn.ret, envid: envelope.dsn.envid, notify: rcptDsn?.notify, orcpt: rcptDsn?.orcpt } : undefined;
      const smtpEnvelope = { from: envelope.mailFrom === '' ? (false as const) : envelope.mailFrom, to: recipients, dsn };
      // The copy's bytes, or its file streamed (nodemailer reports a read error through send's callback).
      const body = typeof message === 'string' ? createReadStream(message).on('error', () => undefined) : message;
      conn.send(smtpEnvelope, body, (err, info) => {
        const e = err as SmtpError | null;
        if (e && o.reuse && notAccepted(conn, e)) beforeMail = true;
        if (!e) downstream!.messages++;
        const rejections = (e ? e.rejectedErrors : (info?.rejectedErrors as SmtpError[] | undefined)) ?? [];
        const rejected = new Map(rejections.map((r) => [r.recipient ?? '', r]));
        finish(
          recipients.map((recipient) => {
            const r = rejected.get(recipient) ?? e;
            if (r) return { recipient, outcome: outcomeOf(r.responseCode), reply: `${where}: ${describe(r)}` };
            return { recipient, outcome: 'delivered', reply: `${where}: ${info.response}` };
          }),
          !e,
        );
      });
    };
    try {
      if (o.reuse) {
        downstream = o.reuse;
        downstream.handle(onError, () => finish(all('deferred', `${where}: the connection closed`), false));
        beforeMail = true; // until the RSET is answered, the peer has accepted nothing of this message
        downstream.conn.reset((err) => {
          if (done) return;
          if (err) return onError(err as SmtpError);
          beforeMail = false;
          // Replies from here on are this message's: none yet (see notAccepted).
          downstream!.conn.lastServerResponse = false;
          send();
        });
      } else {
        downstream = connect(config, t, o.key, o.plaintext);
        downstream.handle(onError);
        downstream.conn.connect(() => {
          if (!done) send();
        });
      }
    } catch (err) {
      finish(all('deferred', `${where}: ${describe(err as SmtpError)}`), false);
    }
  });
}

/**
 * A failure on a reused connection before the peer accepted MAIL FROM: no reply at all since the
 * RSET (the peer had closed it, or closed it when MAIL came), or a 421 to MAIL (the peer ending
 * the session). Either way no part of the message reached it, so a new connection cannot double it.
 */
function notAccepted(conn: SMTPConnection, err: SmtpError): boolean {
  return conn.lastServerResponse === false || (err.command === 'MAIL FROM' && err.responseCode === 421);
}

/** A reply code of 5xx fails the recipient; 4xx, no reply at all (network) or anything else defers it. */
function outcomeOf(responseCode: number | undefined): DeliveryOutcome {
  return responseCode !== undefined && responseCode >= 500 ? 'failed' : 'deferred';
}

/** The peer's reply, or our error, on one line (OpenSSL errors span lines). */
function describe(err: SmtpError): string {
  return (err.response ?? err.message).replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
