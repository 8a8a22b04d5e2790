// spamd on its own: the same message, sent with the gateway's own spamd adapter (scanSpam over
// SpamdClient), `concurrency` requests in flight, `count` in all. This is the most the gateway
// could get from this spamd, the yardstick for the full path with spamd.
import { SpamdClient, scanSpam } from '../../scanners/spamd.ts';

export interface SpamdLoopResult {
  ok: number;
  failed: number;
  firstError?: string;
  elapsedMs: number;
  rate: number;
  scores: number[];
}

export async function spamdLoop(o: {
  spamd: { host: string; port: number };
  message: Buffer;
  count: number;
  concurrency: number;
  timeoutMs: number;
  /** Stop starting new requests after this long (the rate is then over what finished). */
  budgetMs: number;
}): Promise<SpamdLoopResult> {
  const client = new SpamdClient(o.spamd, { timeoutMs: o.timeoutMs });
  const t0 = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const scores: number[] = [];
  const lane = async () => {
    while (next < o.count && performance.now() - t0 < o.budgetMs) {
      next++;
      const r = await scanSpam(client, o.message, { maxBytes: Number.MAX_SAFE_INTEGER });
      if (r.status === 'scored') {
        ok++;
        if (scores.length < 5) scores.push(r.score);
      } else {
        failed++;
        firstError ??= r.reason;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  const elapsedMs = performance.now() - t0;
  return { ok, failed, ...(firstError ? { firstError } : {}), elapsedMs, rate: (ok * 1000) / elapsedMs, scores };
}
