// Reading form fields and query parameters defensively: a field can be missing, repeated (an
// array), a multipart part ({ value }), or far too long. Nothing here trusts the browser.

type Body = Record<string, unknown> | undefined | null;

function raw(v: unknown): unknown {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'value' in v ? (v as { value: unknown }).value : v;
}

/** One string field (the first if repeated), clipped to `max` characters; "" when absent. */
export function field(body: Body, name: string, max = 1000): string {
  let v = raw(body?.[name]);
  if (Array.isArray(v)) v = raw(v[0]);
  return typeof v === 'string' ? v.slice(0, max) : '';
}

/** All values of a repeated field (checkboxes), each clipped, at most `limit` of them. */
export function fields(body: Body, name: string, max = 200, limit = 500): string[] {
  const v = body?.[name];
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list
    .map(raw)
    .filter((x): x is string => typeof x === 'string')
    .slice(0, limit)
    .map((x) => x.slice(0, max));
}

/** A date "YYYY-MM-DD" as the UTC epoch ms of that day's start (or of the next day with endOfDay). */
export function parseDay(s: string, endOfDay = false): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return undefined;
  const t = Date.parse(`${s}T00:00:00Z`);
  return Number.isNaN(t) ? undefined : t + (endOfDay ? 86_400_000 : 0);
}

export function parseNumber(s: string): number | undefined {
  if (!/^-?\d+(\.\d+)?$/.test(s.trim())) return undefined;
  return Number(s);
}

export function pageOf(s: string): number {
  const n = Number.parseInt(s, 10);
  return Number.isInteger(n) && n >= 1 && n <= 100_000 ? n : 1;
}

/**
 * Message ids: a ULID (26 characters), and the ids the gateway derives from one — a split-off
 * copy `<id>-2` (pipeline/scan.ts), a notice `<id>-n1` (pipeline/notify.ts). Anything else is not
 * looked up at all.
 */
export const MESSAGE_ID = /^[0-9A-Za-z]{10,64}(-[0-9A-Za-z]{1,16}){0,3}$/;
