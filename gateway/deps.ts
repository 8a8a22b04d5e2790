// The dependencies most of the gateway's operations share, defined once: where messages live
// (spool, metadata, quarantine bodies), the queue between the roles, the config and the logger.
import type { Config } from './config/schema.ts';
import type { Logger } from './log.ts';
import type { Spool } from './spool/spool.ts';
import type { BlobStore } from './store/blobs.ts';
import type { MetadataStore } from './store/metadata.ts';
import type { JobQueue } from './store/queue.ts';

/** Stores that every role opens from the config alone. */
export interface Stores {
  spool: Spool;
  store: MetadataStore;
  quarantine: BlobStore;
}

export interface CoreDeps extends Stores {
  config: Config;
  queue: JobQueue;
  logger: Logger;
}
