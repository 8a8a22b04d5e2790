// The typed scan report: one entry per scanner, feeding one verdict (rules/verdict.ts).
// A scanner never says "clean" when it did not look: a timeout, a dead daemon or a limit
// reached is reported as such, and the verdict decides what to do with it (fail closed).

/** What the virus scanner (clamd) said about one message. */
export type VirusScan =
  | { status: 'clean' }
  | { status: 'infected'; viruses: string[] }
  /** clamd could not scan all of it (size/recursion/file limits, encrypted content). */
  | { status: 'unscannable'; reason: string }
  /** clamd was unreachable, timed out or answered something we do not understand. */
  | { status: 'error'; reason: string };

/** What the spam scanner (spamd) said about one message. */
export type SpamScan =
  | { status: 'scored'; score: number; threshold: number; rules: string[] }
  /** Deliberately not scanned, e.g. larger than the spam scan size limit (as spamc does). */
  | { status: 'skipped'; reason: string }
  | { status: 'error'; reason: string };

export interface ScanReport {
  virus: VirusScan;
  spam: SpamScan;
}
