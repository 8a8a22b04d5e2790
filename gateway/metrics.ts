// The process's one Prometheus registry, the counters of the SMTP front line and of the workers. Whoever serves
// /metrics (the console) exposes `registry` (e.g. Registry.merge([registry, its own])); every
// role registers its metrics here, never in a registry of its own, so one scrape sees them all.
// Counters only grow; tests compare before/after values (metricValue) because one test process
// may run several gateways.
import { Counter, Gauge, Registry } from 'prom-client';

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

/** Current value of one counter/gauge series (0 when it has not been touched). */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return hit?.value ?? 0;
}
