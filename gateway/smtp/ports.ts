// What the SMTP front asks of the rest of the gateway beyond the spool, store and queue: two
// interfaces it is given. gateway/pipeline implements them and the composition root
// (gateway/roles.ts) wires them in, so the front line never imports the scan pipeline: what runs
// in an SMTP session stays what this folder and rules/ say, and the pipeline can change behind them.
import type { Config } from '../config/schema.ts';
import type { Envelope } from '../spool/spool.ts';

/**
 * Issue 5, inline verdicts: called once a message is spooled and its scan queued. May wait
 * (bounded by the config's deadline) for the scan's verdict, and throws SmtpRefusal when the scan
 * refused the message; resolves when it is accepted as usual. Never throws anything else: the
 * message is safely queued already (gateway/pipeline/inline.ts refuseIfInlineVerdict).
 */
export type InlineVerdictGate = (config: Config, envelope: Pick<Envelope, 'id' | 'mailFrom' | 'clientIp' | 'rcptTo' | 'submitted'>) => Promise<void>;

/** A mail from the gateway itself to an administrator (issue 18's hijack warning). */
export interface Notice {
  to: string;
  subject: string;
  text: string;
  /** Why it was sent, for the message record and the log. */
  reason: string;
  /** Whom or what it is about (an account). */
  about: string;
}

/** Commits a notice as a generated message, delivered like any other (gateway/pipeline/notify.ts sendNotice). */
export type NoticeSender = (notice: Notice) => Promise<void>;
