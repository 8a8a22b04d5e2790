// The typed scan report: one entry per scanner, feeding one verdict (rules/verdict.ts), stored with
// the message (messages.report, JSON) for the console and the CLI. Plain data only: no class
// instances, no Buffers, nothing that does not survive JSON.stringify.
//
// A scanner never says "clean" when it did not look: a timeout, a dead daemon or a limit reached
// is reported as such ('error', 'unscannable', 'skipped' with a reason), and the verdict decides
// what to do with it (fail closed). The fields after `spam` are optional only because reports
// stored before they existed (and generated messages such as DSNs) do not have them; the scan
// worker always fills them.

/** What the virus scanner (clamd) said about one message. */
export type VirusScan =
  | { status: 'clean' }
  | { status: 'infected'; viruses: string[] }
  /** clamd could not scan all of it (size/recursion/file limits, encrypted content). */
  | { status: 'unscannable'; reason: string }
  /** clamd was unreachable, timed out or answered something we do not understand. */
  | { status: 'error'; reason: string }
  /** No recipient's policy asked for a virus scan (policy.checks.virus: false). */
  | { status: 'skipped'; reason: string };

/** What the spam scanner (spamd) said about one message. */
export type SpamScan =
  | {
      status: 'scored';
      score: number;
      threshold: number;
      rules: string[];
      /** Each rule that hit with its score and description (spamd REPORT); absent in older reports or with a custom report template. */
      details?: { rule: string; score: number; description: string }[];
    }
  /** Deliberately not scanned, e.g. larger than the spam scan size limit (as spamc does). */
  | { status: 'skipped'; reason: string }
  | { status: 'error'; reason: string };

/** Not looked at on purpose (policy) — never read as "nothing found". */
export type Skipped = { status: 'skipped'; reason: string };
/** Looked at, but the check itself failed (the message is scanned again later). */
export type Failed = { status: 'error'; reason: string };
/** Could not be looked at within a bound (HTML nesting, analysis time): a verdict class of its own, never clean. */
export type Unscannable = { status: 'unscannable'; reason: string };

/** One attachment finding (rules/attachments.ts AttachmentFinding). */
export interface AttachmentFindingReport {
  /** IMAP-style part id ("2", "1.3"); null when the finding is about the whole message. */
  part: string | null;
  /** The name concerned (inside archives: the member's path); null when there is none. */
  filename: string | null;
  /** Which rule: banned-name, double-extension, hidden-extension, name-mismatch, banned-type, type-mismatch, encrypted, archive-limit, unscannable, malformed. */
  rule: string;
  /** What the rule means for the verdict: malformed, banned, unscannable or encrypted. */
  class: string;
  /** One line a person can read, e.g. "double extension: looks like .pdf but is .exe". */
  reason: string;
  /** Archives the file sits in, outermost first (["invoice.zip", "inner.zip"]). */
  archivePath?: string[];
}

/** The MIME structure walk and the attachment rules. */
export type AttachmentScan =
  | {
      status: 'checked';
      /** 'ok', or why the structure could not be walked ('malformed') or looked at fully ('unscannable'). */
      structure: { status: 'ok' } | { status: 'malformed' | 'unscannable'; reason: string };
      /** Leaf MIME parts seen. */
      parts: number;
      /** Each attachment as the recipient's client would show it: part id, name, real type by content. */
      files: { part: string; filename: string | null; contentType: string; size: number; detected: string | null }[];
      findings: AttachmentFindingReport[];
      /** Part ids replaced by a text note in the delivered copy (action `strip`). */
      stripped?: string[];
    }
  | Skipped
  | Failed;

/** A link whose visible text shows another host than the one it goes to. */
export interface PhishingLink {
  part: string;
  /** The host the text shows ("www.paypal.com"). */
  shown: string;
  /** The host the link really goes to ("evil.example"). */
  real: string;
}

