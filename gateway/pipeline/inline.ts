// Inline verdicts (beyond MailScanner): after DATA the SMTP session may wait, up to a deadline,
// for the scan worker's verdict, so that a message every recipient's policy refuses is refused
// with 550/554 and its reason (the sender learns of it, nothing sits in a quarantine). Past the
// deadline the message is accepted as usual and handled after the queue.
//
// The handshake is one Redis key per message, shared by the SMTP and worker processes (also on
// different machines), with compare-and-set scripts so that exactly one side decides:
//   SMTP, after the scan job is queued:  SET key "waiting" NX; wait for a publish or the deadline;
//                                        at the deadline CAS "waiting" → "accepted".
//   worker, when every recipient refuses: CAS "waiting" → "refused <reply>"; only if that wins
//                                        does it drop the message (the SMTP side refuses it);
//                                        else it handles the message as accepted (a `reject`
//                                        becomes a quarantine: nothing is lost after a 250).
//   worker, otherwise:                   "accepted" (a session still waiting answers 250 now).
// A session that never waited (inline off, no policy refuses, a rescan after a restart) has no
// key in "waiting", so the worker can never drop a message whose sender was told 250.
import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { assertPrefixFits, openRedis, type RedisTarget } from '../store/queue.ts';
import type { Envelope } from '../spool/spool.ts';
import { SmtpRefusal, type SmtpReply } from '../../rules/replies.ts';
import { mayRefuse } from '../../rules/actions.ts';
import { recipientPolicies } from './policy.ts';

export interface InlineVerdicts {
  /** SMTP side: waits for the verdict of a queued message; a reply to refuse with, or null to accept. */
  wait(id: string, deadlineMs: number): Promise<SmtpReply | null>;
  /**
   * Worker side: decides a refusal if the session is still waiting. true: the message is refused
   * (now, or by an earlier attempt of this job) — drop it, then `announce`; false: handle it as
   * accepted.
   */
  refuse(id: string, reply: SmtpReply): Promise<boolean>;
  /** Worker side: tells a waiting session that its verdict is in (after the refused message was dropped). */
  announce(id: string): Promise<void>;
  /** Worker side: the verdict is no refusal; a waiting session answers at once. */
  accept(id: string): Promise<void>;
  close(): Promise<void>;
}

/** Kept after the deadline so that a late worker still finds the decision. */
const KEY_GRACE_MS = 10 * 60_000;

// KEYS[1] = key; ARGV[1] = expected, ARGV[2] = new value, ARGV[3] = ttl ms. Returns the value now held.
const CAS = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or (ARGV[1] == '' and not v) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return ARGV[2]
end
return v or ''
`;

function decode(value: string | null): SmtpReply | null | 'waiting' {
  if (value === 'waiting') return 'waiting';
  if (value && value.startsWith('refused ')) return JSON.parse(value.slice('refused '.length)) as SmtpReply;
  return null;
}

function connect(target: RedisTarget): Redis | Cluster {
  return openRedis(target, 'client');
}

export function redisInlineVerdicts(target: RedisTarget, o: { prefix: string; logger: Logger }): InlineVerdicts {
  // The key and channel live under the queues' prefix: with a hash tag ("{mailmoat}") they share
  // the queues' slot on a Redis Cluster (the channel is cluster-wide anyway).
  assertPrefixFits(target, o.prefix);
  const cmd = connect(target);
  let sub: Redis | Cluster | undefined;
  const channel = `${o.prefix}:inline`;
  const key = (id: string) => `${o.prefix}:inline:${id}`;
  const waiters = new Map<string, () => void>();
  cmd.on('error', (err) => o.logger.debug({ err }, 'inline verdicts: redis error'));
  const cas = (id: string, expected: string, value: string, ttl: number) => cmd.eval(CAS, 1, key(id), expected, value, String(ttl)) as Promise<string>;

  async function subscriber(): Promise<void> {
    if (sub) return;
    sub = connect(target);
    sub.on('error', (err) => o.logger.debug({ err }, 'inline verdicts: redis subscriber error'));
    sub.on('message', (_ch: string, id: string) => waiters.get(id)?.());
    await sub.subscribe(channel);
  }

  async function settle(id: string, expected: string, value: string): Promise<string> {
    const now = await cas(id, expected, value, KEY_GRACE_MS);
    if (now === value) await cmd.publish(channel, id);
    return now;
  }

  return {
    async wait(id, deadlineMs) {
      let wake: () => void = () => {};
      const woken = new Promise<void>((resolve) => (wake = resolve));
      let timer: NodeJS.Timeout | undefined;
      try {
        // Registered first (one round trip), subscribed after, then looked at again: a decision
        // published in between is not missed.
        const set = await cmd.set(key(id), 'waiting', 'PX', deadlineMs + KEY_GRACE_MS, 'NX');
        if (set === 'OK') {
          waiters.set(id, wake);
          await subscriber();
          if ((await cmd.get(key(id))) === 'waiting') {
            await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
          }
        }
        // Decide now if nobody has: "waiting" becomes "accepted" (the deadline passed).
        const state = decode(await cas(id, 'waiting', 'accepted', KEY_GRACE_MS));
        return state === 'waiting' ? null : state;
      } finally {
        clearTimeout(timer);
        waiters.delete(id);
      }
    },
    async refuse(id, reply) {
      return (await cas(id, 'waiting', `refused ${JSON.stringify(reply)}`, KEY_GRACE_MS)).startsWith('refused ');
    },
    async announce(id) {
      await cmd.publish(channel, id);
    },
    async accept(id) {
      // Also when there is no key yet: a session that starts waiting later answers at once.
      const now = await settle(id, 'waiting', 'accepted');
      if (now === '') await cas(id, '', 'accepted', KEY_GRACE_MS);
    },
    async close() {
      cmd.disconnect();
      sub?.disconnect();
    },
  };
}

export interface InlineDeps {
  config: Config;
  logger: Logger;
  /** Absent: inline verdicts off (the message is accepted as usual). */
  inline?: InlineVerdicts;
}

/**
 * THE call in the SMTP front (gateway/smtp/server.ts receiveMessage), once the message is spooled
 * and its scan queued: waits for the verdict when inline verdicts are on and every recipient's
 * policy may refuse, and throws SmtpRefusal when the worker refused it. Any failure here (Redis
 * gone) accepts the message as usual: it is safely queued already.
 */
export async function refuseIfInlineVerdict(
  deps: InlineDeps,
  envelope: Pick<Envelope, 'id' | 'mailFrom' | 'clientIp' | 'rcptTo' | 'submitted'>,
): Promise<void> {
  const { config, inline, logger } = deps;
  if (!inline || !config.inline.enabled) return;
  let reply: SmtpReply | null;
  try {
    // Whether a verdict could refuse depends on the policies alone (mayRefuse), never on the
    // allow/block lists: they are not read here (a database query per accepted message saved).
    const policies = await recipientPolicies(config, envelope, undefined);
    if (!mayRefuse(policies.map((p) => p.policy))) return;
    reply = await inline.wait(envelope.id, config.inline.deadlineMs);
  } catch (err) {
    logger.warn({ id: envelope.id, err }, 'inline verdict wait failed; accepting as usual');
    return;
  }
  if (reply) {
    // The worker that decided writes the message's summary line (gateway/summary.ts).
    logger.debug({ id: envelope.id, reply: `${reply.code} ${reply.enhanced} ${reply.text}` }, 'message refused by inline verdict');
    throw new SmtpRefusal(reply);
  }
}
