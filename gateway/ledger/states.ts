// A message's states and the only moves between them, as one table. Every status change goes
// through a ledger verb (ledger.ts), and every verb's move is a row here: a move not in this
// table is a bug, refused before anything is written (illegalMove).
import type { MessageStatus } from '../store/metadata.ts';
import type { FinalState } from '../summary.ts';

export type { MessageStatus };

/** Statuses of mail the gateway still holds in its spool. */
export const IN_SPOOL: readonly MessageStatus[] = ['queued', 'delivering', 'deferred', 'releasing', 'held'];

/** The statuses a delivery attempt starts from. */
export const IN_DELIVERY: readonly MessageStatus[] = ['delivering', 'releasing', 'deferred'];

/** Statuses a poison hold may take a message from (gateway/poison.ts). */
export const HOLDABLE: readonly MessageStatus[] = ['queued', 'delivering', 'deferred', 'releasing'];

/**
 * Where a message rests: the gateway has nothing more to do unless a person acts (release,
 * delete). The ledger calls its `onFinal` hook when a verb moves a message into one.
 */
export const FINAL: readonly MessageStatus[] = ['delivered', 'released', 'failed', 'refused', 'deleted', 'reported', 'quarantined'];

/** One row per verb (and variant): the statuses it moves from, and to. */
export const MOVES = {
  /** The scan's plan for a message (or one group of its recipients split off). */
  planDeliver: { from: ['queued'], to: 'delivering' },
  planQuarantine: { from: ['queued'], to: 'quarantined' },
  /** A spam report to a report address: learned from, kept, never delivered. */
  planReport: { from: ['queued'], to: 'reported' },
  /** Refused with an SMTP reply while the client waited (inline verdict, queue down, scanner down). */
  refuse: { from: ['queued'], to: 'refused' },
  /** The accept failed before the 250 (store or queue down): the client keeps the message. */
  abandon: { from: ['queued'], to: 'refused' },
  /** Reconciliation: an envelope found without its body was never committed (no 250 was sent). */
  discardUncommitted: { from: ['queued'], to: 'refused' },
  /** Reconciliation: a message we generated, cut by a crash before its move to delivering. */
  resumeGenerated: { from: ['queued'], to: 'delivering' },
  /** Reconciliation: a quarantine that a crash interrupted after the spool was cleared. */
  finishQuarantine: { from: ['queued'], to: 'quarantined' },
  /** A message the gateway writes itself goes straight to delivery: we wrote it, nothing to scan. */
  submitGenerated: { from: ['queued'], to: 'delivering' },
  defer: { from: IN_DELIVERY, to: 'deferred' },
  finishDelivered: { from: IN_DELIVERY, to: 'delivered' },
  finishReleased: { from: IN_DELIVERY, to: 'released' },
  finishFailed: { from: IN_DELIVERY, to: 'failed' },
  release: { from: ['quarantined'], to: 'releasing' },
  /** A release that could not restore the message into the spool goes back to the quarantine. */
  unrelease: { from: ['releasing'], to: 'quarantined' },
  deleteQuarantined: { from: ['quarantined'], to: 'deleted' },
  expireQuarantined: { from: ['quarantined'], to: 'deleted' },
  deleteQueued: { from: IN_SPOOL, to: 'deleted' },
  hold: { from: HOLDABLE, to: 'held' },
  releaseHoldToScan: { from: ['held'], to: 'queued' },
  releaseHoldToDelivery: { from: ['held'], to: 'delivering' },
  releaseHoldToRelease: { from: ['held'], to: 'releasing' },
} as const satisfies Record<string, { from: readonly MessageStatus[]; to: MessageStatus }>;

export type Move = keyof typeof MOVES;

/**
 * The moves that end with the message's one summary line in the log (gateway/summary.ts), and
 * the state it names: where the gateway's handling of a message ends (or, held, pauses for a person).
 */
export const SUMMARISED: Partial<Record<Move, FinalState>> = {
  planQuarantine: 'quarantined',
  refuse: 'refused',
  discardUncommitted: 'refused',
  finishDelivered: 'delivered',
  finishReleased: 'released',
  finishFailed: 'bounced',
  hold: 'held',
};

/** Whether some verb may move a message from `from` to `to`. */
export function isLegal(from: MessageStatus, to: MessageStatus): boolean {
  return Object.values(MOVES).some((m) => m.to === to && (m.from as readonly MessageStatus[]).includes(from));
}

/** Where a held message returns to: the stage it was held at (a deferred one is tried again now). */
export function releaseHoldMove(was: MessageStatus): Move {
  if (was === 'delivering' || was === 'deferred') return 'releaseHoldToDelivery';
  if (was === 'releasing') return 'releaseHoldToRelease';
  return 'releaseHoldToScan';
}

/** The state table as Markdown rows, for the README and `mailmoat` docs (one source). */
export function stateTableRows(): string[] {
  return Object.entries(MOVES).map(([verb, m]) => `| \`${verb}\` | ${(m.from as readonly string[]).join(', ')} | ${m.to} |`);
}
