// Issue 18: limits on outbound mail that hold across sessions and machines, in Redis through
// rate-limiter-flexible (its counters are one atomic script per hit, with the window as the key's
// TTL): messages per hour and per day and recipients per hour, per account and per sender domain;
// and the AUTH lockout, per username and per client address, with a back-off (each lockout within
// a day twice the one before). Fail closed: a Redis error refuses with a 4xx, never lets through.
import type { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { Counter } from 'prom-client';
import type { SubmissionConfig } from '../config/submission.ts';
import type { Logger } from '../log.ts';
import { registry } from '../metrics.ts';
import { clientKey } from '../../rules/frontline.ts';
import { replies, type SmtpReply } from '../../rules/replies.ts';

export interface Sender {
  /** The account, or "network <cidr>" for a relay-network client. */
  account: string;
  /** The envelope sender's domain ('' for the null sender). */
  domain: string;
}

export interface OutboundLimits {
  /** At MAIL: one message for the account and the sender domain; the refusal when a limit is reached. */
  message(who: Sender): Promise<SmtpReply | null>;
  /** At RCPT: one recipient. */
  recipient(who: Sender, recipient?: string): Promise<SmtpReply | null>;
  /** Before the password is checked: the lockout refusal, if the username or address is locked. */
  authLocked(ip: string, username: string): Promise<SmtpReply | null>;
  authFailed(ip: string, username: string): Promise<void>;
  authSucceeded(ip: string, username: string): Promise<void>;
}

export const outboundMetrics = {
  limited: new Counter({
    name: 'mailmoat_outbound_limited_total',
    help: 'Outbound transactions or recipients refused by a sending limit',
    labelNames: ['limit'] as const,
    registers: [registry],
  }),
  authLockouts: new Counter({
    name: 'mailmoat_auth_lockouts_total',
    help: 'AUTH lockouts started, by what was locked (account, ip)',
    labelNames: ['by'] as const,
    registers: [registry],
  }),
  authFailures: new Counter({ name: 'mailmoat_auth_failures_total', help: 'Failed AUTH attempts on the submission listeners', registers: [registry] }),
};

interface Cap {
  /** "account alice@a.test: 100 messages per hour" */
  describe(key: string): string;
  limiter: RateLimiterRedis;
  scope: 'account' | 'domain';
  label: string;
}

const HOUR = 3600;
const DAY = 86_400;

/** How long a limiter waits for a connection still being set up (start-up, a reconnect) before failing closed. */
const READY_WAIT_MS = 2_000;

/**
 * Resolves once the client is ready, or after `ms` (then the limiter's rejectIfRedisNotReady fails
 * closed). Without it the first AUTH after a start, on a loaded machine, met a client still
 * connecting and got 454 although Redis was fine.
 */
function untilReady(redis: Redis | Cluster, ms: number): Promise<void> {
  if (redis.status === 'ready' || redis.status === 'end' || redis.status === 'close') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

export function redisOutboundLimits(
  redis: Redis | Cluster,
  cfg: Pick<SubmissionConfig, 'limits' | 'authLockout'>,
  o: { prefix: string; logger: Logger },
): OutboundLimits {
  const make = (name: string, points: number, duration: number) =>
    new RateLimiterRedis({ storeClient: redis, keyPrefix: `${o.prefix}:rl:${name}`, points, duration, rejectIfRedisNotReady: true });
  const caps = (kind: 'messages' | 'recipients'): Cap[] => {
    const list: Cap[] = [];
    for (const scope of ['account', 'domain'] as const) {
      const c = scope === 'account' ? cfg.limits.perAccount : cfg.limits.perDomain;
      const add = (points: number, duration: number, per: string) => {
        if (points > 0)
          list.push({
            scope,
            label: `${scope}.${kind}PerHour`.replace('Hour', per === 'day' ? 'Day' : 'Hour'),
            limiter: make(`${scope}:${kind}:${per}`, points, duration),
            describe: (key) => `${scope} ${key}: ${points} ${kind} per ${per}`,
          });
      };
      if (kind === 'messages') {
        add(c.messagesPerHour, HOUR, 'hour');
        add(c.messagesPerDay, DAY, 'day');
      } else add(c.recipientsPerHour, HOUR, 'hour');
    }
    return list;
  };
  const messageCaps = caps('messages');
  const recipientCaps = caps('recipients');

  const consume = async (list: Cap[], who: Sender): Promise<SmtpReply | null> => {
    await untilReady(redis, READY_WAIT_MS);
    let refusal: SmtpReply | null = null;
    for (const cap of list) {
      const key = cap.scope === 'account' ? who.account : who.domain;
      if (!key) continue;
      try {
        await cap.limiter.consume(key.toLowerCase());
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) {
          o.logger.error({ err }, 'sending limits: Redis failed; refusing with 451');
          return replies.limitsUnavailable();
        }
        outboundMetrics.limited.inc({ limit: cap.label });
        o.logger.warn({ account: who.account, domain: who.domain, limit: cap.describe(key) }, 'sending limit reached');
        refusal ??= replies.sendingLimit(cap.describe(key), new Date(Date.now() + err.msBeforeNext));
      }
    }
    return refusal;
  };

  const { authLockout: lock } = cfg;
  const failures = {
    account: lock.maxFailuresPerAccount > 0 ? make('auth:account', lock.maxFailuresPerAccount, lock.windowSec) : undefined,
    ip: lock.maxFailuresPerIp > 0 ? make('auth:ip', lock.maxFailuresPerIp, lock.windowSec) : undefined,
  };
  // How many lockouts a key had within a day: the back-off exponent.
  const lockouts = make('auth:lockouts', 1_000_000, DAY);
  const keysOf = (ip: string, username: string) => ({ account: username.toLowerCase(), ip: clientKey(ip) });

  return {
    message: (who) => consume(messageCaps, who),
    recipient: (who) => consume(recipientCaps, who),
    async authLocked(ip, username) {
      await untilReady(redis, READY_WAIT_MS);
      const keys = keysOf(ip, username);
      for (const by of ['ip', 'account'] as const) {
        const limiter = failures[by];
        const res = limiter ? await limiter.get(keys[by]).catch(() => 'error' as const) : null;
        if (res === 'error') return { code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' };
        if (res && res.consumedPoints > limiter!.points)
          return replies.authLockedOut(by === 'ip' ? `your address ${ip}` : username, Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
      }
      return null;
    },
    async authFailed(ip, username) {
      outboundMetrics.authFailures.inc();
      await untilReady(redis, READY_WAIT_MS);
      const keys = keysOf(ip, username);
      for (const by of ['account', 'ip'] as const) {
        const limiter = failures[by];
        if (!limiter) continue;
        const res = await limiter.consume(keys[by]).catch((e: unknown) => (e instanceof RateLimiterRes ? e : undefined));
        if (!res || res.consumedPoints < limiter.points) continue;
        const n = (await lockouts.consume(`${by}:${keys[by]}`).catch((e: unknown) => (e instanceof RateLimiterRes ? e : undefined)))?.consumedPoints ?? 1;
        const seconds = Math.min(lock.maxLockoutSec, lock.lockoutSec * 2 ** (n - 1));
        await limiter.block(keys[by], seconds);
        outboundMetrics.authLockouts.inc({ by });
        o.logger.warn({ by, key: keys[by], seconds, lockout: n }, 'AUTH lockout');
      }
    },
    async authSucceeded(_ip, username) {
      // A right password ends the username's run of failures (not the address's: one address may
      // try many usernames, one of them its own).
      await untilReady(redis, READY_WAIT_MS);
      await failures.account?.delete(username.toLowerCase()).catch(() => undefined);
    },
  };
}
