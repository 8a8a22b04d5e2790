// The process's one Prometheus registry, the counters of the SMTP front line and of the workers. Whoever serves
// /metrics (the console) exposes `registry` (e.g. Registry.merge([registry, its own])); every
// role registers its metrics here, never in a registry of its own, so one scrape sees them all.
// Counters only grow; tests compare before/after values (metricValue) because one test process
// may run several gateways.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

export const smtpMetrics = {
  connections: new Counter({
    name: 'mailmoat_smtp_connections_total',
    help: 'SMTP connections by listener and outcome (accepted, refused)',
    labelNames: ['listener', 'outcome'] as const,
    registers: [registry],
  }),
  sessions: new Gauge({
    name: 'mailmoat_smtp_sessions',
    help: 'SMTP sessions open now, by listener',
    labelNames: ['listener'] as const,
    registers: [registry],
  }),
  /** One per check outcome: check is e.g. "helo.nxdomain", "dnsbl.zen.spamhaus.org", "spf.fail"; action reject/tempfail/score/pass/skip. */
  decisions: new Counter({
    name: 'mailmoat_smtp_check_decisions_total',
    help: 'Front-line check decisions by check and action',
    labelNames: ['check', 'action'] as const,
    registers: [registry],
  }),
  refusals: new Counter({
    name: 'mailmoat_smtp_refusals_total',
    help: 'SMTP refusals by stage (connect, mail, rcpt, data, auth) and reply code',
    labelNames: ['stage', 'code'] as const,
    registers: [registry],
  }),
  /** A 4xx at the end of DATA because a message could not be stored: spool (disk), database, queue (Redis). */
  storeFailures: new Counter({
    name: 'mailmoat_smtp_store_failures_total',
    help: 'Messages refused with a 4xx at the end of DATA because the spool, the database or the queue failed',
    labelNames: ['store'] as const,
    registers: [registry],
  }),
  accepted: new Counter({
    name: 'mailmoat_smtp_messages_accepted_total',
    help: 'Messages accepted (250 after spool fsync and enqueue), by listener',
    labelNames: ['listener'] as const,
    registers: [registry],
  }),
  tlsReloads: new Counter({
    name: 'mailmoat_tls_reloads_total',
    help: 'Certificate reloads by outcome (ok, error)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
};

/** The workers' counters: what the scans decided, and what downstream servers answered. */
export const workerMetrics = {
  scanned: new Counter({
    name: 'mailmoat_messages_scanned_total',
    help: 'Messages (or recipient groups of one) scanned, by verdict and what was done (deliver, quarantine, refuse)',
    labelNames: ['verdict', 'action'] as const,
    registers: [registry],
  }),
  deliveries: new Counter({
    name: 'mailmoat_delivery_attempts_total',
    help: 'Delivery attempts per recipient, by outcome (delivered, deferred, failed)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
};

/** Seconds, from a clamd ping to a slow spamd scan or a delivery through a tarpitting host. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Accepted → final state: minutes to days when deliveries are deferred. */
const END_TO_END_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600];

/** Latency of the pipeline: each engine's scan, each delivery, and a message end to end. */
export const pipelineMetrics = {
  /** engine: clamd, spamd, mime (MIME walk and attachment facts), html (HTML and text analysis), urls, auth (DKIM/SPF/DMARC/ARC). */
  scan: new Histogram({
    name: 'mailmoat_scan_duration_seconds',
    help: 'Time one engine took to scan one message, by engine and outcome (ok, error)',
    labelNames: ['engine', 'outcome'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  }),
  /**
   * One delivery to one domain (every hop tried), by lane: "hosted" (a hosted domain's own
   * servers) or "external" (anything else, e.g. DSNs and notices to senders). `domain` is the
   * hosted domain, or "other": the config bounds the label's values.
   */
  delivery: new Histogram({
    name: 'mailmoat_delivery_duration_seconds',
    help: 'Time of one delivery to one recipient domain, by lane (hosted, external), domain (hosted ones, else other) and outcome',
    labelNames: ['lane', 'domain', 'outcome'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  }),
  endToEnd: new Histogram({
    name: 'mailmoat_message_duration_seconds',
    help: 'Time from the 250 to the final state (delivered, released, bounced, quarantined, refused, held), as in the summary line',
    labelNames: ['state'] as const,
    buckets: END_TO_END_BUCKETS,
    registers: [registry],
  }),
  /** Messages held for an administrator because they keep failing (poison); also counted in endToEnd as state="held". */
  poisonHeld: new Counter({
    name: 'mailmoat_poison_held_total',
    help: 'Messages held for an administrator (state held: a message that keeps failing its scan or delivery)',
    registers: [registry],
  }),
};

/** Observes one engine's scan; the promise's result is passed through unchanged. */
export async function timedScan<T>(engine: string, scan: () => Promise<T>): Promise<T> {
  const stop = pipelineMetrics.scan.startTimer({ engine });
  try {
    const result = await scan();
    const failed = typeof result === 'object' && result !== null && 'status' in result && (result as { status: unknown }).status === 'error';
    stop({ outcome: failed ? 'error' : 'ok' });
    return result;
  } catch (err) {
    stop({ outcome: 'error' });
    throw err;
  }
}

/** The lane of a recipient domain: hosted domains are delivered to their own servers. */
export function laneOf(hostedDomains: Record<string, unknown>, domain: string): { lane: 'hosted' | 'external'; domain: string } {
  const d = domain.toLowerCase();
  return Object.hasOwn(hostedDomains, d) ? { lane: 'hosted', domain: d } : { lane: 'external', domain: 'other' };
}

/**
 * Read at each scrape: the oldest message still in the gateway's hands, and whether each engine
 * answers. A role sets its source when it starts (the last one set wins: in one `start` process
 * they all share the same stores and engines).
 */
export interface ScrapeSource {
  /** receivedAt (epoch ms) of the oldest queued/delivering/deferred/releasing message, or undefined. */
  oldestInFlight(): Promise<number | undefined>;
  /** Engine name → check that resolves when it answers (redis, database, clamd, spamd). */
  engines: Record<string, () => Promise<unknown>>;
}
let scrapeSource: ScrapeSource | undefined;
export function setScrapeSource(source: ScrapeSource | undefined): void {
  scrapeSource = source;
}
const ENGINE_CHECK_MS = 2_000;
function answers(check: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ENGINE_CHECK_MS)));
  return Promise.race([
    Promise.resolve()
      .then(check)
      .then(
        () => true,
        () => false,
      ),
    timeout,
  ]).finally(() => clearTimeout(timer));
}

export const scrapeMetrics = {
  oldestAge: new Gauge({
    name: 'mailmoat_queue_oldest_age_seconds',
    help: 'Age of the oldest message not yet in a final state (0: none), read from the message store at scrape time',
    registers: [registry],
    async collect() {
      if (!scrapeSource) return;
      const at = await scrapeSource.oldestInFlight().catch(() => undefined);
      this.set(at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000));
    },
  }),
  engineUp: new Gauge({
    name: 'mailmoat_engine_up',
    help: 'Whether an engine answers (1) or not (0), checked at scrape time: redis, database, clamd, spamd',
    labelNames: ['engine'] as const,
    registers: [registry],
    async collect() {
      if (!scrapeSource) return;
      const names = Object.keys(scrapeSource.engines);
      const up = await Promise.all(names.map((n) => answers(scrapeSource!.engines[n])));
      this.reset();
      names.forEach((engine, i) => this.set({ engine }, up[i] ? 1 : 0));
    },
  }),
};

/** Current value of one counter/gauge series (0 when it has not been touched). */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return hit?.value ?? 0;
}
