// Deadlines of an SMTP session, as pure functions over times in milliseconds.
//
// Why: an idle timeout (smtp-server's socketTimeout) is reset by every byte, so a client sending one
// byte a second holds a session forever, and 500 of them fill smtp.maxClients. Postfix's answer is
// a deadline per request (smtpd_per_request_deadline: the whole command line must arrive within
// smtpd_timeout, shortened to 10 s under stress) and a minimum data rate for DATA
// (smtpd_min_data_rate: each N bytes received extend the DATA deadline by N/rate seconds, never
// beyond smtpd_timeout from now). We add a total DATA deadline and one for the whole session, so
// that no pattern of bytes keeps a slot for longer than sessionMs + dataMs.
//
// Phases: "command" while the client owes us a command line (from our reply until the line is in);
// "data" from 354 until the final dot; "busy" while we work (a check, the spool, an inline verdict)
// and the client owes nothing — no deadline runs then, our own slowness is not the client's fault.
// The session deadline is looked at in the command phase only: a message already in transfer when
// it passes may finish (bounded by the DATA deadlines), and the session ends after its reply.

export interface DeadlinePolicy {
  /** Time to send one complete command line (Postfix smtpd_timeout, 300 s). */
  commandMs: number;
  /** The same while the listener is nearly full (Postfix's stress value, 10 s). */
  commandUnderLoadMs: number;
  /** Share of smtp.maxClients in use from which commandUnderLoadMs applies (1: never). */
  underLoadAt: number;
  /** DATA: minimum bytes per second, as credit against the command deadline (Postfix smtpd_min_data_rate). */
  dataMinBytesPerSec: number;
  /** DATA: from 354 to the final dot, whatever the rate. */
  dataMs: number;
  /** The whole session, checked between commands. */
  sessionMs: number;
}

export type DeadlineKind = 'command' | 'data-rate' | 'data' | 'session';

export interface DeadlineState {
  phase: 'busy' | 'command' | 'data';
  sessionEnds: number;
  /** Command phase: when the command line must be in. */
  commandEnds?: number;
  /** Data phase: moved later by every byte received (minimum rate). */
  dataRateEnds?: number;
  /** Data phase: fixed at 354. */
  dataEnds?: number;
}

/** The time a client gets for its next command: shortened while the listener is nearly full. */
export function commandTimeoutMs(p: DeadlinePolicy, load: { open: number; max: number }): number {
  return load.max > 0 && load.open >= p.underLoadAt * load.max ? Math.min(p.commandMs, p.commandUnderLoadMs) : p.commandMs;
}

export function startSession(p: DeadlinePolicy, now: number): DeadlineState {
  return { phase: 'busy', sessionEnds: now + p.sessionMs };
}

/** After our reply: the client owes a command line within `timeoutMs`. */
export function expectCommand(s: DeadlineState, now: number, timeoutMs: number): DeadlineState {
  return { phase: 'command', sessionEnds: s.sessionEnds, commandEnds: now + timeoutMs };
}

/** After 354: the message must come at the minimum rate, and all of it within dataMs. */
export function startData(s: DeadlineState, p: DeadlinePolicy, now: number, timeoutMs: number): DeadlineState {
  return { phase: 'data', sessionEnds: s.sessionEnds, dataRateEnds: now + timeoutMs, dataEnds: now + p.dataMs };
}

/** A command line or the final dot is in: we work, the client waits. */
export function busy(s: DeadlineState): DeadlineState {
  return { phase: 'busy', sessionEnds: s.sessionEnds };
}

/** `bytes` of message arrived at `now`: N bytes buy N/rate seconds, but never more than timeoutMs from now. */
export function creditData(s: DeadlineState, p: DeadlinePolicy, now: number, bytes: number, timeoutMs: number): DeadlineState {
  if (s.phase !== 'data' || s.dataRateEnds === undefined) return s;
  const extended = s.dataRateEnds + (bytes * 1000) / p.dataMinBytesPerSec;
  return { ...s, dataRateEnds: Math.min(now + timeoutMs, extended) };
}

/** The deadline that comes first in the current phase (null while busy); on a tie, the one listed first. */
export function nextDeadline(s: DeadlineState): { at: number; kind: DeadlineKind } | null {
  // Runs after every reply and command line of every session: no candidate arrays.
  if (s.phase === 'command') return earlier(s.commandEnds, 'command', s.sessionEnds, 'session');
  if (s.phase === 'data') return earlier(s.dataRateEnds, 'data-rate', s.dataEnds, 'data');
  return null;
}

function earlier(a: number | undefined, aKind: DeadlineKind, b: number | undefined, bKind: DeadlineKind): { at: number; kind: DeadlineKind } | null {
  if (a === undefined) return b === undefined ? null : { at: b, kind: bKind };
  return b === undefined || a <= b ? { at: a, kind: aKind } : { at: b, kind: bKind };
}
