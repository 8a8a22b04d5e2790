// A message's row as the metadata store keeps it (metadata.ts) and its queries read it
// (message-queries.ts): apart from both, so that neither imports the other for it.
import type { ScanReport } from '../../scanners/types.ts';
import type { Envelope } from '../spool/spool.ts';

export type MessageStatus =
  | 'queued' // accepted, waiting for or in the scan
  | 'delivering' // scanned, waiting for or in delivery
  | 'deferred' // delivery failed temporarily, will retry
  | 'delivered'
  | 'quarantined'
  | 'releasing' // released from quarantine, waiting for delivery
  | 'released' // released and delivered
  | 'failed' // delivery failed permanently or gave up
  | 'deleted' // deleted from quarantine
  | 'reported' // issue 8: a spam report to reportspam@/notspam@, learned from, never delivered
  | 'refused' // accepted on disk but refused at the end of DATA (e.g. queue down): the client keeps it
  | 'held'; // "held: poison": its processing crashed its worker POISON_FAULTS times; kept in the spool for an administrator (gateway/poison.ts)

export interface MessageRecord {
  id: string;
  receivedAt: number;
  clientIp: string;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  subject: string | null;
  status: MessageStatus;
  verdict: string | null;
  reason: string | null;
  report: ScanReport | null;
  lastReply: string | null;
  updatedAt: number;
  /** The account that submitted it on the submission listener (authenticated), or null. */
  submittedBy: string | null;
  /**
   * The envelope as received, DSN parameters included (gateway/ledger/): null for a row written
   * before it was kept (migration 0005). Its recipients are those of the message as received;
   * `rcptTo` above is narrowed when recipients are split off.
   */
  envelope: Envelope | null;
}
