// A message's history as typed events: code reads an event's fields, never its sentence. The
// sentence (`detail`) is written once, from the fields, for the console and the CLI; the fields
// are stored with it (message_events.data). Events written before the fields were kept are read
// back by their kind alone (`fieldsOf` gives null): code treats them as the kind says.
import type { MessageEvent, MessageStatus, NewEvent } from '../store/metadata.ts';
import type { QueueName } from '../store/queue.ts';

export type LedgerEvent =
  | { kind: 'quarantined'; reason: string; policySaidReject: boolean }
  | { kind: 'refused'; reply: string; why?: string }
  | { kind: 'stripped'; parts: string[] }
  | { kind: 'split'; side: 'child'; parent: string; recipients: string[] }
  | { kind: 'split'; side: 'parent'; child: string; recipients: string[] }
  | { kind: 'deferred'; nextAttempt: string; recipients: number; reply: string }
  | { kind: 'delay-warned'; sender: string }
  | { kind: 'delivered'; results: { recipient: string; reply: string }[] }
  | { kind: 'failed'; results: { recipient: string; reply: string }[] }
  | { kind: 'bounced' | 'delay-notice'; dsnId: string; sender: string; recipients: string[] }
  | { kind: 'dsn-suppressed'; notice: 'bounce' | 'delay notice'; sender: string; recipients: string[]; reason: string }
  | { kind: 'bounced-by-admin'; by: string }
  | { kind: 'released'; by: string }
  | { kind: 'deleted'; by: string; from: 'quarantine' | 'queue' | 'poison hold' }
  | { kind: 'expired'; days: number; wasQuarantined: boolean }
  /** `scan job run again`: a scan job that had planned the delivery ran again (its first attempt was cut); otherwise reconciliation at start-up. */
  | { kind: 'requeued'; queue: QueueName; by?: 'scan job run again' }
  | { kind: 'generated'; what: string }
  | { kind: 'fault'; queue: QueueName; faults: number; reason: string }
  | { kind: 'held-poison'; queue: QueueName; faults: number; was: MessageStatus; reason: string }
  | { kind: 'poison-released'; by: string; queue: QueueName }
  | { kind: 'scan-deferred'; reason: string }
  /** What the spam-report handler did (gateway/reports/): its sentence is all there is to it. */
  | { kind: ReportNoteKind; text: string };

export type ReportNoteKind =
  'report-refused' | 'report-trusted' | 'learned' | 'not-extracted' | 'learn-failed' | 'block-skipped' | 'blocked-sender' | 'acknowledged';

export type EventKind = LedgerEvent['kind'];

/** The display sentence of an event (what the console's history and `mailmoat queue show` print). */
export function describe(e: LedgerEvent): string {
  switch (e.kind) {
    case 'quarantined':
      return e.policySaidReject ? `${e.reason} (policy says reject, but the message had been accepted)` : e.reason;
    case 'refused':
      return `refused at SMTP time: ${e.reply}${e.why ? ` (${e.why})` : ''}`;
    case 'stripped':
      return `attachments removed: parts ${e.parts.join(', ')}`;
    case 'split':
      return e.side === 'child'
        ? `split from ${e.parent} for ${e.recipients.join(', ')}: their policy handles it differently`
        : `${e.recipients.join(', ')} split off into ${e.child}`;
    case 'deferred':
      return `next attempt ${e.nextAttempt}: ${e.recipients} recipient(s), ${e.reply}`;
    case 'delay-warned':
      return `delay warning sent to <${e.sender}>`;
    case 'delivered':
    case 'failed':
      return e.results.map((r) => `${r.recipient}: ${r.reply}`).join('; ');
    case 'bounced':
    case 'delay-notice':
      return `DSN ${e.dsnId} to <${e.sender}> for ${e.recipients.join(', ')}`;
    case 'dsn-suppressed':
      return `no ${e.notice} to <${e.sender}> for ${e.recipients.join(', ')}: ${e.reason}`;
    case 'bounced-by-admin':
      return `by ${e.by}`;
    case 'released':
      return `released by ${e.by}`;
    case 'deleted':
      return e.from === 'quarantine'
        ? `deleted by ${e.by}`
        : e.from === 'queue'
          ? `deleted from the queue by ${e.by}`
          : `deleted while held as poison, by ${e.by}`;
    case 'expired':
      return e.wasQuarantined ? `expired after ${e.days} days in quarantine` : `no copy kept after ${e.days} days`;
    case 'requeued':
      return e.by
        ? `handed to the ${e.queue} queue: its scan job ran again after its first delivery attempt was cut off (a crash or a stall)`
        : `queued again for ${e.queue} at start-up`;
    case 'generated':
      return e.what;
    case 'fault':
      return `${e.queue} (fault ${e.faults}): ${e.reason}`;
    case 'held-poison':
      return `held after its ${e.queue} job faulted ${e.faults} times; was ${e.was}; ${e.reason}`;
    case 'poison-released':
      return `by ${e.by}: queued for ${e.queue} again`;
    case 'scan-deferred':
      return e.reason;
    default:
      return e.text;
  }
}

/** The row to store for an event: kind, sentence, fields. */
export function toStored(e: LedgerEvent): NewEvent {
  const { kind, ...fields } = e;
  return { kind, detail: describe(e), data: fields };
}

/** The typed fields of a stored event of this kind, or null (another kind, or written without fields). */
export function fieldsOf<K extends EventKind>(e: MessageEvent, kind: K): Extract<LedgerEvent, { kind: K }> | null {
  if (e.kind !== kind || !e.data) return null;
  return { ...e.data, kind } as Extract<LedgerEvent, { kind: K }>;
}

/** The last event of this kind in a history, typed; null if none has fields. */
export function lastOf<K extends EventKind>(history: MessageEvent[], kind: K): Extract<LedgerEvent, { kind: K }> | null {
  for (let i = history.length - 1; i >= 0; i--) {
    const f = fieldsOf(history[i], kind);
    if (f) return f;
  }
  return null;
}

export const hasEvent = (history: MessageEvent[], kind: EventKind): boolean => history.some((e) => e.kind === kind);
