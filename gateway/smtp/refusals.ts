// Refusals of the SMTP front as the client, the log, the metrics and the message log see them, and
// the session deadlines that end in one (rules/deadlines.ts, ./deadlines.ts).
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { MetadataStore } from '../store/metadata.ts';
import type { StatsCounter } from '../stats.ts';
import { smtpMetrics } from '../metrics.ts';
import { formatReply, replies, type SmtpReply } from '../../rules/replies.ts';
import { SessionDeadlines, watchConnection, type ConnectionInternals } from './deadlines.ts';

export interface RefusalDeps {
  store: MetadataStore;
  logger: Logger;
  stats?: StatsCounter;
}

export type Callback = (err?: Error | null, message?: string) => void;

/** Reply text goes out as US-ASCII (RFC 5321 §4.2): a "§" from a rule's reason is spelled out. */
export const wireText = (reply: SmtpReply): string => formatReply(reply).replace(/§/g, 'section ');

export function toError(reply: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(wireText(reply)), { responseCode: reply.code });
}

/** Logs a refusal, counts it and records it for the message log; a store failure must not change the reply. */
export function refused(
  deps: RefusalDeps,
  session: SMTPServerSession,
  stage: string,
  reply: SmtpReply,
  recipient: string | null,
  mailFrom?: string,
): Promise<void> {
  smtpMetrics.refusals.inc({ stage, code: String(reply.code) });
  return record(deps, session, stage, `${reply.code} ${wireText(reply)}`, recipient, mailFrom);
}

/** Never rejects: a refusal that cannot be recorded is logged, and the reply goes out as it would have. */
export async function record(
  deps: RefusalDeps,
  session: SMTPServerSession,
  stage: string,
  reply: string,
  recipient: string | null,
  mailFrom?: string,
): Promise<void> {
  const entry = {
    at: Date.now(),
    clientIp: session.remoteAddress,
    helo: session.hostNameAppearsAs || '',
    mailFrom: mailFrom ?? (session.envelope?.mailFrom ? session.envelope.mailFrom.address : null),
    recipient,
    stage,
    reply,
  };
  deps.logger.info(entry, 'refused');
  // Counted for the recipient's domain; a refusal at DATA for the transaction's recipients.
  deps.stats?.count('refused', recipient ? [recipient] : stage === 'data' ? (session.envelope?.rcptTo ?? []).map((r) => r.address) : []);
  try {
    await deps.store.recordRefusal(entry);
  } catch (err) {
    deps.logger.warn({ err }, 'could not record a refusal');
  }
}

/** smtp-server's own refusals (their reply text) and the check each is counted as. */
const LIBRARY_REFUSALS: readonly (readonly [RegExp, string])[] = [
  [/You talk too soon/, 'protocol.pregreet'],
  [/Command line too long/, 'limits.command-length'],
  [/Timeout - closing connection/, 'limits.timeout'],
  [/too many unrecognized commands/, 'protocol.unrecognized'],
];

/**
 * Refusals smtp-server makes on its own (no hook sees them) are found in the session's last error
 * reply when it closes: the early talker's 421, an overlong command line, the idle timeout.
 */
export function noteLibraryRefusal(deps: RefusalDeps, session: SMTPServerSession): void {
  const last = session.error ?? '';
  if (last === '') return; // most sessions: nothing to look for
  const hit = LIBRARY_REFUSALS.find(([re]) => re.test(last));
  if (!hit) return;
  smtpMetrics.decisions.inc({ check: hit[1], action: 'reject' });
  smtpMetrics.refusals.inc({ stage: 'session', code: last.slice(0, 3) });
  // The session is gone: nobody waits for this write (record() logs a failure and never rejects).
  void record(deps, session, hit[1] === 'protocol.pregreet' ? 'connect' : 'session', last, null);
}

/** An exception in a hook is a temporary failure, never a pass (fail closed). */
export function hookFailed(deps: RefusalDeps, callback: Callback, err: unknown, stage: string): void {
  deps.logger.error({ err, stage }, 'front-line check failed; answering 451');
  callback(toError({ code: 451, enhanced: '4.3.0', text: 'Local error in processing, please try again later' }));
}

/** Deadlines for one connection: on expiry 421 4.4.2 and close (smtp-server closes after any 421). */
export function watchDeadlines(deps: RefusalDeps & { config: Config }, server: SMTPServer, conn: ConnectionInternals): void {
  const { config } = deps;
  const session = (conn as unknown as { session: SMTPServerSession }).session;
  const deadlines = new SessionDeadlines({
    policy: config.smtp.deadlines,
    load: () => ({ open: server.connections.size, max: config.smtp.maxClients }),
    onExpire: (kind) => {
      const reply = replies.timeoutExceeded(config.hostname);
      deps.logger.info({ session: session.id, client: session.remoteAddress, deadline: kind }, 'session deadline passed');
      smtpMetrics.decisions.inc({ check: `limits.deadline-${kind}`, action: 'reject' });
      conn.send(reply.code, wireText(reply));
      void refused(deps, session, 'session', reply, null);
    },
  });
  watchConnection(conn, deadlines);
  conn._socket.once('close', () => deadlines.stop());
}
