// DigestStore: the single-use link tokens of quarantine digests, which digest runs happened (one
// per day, one per notice interval, even with several console processes), and which messages were
// listed to whom (each claimed once). A token row binds one action on one message to one recipient
// and an expiry (a login token has no message: ""); the link carries only an HMAC-signed token id, and `use` is a
// compare-and-set (one conditional UPDATE), so a link works once, whichever process or machine
// serves it. The tables are in migrations.ts; the queries run on SQLite or PostgreSQL (sql.ts).
import { q, type Sql } from './sql.ts';

/** What a link does: release (or request release), allow or block the sender, not spam, or log in. */
export const LINK_ACTIONS = ['release', 'allow', 'block', 'notspam', 'login'] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

export interface ReleaseToken {
  id: string;
  action: LinkAction;
  /** "" for a login link. */
  messageId: string;
  recipient: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface DigestStore {
  /** `action` defaults to release (links issued before 0008_digest_actions are release links). */
  addToken(t: Omit<ReleaseToken, 'usedAt' | 'createdAt' | 'action'> & { action?: LinkAction }): Promise<void>;
  getToken(id: string): Promise<ReleaseToken | undefined>;
  /** Marks the token used; false when it was used already or has expired. */
  useToken(id: string): Promise<boolean>;
  /** Claims the digest run for a day ("2026-11-24") or a notice interval ("notice:<n>"); false when another process already did. */
  claimRun(day: string): Promise<boolean>;
  /** Claims messages for listing to this recipient; returns those no one had claimed (each is listed once). */
  claimListing(recipient: string, messageIds: string[]): Promise<string[]>;
  /** Gives back claims whose digest could not be queued (the next run lists them). */
  releaseListing(recipient: string, messageIds: string[]): Promise<void>;
  /** Forgets notice-interval claims older than `before` (they only matter while their interval runs). */
  pruneRuns(prefix: string, before: number): Promise<void>;
  /** Messages already listed in a digest to this recipient (to list each message once). */
  alreadySent(recipient: string, messageIds: string[]): Promise<Set<string>>;
}

interface TokenRow {
  id: string;
  action: LinkAction;
  message_id: string;
  recipient: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** IN lists are sent in slices of this many ids (both databases bound the number of parameters). */
const IN_SLICE = 500;

export function openDigestStore(sql: Sql, now: () => number = Date.now): DigestStore {
  return {
    async addToken(t) {
      await sql.run(
        q`INSERT INTO digest_tokens (id, action, message_id, recipient, created_at, expires_at)
          VALUES (${t.id}, ${t.action ?? 'release'}, ${t.messageId}, ${t.recipient.toLowerCase()}, ${now()}, ${t.expiresAt})`,
      );
    },
    async getToken(id) {
      const r = await sql.one<TokenRow>(q`SELECT id, action, message_id, recipient, created_at, expires_at, used_at FROM digest_tokens WHERE id = ${id}`);
      return (
        r && {
          id: r.id,
          action: r.action,
          messageId: r.message_id,
          recipient: r.recipient,
          createdAt: r.created_at,
          expiresAt: r.expires_at,
          usedAt: r.used_at ?? null,
        }
      );
    },
    async useToken(id) {
      // One conditional UPDATE: of two callers (processes, machines) only one changes the row.
      const at = now();
      return (await sql.run(q`UPDATE digest_tokens SET used_at = ${at} WHERE id = ${id} AND used_at IS NULL AND expires_at > ${at}`)) === 1;
    },
    async claimRun(day) {
      return (await sql.run(q`INSERT INTO digest_runs (day, at) VALUES (${day}, ${now()}) ON CONFLICT (day) DO NOTHING`)) === 1;
    },
    async claimListing(recipient, ids) {
      // One INSERT per message: of two consoles claiming at once, only one row goes in.
      const won: string[] = [];
      for (const id of new Set(ids)) {
        if (
          (await sql.run(
            q`INSERT INTO digest_listed (recipient, message_id, at) VALUES (${recipient.toLowerCase()}, ${id}, ${now()}) ON CONFLICT DO NOTHING`,
          )) === 1
        )
          won.push(id);
      }
      return won;
    },
    async releaseListing(recipient, ids) {
      for (let i = 0; i < ids.length; i += IN_SLICE) {
        await sql.run(q`DELETE FROM digest_listed WHERE recipient = ${recipient.toLowerCase()} AND message_id IN (${q.join(ids.slice(i, i + IN_SLICE))})`);
      }
    },
    async pruneRuns(prefix, before) {
      await sql.run(q`DELETE FROM digest_runs WHERE day LIKE ${`${prefix}%`} AND at < ${before}`);
    },
    async alreadySent(recipient, ids) {
      const sent = new Set<string>();
      const unique = [...new Set(ids)];
      for (let i = 0; i < unique.length; i += IN_SLICE) {
        const slice = unique.slice(i, i + IN_SLICE);
        const rows = await sql.all<{ message_id: string }>(
          q`SELECT message_id FROM digest_listed WHERE recipient = ${recipient.toLowerCase()} AND message_id IN (${q.join(slice)})
            UNION SELECT message_id FROM digest_tokens WHERE recipient = ${recipient.toLowerCase()} AND message_id IN (${q.join(slice)})`,
        );
        for (const r of rows) sent.add(r.message_id);
      }
      return sent;
    },
  };
}
