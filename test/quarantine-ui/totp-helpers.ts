// Helpers for the second-factor tests: the console's clock moved by whole TOTP steps, codes from a
// key, and enrolment through the pages as a user does it.
import { expect } from 'vitest';
import { Secret, TOTP } from 'otpauth';
import type { Client, Harness } from './harness.ts';

export const STEP = 30_000;

/** A clock for the console: a step's start + 10 s, moved by whole steps. */
export function clock(h: Harness) {
  let t = Math.floor(Date.now() / STEP) * STEP + 10_000;
  h.deps.now = () => t;
  return {
    get now() {
      return t;
    },
    next(steps = 1) {
      t += steps * STEP;
    },
  };
}

export const code = (secret: string, at: number, stepOffset = 0) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at + stepOffset * STEP });

/** Sets TOTP up for a logged-in client: the key from the page, a code from it, the codes shown once. */
export async function enrol(c: Client, now: number): Promise<{ secret: string; codes: string[]; page: string }> {
  expect((await c.post('/account/totp/begin', {}, { csrfFrom: '/account/totp' })).statusCode).toBe(303);
  const page = await c.get('/account/totp');
  const secret = /class="secret mono totp-secret">([A-Z2-7 ]+)</.exec(page.body)![1]!.replace(/ /g, '');
  const res = await c.post('/account/totp/confirm', { code: code(secret, now) }, { csrfFrom: '/account/totp' });
  expect(res.statusCode).toBe(200);
  const codes = [...res.body.matchAll(/<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})<\/li>/g)].map((m) => m[1]!);
  return { secret, codes, page: page.body };
}

export async function auditOf(h: Harness, action: string) {
  return (await h.audit.list({ action, limit: 50 })).rows.map((r) => ({ actor: r.actor, outcome: r.outcome, target: r.target, detail: r.detail }));
}