/** HTML disarming (scanners/html-disarm.ts) and the phishing net. */
export type HtmlScan =
  | {
      status: 'checked';
      /** HTML parts looked at. */
      parts: number;
      /** What disarming changes (or changed) in the delivered copy: kind (script, form, iframe, object, handler, js-url, data-url, meta-refresh, web-bug, phishing, unscannable-html) and a detail line. */
      findings: { part: string; kind: string; detail: string }[];
      phishing: PhishingLink[];
      /** The delivered copy differs from the original HTML (subject tag <Cleaned> when `dangerous`, or web bugs with tagWebBugs). */
      changed: boolean;
      /** Something that runs code, submits data or lies about a link was removed (not only web bugs). */
      dangerous: boolean;
    }
  | Skipped
  | Failed
  | Unscannable;

/** One mechanism's result as Authentication-Results states it (pass, fail, none, neutral, softfail, temperror, permerror, policy). */
export interface AuthResult {
  result: string;
  /** A short comment from the checker, when it gave one. */
  comment?: string;
}

/** Mail authentication (mailauth): SPF, DKIM, DMARC, ARC. */
export type AuthScan =
  | {
      status: 'checked';
      spf: AuthResult & { domain: string };
      /** One entry per DKIM-Signature. */
      dkim: (AuthResult & { domain: string; selector: string; aligned: boolean })[];
      /** null: no DMARC evaluation (no usable From domain). */
      dmarc: (AuthResult & { domain: string; policy: string; from: string }) | null;
      /** null: no ARC chain. */
      arc: (AuthResult & { instance: number }) | null;
      /** The Authentication-Results value we put on the delivered copy (authserv-id first). */
      header: string;
    }
  | Skipped
  | Failed;

/** Hosts named in the message bodies, looked up in the local bad-sites list and in domain blocklists. */
export type UrlScan =
  | {
      status: 'checked';
      /** Distinct hosts looked up (at most urls.maxHosts). */
      hosts: number;
      /** More hosts were found than were looked up. */
      truncated: boolean;
      /** Each listing: which host, on which list (the zone, or "bad-sites"), why, and the score it added. */
      hits: { host: string; list: string; detail: string; score: number }[];
      /** Lookups that failed (DNS temperror): these hosts were not checked on that list. */
      errors: { host: string; list: string; error: string }[];
      /** Sum of the hits' scores, added to the spam score. */
      score: number;
    }
  | Skipped
  | Failed
  | Unscannable;

/** The allow/block list entry that decided for this copy, if one matched. */
export interface ListMatch {
  kind: 'allow' | 'block';
  scope: 'user' | 'domain' | 'global';
  entry: string;
}

/** The score the spam verdict was taken on: spamd's plus what the other checks added. */
export interface ScoreSummary {
  spam: number | null;
  urls: number;
  auth: number;
  total: number;
  threshold: number;
  highThreshold: number;
}

/** How this copy of the message was handled. */
export interface PolicyOutcome {
  /** The recipients this report (this copy) is about. */
  recipients: string[];
  /** Verdict class: virus, blocked, malformed, banned, unscannable, spoofed, phishing, high-spam, spam, clean. */
  class: string;
  /** Every class the scan found evidence for, most severe first; `class` is the one whose action won. */
  classes?: string[];
  /** The X-Mailmoat-Status and X-Spam-* headers as the policy stamps them on a delivered copy (what the score says, whatever the class). */
  headers?: [string, string][];
  /** deliver, headers, tagged, strip, quarantine, reject — and `refused` when the SMTP session refused it. */
  action: string;
  /** The reasons for the class, most important first. */
  reasons: string[];
  /** Rules (config `rules`) that applied, by name. */
  rules: string[];
  /** Message ids this message was split into (recipients with differing policies), if any. */
  splitInto?: string[];
  /** The message this one was split from. */
  splitFrom?: string;
  /** Ids of notices and copies sent because of this verdict (notify recipient/admin, forward). */
  sent?: string[];
}

export interface ScanReport {
  virus: VirusScan;
  spam: SpamScan;
  attachments?: AttachmentScan;
  html?: HtmlScan;
  auth?: AuthScan;
  urls?: UrlScan;
  /** The list entry that decided (allow: spam classes skipped; block: verdict "blocked"); null: none matched. */
  list?: ListMatch | null;
  score?: ScoreSummary;
  outcome?: PolicyOutcome;
  /** When the scan began and ended (epoch ms), for the message's summary line (gateway/summary.ts). */
  timing?: { startedAt: number; finishedAt: number };
}
