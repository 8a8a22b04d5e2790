// The dependencies most of the gateway's operations share, defined once: where messages live
// (spool, metadata, quarantine bodies), the queue between the roles, the config and the logger.
import type { Config } from './config/schema.ts';
import type { Logger } from './log.ts';
import type { Spool } from './spool/spool.ts';
import type { BlobStore } from './store/blobs.ts';
import type { MetadataStore } from './store/metadata.ts';
import type { Sql } from './store/sql.ts';
import type { StatsCounter } from './stats.ts';
import type { JobQueue } from './store/queue.ts';

/** Where messages live: the spool, their metadata, quarantined bodies. */
export interface MessageStores {
  spool: Spool;
  store: MetadataStore;
  quarantine: BlobStore;
  /** The numbers over time (stats.ts); absent: nothing is counted (tests that build their own deps). */
  stats?: StatsCounter;
}

/** What every role opens from the config alone: the message stores and the database they share. */
export interface Stores extends MessageStores {
  /** The process's one connection (pool) to the metadata database, shared by every store in it. */
  sql: Sql;
}

export interface CoreDeps extends MessageStores {
  config: Config;
  queue: JobQueue;
  logger: Logger;
}
