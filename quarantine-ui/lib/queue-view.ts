// The queue as a console user may see and touch it, for the queue page (routes/queue.ts) and the
// API (api/numbers.ts), so that both show the same numbers and decide rights the same way.
// A domain admin sees the messages of their domains and may retry those whose every recipient is
// theirs, and flush their own domains; another domain's message or domain is "not found" (the
// caller answers 404 and writes the audit row it is given). Job counts (Redis) and flushing
// everything are the superadmin's: there is one queue for every tenant. End users have no queue.
import type { Account } from '../../gateway/store/accounts.ts';
import { IN_FLIGHT, type MessageRecord, type RecipientScope } from '../../gateway/store/metadata.ts';
import { domainOf } from '../../rules/envelope.ts';
import type { ConsoleDeps } from '../deps.ts';
import { canActOn, canSee, recipientInScope } from '../scope.ts';
import { MESSAGE_ID } from './forms.ts';

/** Messages read (oldest first): the counts say when there are more. */
const READ_LIMIT = 1_000;
const DEFERRED_SHOWN = 100;

export interface QueueUser {
  account: Account;
  scope: RecipientScope;
}

/** An audit row for the caller to write (it adds who and from where). */
export interface QueueAudit {
  action: 'queue-view' | 'queue-retry' | 'queue-flush';
  messageId?: string;
  target?: string;
  outcome: 'ok' | 'denied' | 'failed';
  detail: string;
}

export interface Destination {
  domain: string;
  messages: number;
  recipients: number;
  oldest: number;
  lastError: string;
  lastAt: number;
}

export interface QueueView {
  superadmin: boolean;
  /** Messages per in-flight state: exact for a superadmin, else those read of the user's domains. */
  counts: Record<string, number>;
  truncated: boolean;
  oldest: { id: string; at: number; age: number; status: string } | null;
  destinations: Destination[];
  /** reply: the newest remote reply of the user's pending recipients (a superadmin: else the message's last). */
  shown: { m: MessageRecord; pending: { recipient: string; reply: string }[]; reply: string; canRetry: boolean }[];
  deferredTotal: number;
  canFlush: boolean;
  jobs: Record<string, Record<string, number>> | null;
  jobsError: string | null;
}

type Deps = Pick<ConsoleDeps, 'store' | 'queueCounts' | 'queueOps' | 'now'>;

export async function readQueue(deps: Deps, user: QueueUser): Promise<{ denied: QueueAudit } | QueueView> {
  const { store } = deps;
  if (user.account.role === 'user') return { denied: { action: 'queue-view', outcome: 'denied', detail: 'end users have no queue page' } };
  const superadmin = user.account.role === 'superadmin';
  const records = (await store.inFlight(READ_LIMIT)).filter((m) => canSee(m, user.scope));
  const counts: Record<string, number> = Object.fromEntries(IN_FLIGHT.map((s) => [s, 0]));
  if (superadmin) Object.assign(counts, Object.fromEntries(Object.entries(await store.countByStatus()).filter(([s]) => IN_FLIGHT.includes(s as never))));
  else for (const m of records) counts[m.status] = (counts[m.status] ?? 0) + 1;
  const deferred = records.filter((m) => m.status === 'deferred');
  const destinations = new Map<string, Destination>();
  const shown: QueueView['shown'] = [];
  for (const m of deferred) {
    const pending = (await store.deliveries(m.id)).filter((d) => d.outcome === 'deferred' && recipientInScope(d.recipient, user.scope));
    for (const d of pending) {
      const domain = domainOf(d.recipient);
      const dest = destinations.get(domain) ?? { domain, messages: 0, recipients: 0, oldest: m.receivedAt, lastError: '', lastAt: 0 };
      dest.recipients++;
      dest.oldest = Math.min(dest.oldest, m.receivedAt);
      if (d.at >= dest.lastAt) Object.assign(dest, { lastAt: d.at, lastError: d.reply });
      destinations.set(domain, dest);
    }
    for (const domain of new Set(pending.map((d) => domainOf(d.recipient)))) destinations.get(domain)!.messages++;
    // The message's last reply may be another tenant's remote server speaking of its recipients.
    const reply = pending[0]?.reply ?? (superadmin ? (m.lastReply ?? '') : '');
    if (shown.length < DEFERRED_SHOWN)
      shown.push({
        m,
        pending: pending.map((d) => ({ recipient: d.recipient, reply: d.reply })),
        reply,
        canRetry: canActOn(m, user.scope) && Boolean(deps.queueOps),
      });
  }
  let jobs: QueueView['jobs'] = null;
  let jobsError: string | null = null;
  if (superadmin) {
    try {
      jobs = await deps.queueCounts();
    } catch (err) {
      jobsError = (err as Error).message;
    }
  }
  const oldest = records[0];
  return {
    superadmin,
    counts,
    truncated: records.length >= READ_LIMIT,
    oldest: oldest ? { id: oldest.id, at: oldest.receivedAt, age: Math.max(0, deps.now() - oldest.receivedAt), status: oldest.status } : null,
    destinations: [...destinations.values()].sort((a, b) => b.recipients - a.recipients || a.domain.localeCompare(b.domain)),
    shown,
    deferredTotal: deferred.length,
    canFlush: Boolean(deps.queueOps),
    jobs,
    jobsError,
  };
}

