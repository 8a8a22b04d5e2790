// Our own SPAMC/1.5 client for SpamAssassin's spamd. The `spamc` npm package was rejected: it
// decodes bytes as strings (corrupts 8-bit mail), parses per chunk, and leaks a global between
// calls (docs/dependencies.md §4). Here bytes go in and out untouched, Content-length is always
// sent, and the whole response is read before it is parsed.
import net from 'node:net';
import type { SpamScan } from './types.ts';

export type SpamdAddress = { socketPath: string } | { host: string; port: number };

export interface SpamdOptions {
  /** Budget for one whole request: connect, send, and spamd's last response byte. */
  timeoutMs: number;
  /** Sent as `User:` (per-user preferences and Bayes store, when spamd allows them). */
  user?: string;
}

/** Any failure to get a usable answer. `code` is spamd's sysexits status when it sent one. */
export class SpamdError extends Error {
  override name = 'SpamdError';
  readonly code: number | undefined;
  constructor(message: string, code?: number) {
    super(message);
    this.code = code;
  }
}

export interface SpamdResponse {
  code: number;
  message: string;
  /** Header names in lower case. */
  headers: Map<string, string>;
  body: Buffer;
  /** The blank line that ends the headers arrived (PING answers have none). */
  complete: boolean;
}

export interface SpamSymbols {
  isSpam: boolean;
  score: number;
  threshold: number;
  rules: string[];
}

/** One rule that hit, as spamd's REPORT table lists it. */
export interface SpamRuleHit {
  rule: string;
  score: number;
  /** The rule's description ("Generic Test for Unsolicited Bulk Email"), its "BODY:"-style prefix removed. */
  description: string;
}

export interface SpamReport extends SpamSymbols {
  /** Each rule with its score and description; null when the answer had no table we could read (a custom report template). */
  details: SpamRuleHit[] | null;
}

export type LearnTarget = 'local' | 'remote';

export interface TellOptions {
  messageClass: 'spam' | 'ham';
  set?: LearnTarget[];
  remove?: LearnTarget[];
}

// SYMBOLS, TELL and PING answers are small; anything past this is not spamd.
const MAX_RESPONSE_BYTES = 1024 * 1024;

export class SpamdClient {
  readonly #address: SpamdAddress;
  readonly #timeoutMs: number;
  readonly #user: string | undefined;

  constructor(address: SpamdAddress, options: SpamdOptions) {
    if (!('socketPath' in address) && !('host' in address && 'port' in address)) {
      throw new TypeError('SpamdClient needs { socketPath } or { host, port }');
    }
    if (!(options.timeoutMs > 0)) throw new TypeError('SpamdClient: timeoutMs must be > 0');
    if (options.user !== undefined) assertHeaderValue('user', options.user);
    this.#address = address;
    this.#timeoutMs = options.timeoutMs;
    this.#user = options.user;
  }

  /** Resolves when spamd answers PONG; throws SpamdError otherwise. */
  async ping(): Promise<void> {
    const res = await this.request('PING', [], undefined);
    if (!/\bPONG\b/.test(res.message)) throw new SpamdError(`spamd answered PING with ${quote(res.message)}`);
  }

