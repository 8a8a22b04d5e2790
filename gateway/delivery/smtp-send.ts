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

export interface RecipientResult {
  recipient: string;
  outcome: DeliveryOutcome;
  reply: string;
}

type SmtpError = Error & { code?: string; command?: string; response?: string; responseCode?: number; recipient?: string; rejectedErrors?: SmtpError[] };

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
 * and `verified` it defers.
 */
export async function sendToTarget(config: Config, t: Target, envelope: Envelope, message: string, recipients: string[]): Promise<RecipientResult[]> {
  const first = await transaction(config, t, envelope, message, recipients, false);
  if (t.tls === 'opportunistic' && first.tlsFailed) return (await transaction(config, t, envelope, message, recipients, true)).results;
  return first.results;
}

function transaction(config: Config, t: Target, envelope: Envelope, message: string, recipients: string[], plaintext: boolean): Promise<{ results: RecipientResult[]; tlsFailed: boolean }> {
  const where = describeTarget(t);
  const all = (outcome: DeliveryOutcome, reply: string) => recipients.map((recipient) => ({ recipient, outcome, reply }));
  const rcptDsn = envelope.dsn?.recipients?.[recipients[0]!];
  return new Promise((resolve) => {
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
    let done = false;
    let tlsFailed = false;
    const finish = (results: RecipientResult[], polite: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      closeQuietly(conn, polite);
      resolve({ results, tlsFailed });
    };
    const deadline = setTimeout(() => {
      finish(all('deferred', `${where}: 4.4.2 no answer within ${config.delivery.transactionTimeoutMs} ms (transaction deadline)`), false);
    }, config.delivery.transactionTimeoutMs);
    // 'on', not 'once': nodemailer may emit a second error (a reset after our QUIT), which
    // without a listener would be thrown and end the process.
    conn.on('error', (err: SmtpError) => {
      // A broken handshake surfaces as a socket error while nodemailer is upgrading.
      if (err.code === 'ETLS' || err.command === 'STARTTLS' || (conn as unknown as { upgrading?: boolean }).upgrading) tlsFailed = true;
      const tls = tlsFailed ? ' (STARTTLS failed)' : '';
      finish(all(tlsFailed ? 'deferred' : outcomeOf(err.responseCode), `${where}: ${describe(err)}${tls}`), false);
    });
    try {
      conn.connect(() => {
        if (done) return;
        const dsn = envelope.dsn ? { ret: envelope.dsn.ret, envid: envelope.dsn.envid, notify: rcptDsn?.notify, orcpt: rcptDsn?.orcpt } : undefined;
        const smtpEnvelope = { from: envelope.mailFrom === '' ? (false as const) : envelope.mailFrom, to: recipients, dsn };
        const body = createReadStream(message);
        body.on('error', () => undefined); // nodemailer reports a read error through send's callback
        conn.send(smtpEnvelope, body, (err, info) => {
          const e = err as SmtpError | null;
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
      });
    } catch (err) {
      finish(all('deferred', `${where}: ${describe(err as SmtpError)}`), false);
    }
  });
}

/** QUIT after a finished transaction, else just close; never throws (the socket may not even exist). */
function closeQuietly(conn: SMTPConnection, polite: boolean): void {
  try {
    if (polite) conn.quit();
    else conn.close();
  } catch {
    try {
      conn.close();
    } catch {
      // nothing left to close
    }
  }
}

/** A reply code of 5xx fails the recipient; 4xx, no reply at all (network) or anything else defers it. */
function outcomeOf(responseCode: number | undefined): DeliveryOutcome {
  return responseCode !== undefined && responseCode >= 500 ? 'failed' : 'deferred';
}

/** The peer's reply, or our error, on one line (OpenSSL errors span lines). */
function describe(err: SmtpError): string {
  return (err.response ?? err.message).replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
