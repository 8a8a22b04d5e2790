// What the console needs from the rest of mailmoat: store ports and a few actions. Only the
// composition root (gateway/roles.ts runConsole) picks the concrete adapters; tests pass fakes.
import type { Config } from '../gateway/config/schema.ts';
import type { Logger } from '../gateway/log.ts';
import type { DeleteResult, ReleaseResult } from '../gateway/quarantine.ts';
import type { SpamTeacher } from '../gateway/learning.ts';
import type { Learner } from '../gateway/learner/learner.ts';
import type { AccountStore } from '../gateway/store/accounts.ts';
import type { AuditStore } from '../gateway/store/audit.ts';
import type { BlobStore } from '../gateway/store/blobs.ts';
import type { DigestStore } from '../gateway/store/digests.ts';
import type { LearnLog } from '../gateway/store/learnlog.ts';
import type { ListStore } from '../gateway/store/lists.ts';
import type { MetadataStore } from '../gateway/store/metadata.ts';
import type { ReleaseRequestStore } from '../gateway/store/release-requests.ts';
import type { PoisonOpResult } from '../gateway/poison.ts';
import type { SmtpTestResult } from '../gateway/delivery/smtp-test.ts';
import type { HostedDomain } from '../gateway/config/schema.ts';
import type { DomainStore } from '../gateway/store/domains.ts';
import type { ApiTokenStore } from '../gateway/store/api-tokens.ts';
import type { StatsStore } from '../gateway/store/stats.ts';
import type { OpResult } from '../gateway/delivery/queue-ops.ts';
import type { TotpStore } from '../gateway/store/totp.ts';

/** Hosted domains kept in the database (gateway/domains/): the store, the file's domains, and "apply now". */
export interface HostedDomainsPort {
  store: DomainStore;
  /** The config file's domains (a database domain replaces the file's of the same name). */
  fileDomains(): Record<string, HostedDomain>;
  /** Applies the database's domains to this process now (the other processes poll). */
  refresh(): Promise<unknown>;
}

export interface ConsoleDeps {
  config: Config;
  logger: Logger;
  store: MetadataStore;
  quarantine: BlobStore;
  accounts: AccountStore;
  audit: AuditStore;
  lists: ListStore;
  learnLog: LearnLog;
  digests: DigestStore;
  /** End users' requests that an administrator release a message (routes/requests.ts). */
  requests: ReleaseRequestStore;
  /** Sends a short plain-text notice to one address (through the gateway); absent: no mail notices. */
  notify?(to: string, subject: string, text: string): Promise<void>;
  /** The console's master secret (lib/keys.ts); cookie and link keys are derived from it. */
  secret: Buffer;
  release(id: string, by: string): Promise<ReleaseResult>;
  remove(id: string, by: string): Promise<DeleteResult>;
  spamd: SpamTeacher;
  /** A message held as poison (gateway/poison.ts): processed once more, or deleted. */
  poison?: {
    release(id: string, by: string): Promise<PoisonOpResult>;
    remove(id: string, by: string): Promise<PoisonOpResult>;
  };
  /** The learned filter; absent: learn buttons teach spamd only, no Learner page. */
  learner?: Learner;
  /** Job counts per queue and state (waiting, active, delayed, failed…). */
  queueCounts(): Promise<Record<string, Record<string, number>>>;
  /** Named checks for /healthz: each resolves with a short detail or throws. */
  healthChecks: Record<string, () => Promise<string>>;
  /** Checks whose failure answers 503; the others are reported with "critical": false. Absent: all. */
  healthCritical?: readonly string[];
  smtpTest(target: { host: string; port: number }, o: { domain: string; helo: string; timeoutMs: number }): Promise<SmtpTestResult>;
  now(): number;
  hostedDomains: HostedDomainsPort;
  /** Bearer tokens of the REST API (quarantine-ui/api/). */
  tokens: ApiTokenStore;
  /** The numbers over time (gateway/store/stats.ts); absent: the Numbers page says so. */
  stats?: StatsStore;
  /** `mailmoat queue retry|flush` for the queue page (gateway/delivery/queue-ops.ts); absent: no buttons. */
  queueOps?: {
    retry(id: string): Promise<OpResult>;
    flush(o: { domain?: string; within?: readonly string[] }): Promise<{ flushed: string[]; skipped: { id: string; reason: string }[] }>;
  };
  /** The second factor (TOTP) of local accounts and their recovery codes (routes/totp.ts). */
  totp: TotpStore;
}
