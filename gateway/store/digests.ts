// DigestStore: the single-use release tokens of quarantine digests, and which digest runs
// happened (one per day, even with several console processes). A token row binds one message
// to one recipient and an expiry; the link carries only an HMAC-signed token id, and `use` is a
// compare-and-set (one conditional UPDATE), so a link works once, whichever process or machine
// serves it. The tables are in migrations.ts; the queries run on SQLite or PostgreSQL (sql.ts).
import { q, type Sql } from './sql.ts';

export interface ReleaseToken {
  id: string;
  messageId: string;
  recipient: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface DigestStore {
  addToken(t: Omit<ReleaseToken, 'usedAt' | 'createdAt'>): Promise<void>;
  getToken(id: string): Promise<ReleaseToken | undefined>;
  /** Marks the token used; false when it was used already or has expired. */
  useToken(id: string): Promise<boolean>;
  /** Claims the digest run for a day ("2026-11-24"); false when another process already did. */
  claimRun(day: string): Promise<boolean>;
  /** Messages already listed in a digest to this recipient (to list each message once). */
  alreadySent(recipient: string, messageIds: string[]): Promise<Set<string>>;
}

interface TokenRow {
  id: string;
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
        q`INSERT INTO digest_tokens (id, message_id, recipient, created_at, expires_at)
          VALUES (${t.id}, ${t.messageId}, ${t.recipient.toLowerCase()}, ${now()}, ${t.expiresAt})`,
      );
    },
    async getToken(id) {
      const r = await sql.one<TokenRow>(q`SELECT id, message_id, recipient, created_at, expires_at, used_at FROM digest_tokens WHERE id = ${id}`);
      return (
        r && {
          id: r.id,
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
    async alreadySent(recipient, ids) {
      const sent = new Set<string>();
      const unique = [...new Set(ids)];
      for (let i = 0; i < unique.length; i += IN_SLICE) {
        const slice = unique.slice(i, i + IN_SLICE);
        const rows = await sql.all<{ message_id: string }>(
          q`SELECT DISTINCT message_id FROM digest_tokens WHERE recipient = ${recipient.toLowerCase()} AND message_id IN (${q.join(slice)})`,
        );
        for (const r of rows) sent.add(r.message_id);
      }
      return sent;
    },
  };
}
