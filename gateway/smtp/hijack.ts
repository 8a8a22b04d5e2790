// Issue 18, hijack detection: per account, in Redis (so every node counts together), the messages
// and the distinct recipients of each window; when the current window jumps far above the
// account's own baseline (rules/hijack.ts) the account is flagged once per window: a metric, a
// warning in the log, a mail to the sender domain's administrator, and by option a suspension
// (550 5.7.1 at MAIL) until an administrator lifts it (`mailmoat relay lift ACCOUNT`).
import type { Cluster, Redis } from 'ioredis';
import { Counter } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { SubmissionConfig } from '../config/submission.ts';
import type { Logger } from '../log.ts';
import { registry } from '../metrics.ts';
import { decideHijack, decideSpamShare } from '../../rules/hijack.ts';
import { replies } from '../../rules/replies.ts';
import type { OutboundLimits, Sender } from './outbound-limits.ts';
import type { NoticeSender } from './ports.ts';

export const hijackMetrics = {
  flagged: new Counter({
    name: 'mailmoat_outbound_hijack_flags_total',
    help: 'Accounts flagged for sending far above their own baseline, by measure',
    labelNames: ['measure'] as const,
    registers: [registry],
  }),
};

type Measure = 'messages' | 'recipients' | 'spam';
type HijackOptions = { prefix: string; logger: Logger; config: Pick<Config, 'hostname' | 'domains'>; sendNotice: NoticeSender; now?: () => number };
const suspendedKey = (prefix: string, account: string) => `${prefix}:hj:suspended:${account.toLowerCase()}`;

/** Lifts a suspension; false when the account was not suspended. */
export async function liftSuspension(redis: Redis | Cluster, prefix: string, account: string): Promise<boolean> {
  return (await redis.del(suspendedKey(prefix, account))) > 0;
}

/** The sending limits with hijack detection around them: a suspended account is refused first; what passes is counted. */
export function withHijackWatch(limits: OutboundLimits, redis: Redis | Cluster, cfg: SubmissionConfig['hijack'], o: HijackOptions): OutboundLimits {
  if (!cfg.enabled) return limits;
  const now = o.now ?? Date.now;
  const key = (measure: Measure, account: string, window: number) => `${o.prefix}:hj:${measure}:${account.toLowerCase()}:${window}`;
  const ttl = (cfg.baselineWindows + 2) * cfg.windowSec;

  const observe = async (who: Sender, measure: Measure, recipient?: string): Promise<void> => {
    const window = Math.floor(now() / 1000 / cfg.windowSec);
    const current = key(measure, who.account, window);
    const tx = redis.multi();
    if (measure === 'messages') tx.incr(current);
    else tx.pfadd(current, recipient!.toLowerCase());
    tx.expire(current, ttl);
    await tx.exec();
    const count = measure === 'messages' ? Number(await redis.get(current)) : await redis.pfcount(current);
    const history = await Promise.all(
      Array.from({ length: cfg.baselineWindows }, (_, i) => key(measure, who.account, window - 1 - i)).map((k) =>
        measure === 'messages' ? redis.get(k).then((v) => Number(v ?? 0)) : redis.pfcount(k),
      ),
    );
    const d = decideHijack(count, history, cfg);
    if (!d.flagged) return;
    const what = `${count} ${measure === 'messages' ? 'messages' : 'distinct recipients'} in ${cfg.windowSec} s, against a baseline of ${d.baseline.toFixed(1)}`;
    await flagOnce(redis, cfg, o, who, measure, window, what, { count, baseline: d.baseline });
  };

  // Detection is advisory: its own failure is logged and never refuses mail (the limits fail closed).
  const safely = (p: Promise<void>) => p.catch((err: unknown) => o.logger.error({ err }, 'hijack detection failed'));

  return {
    ...limits,
    async message(who) {
      const suspended = await redis.get(suspendedKey(o.prefix, who.account)).catch(() => 'error' as const);
      if (suspended === 'error') return replies.limitsUnavailable();
      if (suspended) return replies.accountSuspended(who.account);
      const refusal = await limits.message(who);
      if (!refusal) await safely(observe(who, 'messages'));
      return refusal;
    },
    async recipient(who, recipient) {
      const refusal = await limits.recipient(who, recipient);
      if (!refusal && recipient) await safely(observe(who, 'recipients', recipient));
      return refusal;
    },
  };
}

