// ApiTokenStore: bearer tokens of the REST API (quarantine-ui/api/). A token is shown once, when
// it is made; only its SHA-256 is stored (a token is 32 random bytes, so a plain hash cannot be
// guessed back, and a lookup by hash needs no per-row work like a password's scrypt).
// A token has a role (superadmin or domainadmin) and, for a domain admin token, its domains; the
// console (quarantine-ui/routes/tokens.ts) decides who may make which. Revoked tokens stay listed.
import { createHash, randomBytes } from 'node:crypto';
import { q, type Sql } from './sql.ts';

export type TokenRole = 'superadmin' | 'domainadmin';

export interface ApiToken {
  id: number;
  name: string;
  role: TokenRole;
  domains: string[];
  /** The account that made it: the token lives only while that account is enabled. */
  createdBy: number;
  createdByName: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface ApiTokenStore {
  /** Makes a token; `secret` is the bearer string, returned only here. */
  create(t: { name: string; role: TokenRole; domains: string[]; createdBy: number; createdByName: string }): Promise<{ token: ApiToken; secret: string }>;
  /** The live (not revoked) token with this bearer string; notes its use. */
  verify(secret: string): Promise<ApiToken | undefined>;
  get(id: number): Promise<ApiToken | undefined>;
  list(): Promise<ApiToken[]>;
  revoke(id: number): Promise<boolean>;
}

interface Row {
  id: number;
  name: string;
  role: TokenRole;
  domains: string;
  created_by: number;
  created_by_name: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

const COLUMNS = q`id, name, role, domains, created_by, created_by_name, created_at, last_used_at, revoked_at`;
const toToken = (r: Row): ApiToken => ({
  id: Number(r.id),
  name: r.name,
  role: r.role,
  domains: JSON.parse(r.domains) as string[],
  createdBy: Number(r.created_by),
  createdByName: r.created_by_name,
  createdAt: Number(r.created_at),
  lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
});

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
/** Recognisable in a leaked-secret scan ("mmt_"), base64url. */
const TOKEN = /^mmt_[A-Za-z0-9_-]{43}$/;

export function openApiTokenStore(sql: Sql, now: () => number = Date.now): ApiTokenStore {
  const get = async (id: number) => {
    const r = await sql.one<Row>(q`SELECT ${COLUMNS} FROM api_tokens WHERE id = ${id}`);
    return r && toToken(r);
  };
  return {
    async create(t) {
      const secret = `mmt_${randomBytes(32).toString('base64url')}`;
      const row = await sql.one<{ id: number }>(
        q`INSERT INTO api_tokens (name, token_hash, role, domains, created_by, created_by_name, created_at)
          VALUES (${t.name}, ${hash(secret)}, ${t.role}, ${JSON.stringify(t.domains)}, ${t.createdBy}, ${t.createdByName}, ${now()}) RETURNING id`,
      );
      return { token: (await get(Number(row!.id)))!, secret };
    },
    async verify(secret) {
      if (!TOKEN.test(secret)) return undefined;
      const r = await sql.one<Row>(q`SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = ${hash(secret)} AND revoked_at IS NULL`);
      if (!r) return undefined;
      await sql.run(q`UPDATE api_tokens SET last_used_at = ${now()} WHERE id = ${r.id}`);
      return toToken(r);
    },
    get,
    async list() {
      return (await sql.all<Row>(q`SELECT ${COLUMNS} FROM api_tokens ORDER BY id DESC`)).map(toToken);
    },
    async revoke(id) {
      return (await sql.run(q`UPDATE api_tokens SET revoked_at = ${now()} WHERE id = ${id} AND revoked_at IS NULL`)) > 0;
    },
  };
}