export const mayFlushDomain = (account: Account, domain: string): boolean =>
  account.role === 'superadmin' || (account.role === 'domainadmin' && account.domains.includes(domain));

/**
 * "Retry now" for one message. notFound: missing, or outside the user's scope (the same answer);
 * denied: visible, but some recipient is another tenant's (a retry acts on the whole message);
 * unavailable: this console has no queue operations; failed: the job could not be hurried.
 */
export async function retryQueued(
  deps: Deps,
  user: QueueUser,
  id: string,
): Promise<{ status: 'notFound' | 'denied' | 'unavailable' | 'failed' | 'ok'; message?: MessageRecord; text: string; audit: QueueAudit }> {
  const m = MESSAGE_ID.test(id) && user.account.role !== 'user' ? await deps.store.get(id) : undefined;
  if (!m || !canSee(m, user.scope)) {
    const detail = m ? 'message outside the user’s scope' : 'no such message';
    return { status: 'notFound', text: detail, audit: { action: 'queue-retry', messageId: id.slice(0, 64), outcome: 'denied', detail } };
  }
  const refuse = (status: 'denied' | 'unavailable', text: string) => ({
    status,
    message: m,
    text,
    audit: { action: 'queue-retry' as const, messageId: m.id, outcome: 'denied' as const, detail: text },
  });
  if (!canActOn(m, user.scope)) return refuse('denied', 'recipients outside the user’s scope');
  if (!deps.queueOps) return refuse('unavailable', 'not available in this console');
  const result = await deps.queueOps.retry(m.id);
  const text = result.ok ? result.detail : result.reason;
  return {
    status: result.ok ? 'ok' : 'failed',
    message: m,
    text,
    audit: { action: 'queue-retry', messageId: m.id, outcome: result.ok ? 'ok' : 'failed', detail: text },
  };
}

/** Flush every deferred message (superadmin), or those waiting for one of the user's domains. */
export async function flushQueue(
  deps: Deps,
  user: QueueUser,
  domain: string,
): Promise<{ status: 'notFound' | 'unavailable' | 'ok'; flushed: string[]; skipped: { id: string; reason: string }[]; audit: QueueAudit }> {
  const target = domain || '*';
  const allowed = user.account.role !== 'user' && (domain === '' ? user.account.role === 'superadmin' : mayFlushDomain(user.account, domain));
  if (!allowed) {
    return {
      status: 'notFound',
      flushed: [],
      skipped: [],
      audit: {
        action: 'queue-flush',
        target,
        outcome: 'denied',
        detail: domain ? 'domain outside the user’s scope' : 'only a superadmin flushes the whole queue',
      },
    };
  }
  if (!deps.queueOps)
    return {
      status: 'unavailable',
      flushed: [],
      skipped: [],
      audit: { action: 'queue-flush', target, outcome: 'failed', detail: 'not available in this console' },
    };
  // A domain admin's flush skips messages still pending for another tenant, as retry does.
  const { flushed, skipped } = await deps.queueOps.flush({
    ...(domain ? { domain } : {}),
    ...(user.account.role === 'superadmin' ? {} : { within: user.account.domains }),
  });
  return {
    status: 'ok',
    flushed,
    skipped,
    audit: { action: 'queue-flush', target, outcome: 'ok', detail: `${flushed.length} tried again now, ${skipped.length} skipped` },
  };
}
