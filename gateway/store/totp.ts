// TotpStore: the second factor of local console accounts (TOTP, RFC 6238) and their recovery codes.
// Contract: the store keeps what it is given and never sees a secret or a recovery code in clear —
// the console seals the secret and hashes the codes before they get here (quarantine-ui/lib/totp.ts).
// The two single-use rules are each one conditional UPDATE, so two nodes (or two tabs) offering the
// same code at the same moment cannot both succeed:
//   - a time step is accepted only if it is newer than the last one accepted (RFC 6238 §5.2: a
//     verifier must not accept the same one-time password twice);
//   - a recovery code is used only while its used_at is empty.
// The tables are in migrations.ts (0010_totp).
import { q, type Sql } from './sql.ts';

export interface TotpRecord {
  accountId: number;
  /** The sealed secret (opaque here). */
  sealed: string;
  /** null: enrolment begun, not yet confirmed with a code. */
  enabledAt: number | null;
  /** The newest time step accepted (0: none yet). */
  lastStep: number;
  createdAt: number;
}

export interface TotpStore {
  get(accountId: number): Promise<TotpRecord | undefined>;
  /** Begins an enrolment with a new sealed secret; false (and nothing changed) when TOTP is already on. */
  begin(accountId: number, sealed: string): Promise<boolean>;
  /**
   * Switches TOTP on after the code of `step` was checked against the pending secret, with a new set
   * of recovery codes; false when there is no pending enrolment (TOTP already on, or reset meanwhile).
   */
  enable(accountId: number, step: number, recoveryHashes: string[]): Promise<boolean>;
  /** Accepts a time step once: true only when TOTP is on and `step` is newer than the last one accepted. */
  useStep(accountId: number, step: number): Promise<boolean>;
  /** Uses a recovery code once: true only when it is one of the account's and unused. */
  useRecoveryCode(accountId: number, hash: string): Promise<boolean>;
  replaceRecoveryCodes(accountId: number, hashes: string[]): Promise<void>;
  recoveryCodesLeft(accountId: number): Promise<number>;
  /** Removes the second factor and its recovery codes; false when there was none. */
  remove(accountId: number): Promise<boolean>;
  /** The accounts whose TOTP is on (the users page). */
  enabledAccounts(): Promise<number[]>;
}

interface Row {
  account_id: number;
  secret: string;
  enabled_at: number | null;
  last_step: number;
  created_at: number;
}

const toRecord = (r: Row): TotpRecord => ({
  accountId: Number(r.account_id),
  sealed: r.secret,
  enabledAt: r.enabled_at === null ? null : Number(r.enabled_at),
  lastStep: Number(r.last_step),
  createdAt: Number(r.created_at),
});

export function openTotpStore(sql: Sql, now: () => number = Date.now): TotpStore {
  const insertCodes = async (db: Sql, accountId: number, hashes: string[]) => {
    await db.run(q`DELETE FROM console_recovery_codes WHERE account_id = ${accountId}`);
    for (const h of hashes) await db.run(q`INSERT INTO console_recovery_codes (account_id, code_hash) VALUES (${accountId}, ${h})`);
  };
  return {
    async get(accountId) {
      const r = await sql.one<Row>(q`SELECT account_id, secret, enabled_at, last_step, created_at FROM console_totp WHERE account_id = ${accountId}`);
      return r && toRecord(r);
    },
    async begin(accountId, sealed) {
      return sql.transaction(async (tx) => {
        const r = await tx.one<{ enabled_at: number | null }>(q`SELECT enabled_at FROM console_totp WHERE account_id = ${accountId}`);
        if (r && r.enabled_at !== null) return false;
        await tx.run(q`DELETE FROM console_totp WHERE account_id = ${accountId}`);
        await tx.run(q`INSERT INTO console_totp (account_id, secret, enabled_at, last_step, created_at) VALUES (${accountId}, ${sealed}, NULL, 0, ${now()})`);
        return true;
      });
    },
    async enable(accountId, step, recoveryHashes) {
      return sql.transaction(async (tx) => {
        const changed = await tx.run(
          q`UPDATE console_totp SET enabled_at = ${now()}, last_step = ${step} WHERE account_id = ${accountId} AND enabled_at IS NULL`,
        );
        if (changed === 0) return false;
        await insertCodes(tx, accountId, recoveryHashes);
        return true;
      });
    },
    async useStep(accountId, step) {
      return (
        (await sql.run(q`UPDATE console_totp SET last_step = ${step} WHERE account_id = ${accountId} AND enabled_at IS NOT NULL AND last_step < ${step}`)) === 1
      );
    },
    async useRecoveryCode(accountId, hash) {
      return (
        (await sql.run(q`UPDATE console_recovery_codes SET used_at = ${now()} WHERE account_id = ${accountId} AND code_hash = ${hash} AND used_at IS NULL`)) ===
        1
      );
    },
    async replaceRecoveryCodes(accountId, hashes) {
      await sql.transaction((tx) => insertCodes(tx, accountId, hashes));
    },
    async recoveryCodesLeft(accountId) {
      const r = await sql.one<{ n: number }>(q`SELECT count(*) AS n FROM console_recovery_codes WHERE account_id = ${accountId} AND used_at IS NULL`);
      return Number(r?.n ?? 0);
    },
    async remove(accountId) {
      return sql.transaction(async (tx) => {
        await tx.run(q`DELETE FROM console_recovery_codes WHERE account_id = ${accountId}`);
        return (await tx.run(q`DELETE FROM console_totp WHERE account_id = ${accountId}`)) > 0;
      });
    },
    async enabledAccounts() {
      return (await sql.all<{ account_id: number }>(q`SELECT account_id FROM console_totp WHERE enabled_at IS NOT NULL ORDER BY account_id`)).map((r) =>
        Number(r.account_id),
      );
    },
  };
}