/**
 * Flags an account once per measure and window, whichever node sees it first: the metric, a
 * warning, the suspension (by option) and a mail to the sender domain's administrator.
 */
async function flagOnce(
  redis: Redis | Cluster,
  cfg: SubmissionConfig['hijack'],
  o: HijackOptions,
  who: Pick<Sender, 'account' | 'domain'>,
  measure: Measure,
  window: number,
  what: string,
  facts: Record<string, number>,
): Promise<void> {
  const first = await redis.set(`${o.prefix}:hj:flag:${measure}:${who.account.toLowerCase()}:${window}`, '1', 'EX', cfg.windowSec * 2, 'NX');
  if (first !== 'OK') return;
  hijackMetrics.flagged.inc({ measure });
  o.logger.warn(
    { account: who.account, domain: who.domain, measure, ...facts, suspended: cfg.suspend },
    `possible account hijack: ${measure === 'spam' ? 'its outbound mail turned to spam' : 'sending far above its baseline'}`,
  );
  if (cfg.suspend) await redis.set(suspendedKey(o.prefix, who.account), JSON.stringify({ at: (o.now ?? Date.now)(), why: what }));
  if (!cfg.notifyAdmin || !who.domain) return;
  const to = o.config.domains[who.domain]?.policy?.adminAddress ?? `postmaster@${who.domain}`;
  const text = [
    `This is the mail gateway at ${o.config.hostname}.`,
    '',
    `The account ${who.account} sent ${what}.`,
    'Its password may have been stolen.',
    cfg.suspend
      ? `The account is suspended: it cannot send until an administrator runs \`mailmoat relay lift ${who.account}\`.`
      : 'It can still send: change its password if this was not expected.',
  ].join('\n');
  await o.sendNotice({ to, subject: `Unusual sending by ${who.account}`, text, reason: `possible hijack of ${who.account}`, about: who.account });
}

/**
 * The scan side of hijack detection (issue 18 point 4, "or whose outbound spam score rises"): each
 * submitted message's verdict counts per account and window; a spam share past the policy
 * (rules/hijack.ts decideSpamShare) flags the account. Undefined when detection is off.
 */
export function watchOutboundSpam(
  redis: Redis | Cluster,
  cfg: SubmissionConfig['hijack'],
  o: HijackOptions,
): ((who: Pick<Sender, 'account' | 'domain'>, spam: boolean) => Promise<void>) | undefined {
  if (!cfg.enabled || cfg.spamShare === 0) return undefined;
  const now = o.now ?? Date.now;
  return async (who, spam) => {
    const window = Math.floor(now() / 1000 / cfg.windowSec);
    const key = (what: string) => `${o.prefix}:hj:${what}:${who.account.toLowerCase()}:${window}`;
    const tx = redis
      .multi()
      .incr(key('scanned'))
      .expire(key('scanned'), cfg.windowSec * 2);
    if (spam) tx.incr(key('spam')).expire(key('spam'), cfg.windowSec * 2);
    await tx.exec();
    const [scanned, spamCount] = (await redis.mget(key('scanned'), key('spam'))).map((v) => Number(v ?? 0));
    const d = decideSpamShare(spamCount!, scanned!, cfg);
    if (!d.flagged) return;
    const what = `${spamCount} spam of ${scanned} messages scanned in ${cfg.windowSec} s (${Math.round(d.share * 100)} %)`;
    await flagOnce(redis, cfg, o, who, 'spam', window, what, { spam: spamCount!, scanned: scanned! });
  };
}