  /** Scores the message and lists the rules that hit. Throws SpamdError on any failure. */
  async symbols(message: Buffer): Promise<SpamSymbols> {
    const res = await this.request('SYMBOLS', this.#userHeader(), message);
    const verdict = parseSpamHeader(res.headers.get('spam'));
    // Rule names are ASCII; latin1 keeps any odd byte visible instead of throwing.
    const rules = res.body
      .toString('latin1')
      .split(',')
      .map((r) => r.trim())
      .filter((r) => r.length > 0);
    return { ...verdict, rules };
  }

  /**
   * Scores the message and returns spamd's report: every rule that hit with its score and
   * description (the table of SpamAssassin's default report template). Throws SpamdError on any failure.
   */
  async report(message: Buffer): Promise<SpamReport> {
    const res = await this.request('REPORT', this.#userHeader(), message);
    const verdict = parseSpamHeader(res.headers.get('spam'));
    const details = parseReportTable(res.body.toString('utf8'));
    // Sorted as SYMBOLS sorts them, so that X-Spam-Status reads the same whichever verb scored.
    return { ...verdict, rules: (details ?? []).map((d) => d.rule).sort(), details };
  }

  /**
   * Learns (Set) or forgets (Remove) the message. spamd answers EX_OK even when it learned
   * nothing (e.g. an unwritable Bayes store), so the result lists what it says it did:
   * callers must check that `didSet`/`didRemove` contain what they asked for.
   */
  async tell(message: Buffer, o: TellOptions): Promise<{ didSet: string[]; didRemove: string[] }> {
    if (o.messageClass !== 'spam' && o.messageClass !== 'ham') throw new TypeError('tell: messageClass must be spam or ham');
    const set = o.set ?? [];
    const remove = o.remove ?? [];
    if (set.length === 0 && remove.length === 0) throw new TypeError('tell: give set and/or remove');
    for (const t of [...set, ...remove]) {
      if (t !== 'local' && t !== 'remote') throw new TypeError(`tell: unknown learn target ${String(t)}`);
    }
    const headers: [string, string][] = [['Message-class', o.messageClass]];
    if (set.length > 0) headers.push(['Set', set.join(', ')]);
    if (remove.length > 0) headers.push(['Remove', remove.join(', ')]);
    const res = await this.request('TELL', [...headers, ...this.#userHeader()], message);
    return { didSet: listHeader(res.headers.get('didset')), didRemove: listHeader(res.headers.get('didremove')) };
  }

  /**
   * One request/response. Public for verbs without a helper (CHECK, REPORT, HEADERS).
   * Throws SpamdError for transport failures, malformed answers and non-zero statuses.
   */
  async request(verb: string, headers: [string, string][], body: Buffer | undefined): Promise<SpamdResponse> {
    if (!/^[A-Z_]+$/.test(verb)) throw new TypeError(`spamd: bad verb ${verb}`);
    for (const [name, value] of headers) assertHeaderValue(name, value);
    const raw = await this.#exchange(encodeRequest(verb, headers, body));
    const res = parseResponse(raw);
    if (res.code !== 0) throw new SpamdError(`spamd answered ${res.code} ${clip(res.message)}`, res.code);
    if (verb !== 'PING' && !res.complete) throw new SpamdError('spamd answer cut short (no end of headers)');
    return res;
  }

  #userHeader(): [string, string][] {
    return this.#user === undefined ? [] : [['User', this.#user]];
  }

  /** Sends the request, half-closes, and resolves with every byte spamd sent before closing. */
  #exchange(request: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failure: SpamdError | undefined;
      const a = this.#address;
      const socket = 'socketPath' in a ? net.connect({ path: a.socketPath }) : net.connect({ host: a.host, port: a.port });
      const fail = (err: SpamdError) => {
        failure ??= err;
        socket.destroy();
      };
      const timer = setTimeout(() => fail(new SpamdError(`spamd did not answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) fail(new SpamdError('spamd response is implausibly long'));
        else chunks.push(chunk);
      });
      socket.on('error', (err) => fail(new SpamdError(`spamd connection failed: ${clip(err.message)}`)));
      socket.on('close', () => {
        clearTimeout(timer);
        if (failure) reject(failure);
        else resolve(Buffer.concat(chunks));
      });
      // The half-close tells spamd the request is complete (Content-length says the same).
      socket.once('connect', () => {
        socket.end(request);
      });
    });
  }
}

/**
 * The spam scan adapter for the scan report: above `maxBytes` the message is skipped, as spamc
 * does (SpamAssassin is slow on big messages and spam is small); every failure becomes `error`.
 */
export async function scanSpam(client: Pick<SpamdClient, 'report' | 'symbols'>, message: Buffer, o: { maxBytes: number }): Promise<SpamScan> {
  if (message.length > o.maxBytes) {
    return { status: 'skipped', reason: `message is ${message.length} bytes, above the spam scan limit of ${o.maxBytes}` };
  }
  try {
    const r = await client.report(message);
    if (r.details !== null) return { status: 'scored', score: r.score, threshold: r.threshold, rules: r.rules, details: r.details };
    // A report template without the rule table (site configuration): the rule names from SYMBOLS.
    const symbols = await client.symbols(message);
    return { status: 'scored', score: symbols.score, threshold: symbols.threshold, rules: symbols.rules };
  } catch (err) {
    return { status: 'error', reason: err instanceof Error ? err.message : String(err) };
  }
}

const TABLE_HEAD = /^\s*pts\s+rule name\s+description\s*$/;
const TABLE_ROW = /^\s*(-?\d+(?:\.\d+)?)\s+([A-Za-z0-9_]+)\s+(.*)$/;
// Where a rule is tested, in front of many descriptions: not something a reader needs.
const WHERE_PREFIX = /^(?:BODY|RAW|URI|HEADER|FULL|META):\s*/;

/**
 * The rule table of SpamAssassin's report (" pts rule name  description", a line of dashes, one row
 * per rule, long descriptions continued on indented lines). Null when there is no table.
 */
export function parseReportTable(text: string): SpamRuleHit[] | null {
  const lines = text.split(/\r?\n/);
  const head = lines.findIndex((l) => TABLE_HEAD.test(l));
  if (head === -1 || !/^[\s-]+$/.test(lines[head + 1] ?? '')) return null;
  const hits: SpamRuleHit[] = [];
  for (const line of lines.slice(head + 2)) {
    const row = TABLE_ROW.exec(line);
    if (row) hits.push({ rule: row[2], score: Number(row[1]), description: row[3].trim().replace(WHERE_PREFIX, '') });
    else if (/^\s+\S/.test(line) && hits.length > 0) hits[hits.length - 1].description += ` ${line.trim()}`;
    else break;
  }
  return hits;
}

export function encodeRequest(verb: string, headers: [string, string][], body: Buffer | undefined): Buffer {
  const lines = [`${verb} SPAMC/1.5`];
  if (body !== undefined) lines.push(`Content-length: ${body.length}`);
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}

/**
 * Parses a complete spamd response: `SPAMD/<ver> <code> <message>`, header lines, a blank line,
 * the body. Exported for protocol tests. The version is not checked: spamd 4 answers
 * `SPAMD/1.1` to message verbs and `SPAMD/1.5` to PING.
 */
export function parseResponse(raw: Buffer): SpamdResponse {
  if (raw.length === 0) throw new SpamdError('spamd closed the connection without an answer');
  const firstEnd = raw.indexOf('\n');
  const statusLine = raw
    .subarray(0, firstEnd === -1 ? raw.length : firstEnd)
    .toString('latin1')
    .replace(/\r$/, '');
  const m = /^SPAMD\/(\d+\.\d+) +(\d+) *(.*)$/.exec(statusLine);
  if (!m) throw new SpamdError(`unexpected answer from spamd: ${quote(statusLine)}`);
  const code = Number(m[2]);
  const message = m[3] ?? '';
  const { headers, body, complete } = splitHeaders(firstEnd === -1 ? Buffer.alloc(0) : raw.subarray(firstEnd + 1));
  const declared = headers.get('content-length');
  if (declared !== undefined) {
    const n = Number(declared);
    // A shorter body means the connection broke mid-answer; never parse half an answer.
    if (!Number.isInteger(n) || n < 0) throw new SpamdError(`spamd sent a bad Content-length ${quote(declared)}`);
    if (body.length < n) throw new SpamdError(`spamd answer cut short (${body.length} of ${n} body bytes)`);
  }
  return { code, message, headers, body, complete };
}

function splitHeaders(rest: Buffer): { headers: Map<string, string>; body: Buffer; complete: boolean } {
  const headers = new Map<string, string>();
  let at = 0;
  while (at < rest.length) {
    const nl = rest.indexOf('\n', at);
    const line = rest
      .subarray(at, nl === -1 ? rest.length : nl)
      .toString('latin1')
      .replace(/\r$/, '');
    at = nl === -1 ? rest.length : nl + 1;
    if (line === '') return { headers, body: rest.subarray(at), complete: true };
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SpamdError(`bad header line from spamd: ${quote(line)}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: Buffer.alloc(0), complete: false };
}

function parseSpamHeader(value: string | undefined): { isSpam: boolean; score: number; threshold: number } {
  if (value === undefined) throw new SpamdError('spamd answer has no Spam: header');
  const m = /^(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*\/\s*(-?\d+(?:\.\d+)?)$/i.exec(value);
  if (!m) throw new SpamdError(`unexpected Spam: header ${quote(value)}`);
  return { isSpam: /^(true|yes)$/i.test(m[1]!), score: Number(m[2]), threshold: Number(m[3]) };
}

function listHeader(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** A CR or LF in a header value would let a caller inject protocol lines. */
function assertHeaderValue(name: string, value: string): void {
  if (!/^[A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) throw new TypeError(`spamd: bad header ${name}`);
}

function clip(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ').trim();
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

function quote(text: string): string {
  return JSON.stringify(clip(text));
}
