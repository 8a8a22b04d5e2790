// A console on real stores (SQLite + files, or PostgreSQL, through gateway/store/sql.ts) in a temp dir with fake engines: release/delete
// use the real compare-and-set transitions but queue nothing, spamd is a scripted teacher. Used
// through app.inject(), so route tests need no Redis, no browser and no sockets.
import { createLearner } from '../../gateway/learner/learner.ts';
import { openLearnerStore } from '../../gateway/store/learner-store.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { configSchema, type Config } from '../../gateway/config/schema.ts';
import { silentLogger } from '../../gateway/log.ts';
import { hashPassword } from '../../gateway/passwords.ts';
import { deleteMessage } from '../../gateway/quarantine.ts';
import { openAccountStore, type AccountStore, type Role } from '../../gateway/store/accounts.ts';
import { openAuditStore, type AuditStore } from '../../gateway/store/audit.ts';
import { fileBlobStore, sqlBlobStore, type BlobStore } from '../../gateway/store/blobs.ts';
import { openDigestStore, type DigestStore } from '../../gateway/store/digests.ts';
import { openLearnLog, type LearnLog } from '../../gateway/store/learnlog.ts';
import { openListStore, type ListStore } from '../../gateway/store/lists.ts';
import { openMetadataStore, type MetadataStore } from '../../gateway/store/metadata.ts';
import { openReleaseRequestStore, type ReleaseRequestStore } from '../../gateway/store/release-requests.ts';
import { migrate } from '../../gateway/store/migrations.ts';
import { openSql, type Dialect } from '../../gateway/store/sql.ts';
import { createTestDatabase } from '../support/databases.ts';
import { liveConfig, type LiveConfig } from '../../gateway/config/live.ts';
import { startDomainSync, type DomainSync } from '../../gateway/domains/sync.ts';
import { openDomainStore } from '../../gateway/store/domains.ts';
import { openApiTokenStore } from '../../gateway/store/api-tokens.ts';
import { openStatsStore } from '../../gateway/store/stats.ts';
import { openTotpStore } from '../../gateway/store/totp.ts';
import type { Sql } from '../../gateway/store/sql.ts';
import type { ScanReport } from '../../scanners/types.ts';
import { buildConsole } from '../../quarantine-ui/app.ts';
import type { ConsoleDeps } from '../../quarantine-ui/deps.ts';
import type { TellOptions } from '../../scanners/spamd.ts';
import { mailDate } from '../support/mime.ts';

export const PASSWORD = 'correct horse battery';

export interface Harness {
  app: FastifyInstance;
  deps: ConsoleDeps;
  dir: string;
  store: MetadataStore;
  blobs: BlobStore;
  accounts: AccountStore;
  audit: AuditStore;
  lists: ListStore;
  learnLog: LearnLog;
  digests: DigestStore;
  requests: ReleaseRequestStore;
  sql: Sql;
  /** The console's config is live: database domains are merged into it (gateway/domains/sync.ts). */
  live: LiveConfig;
  domainSync: DomainSync;
  /** Notices the console sent (deps.notify). */
  notices: { to: string; subject: string; text: string }[];
  released: string[];
  told: { cls: string; size: number }[];
  /** What the fake spamd answers to TELL. */
  spamdDidSet: string[];
  addMessage(o: {
    id?: string;
    rcpt: string[];
    from?: string;
    subject?: string;
    verdict?: string;
    score?: number;
    body?: string;
    raw?: string;
    status?: 'quarantined' | 'delivered';
    clientIp?: string;
  }): Promise<string>;
  addAccount(username: string, role: Role, o?: { domains?: string[]; addresses?: string[] }): Promise<void>;
  close(): Promise<void>;
}

let seq = 0;
/** ULID-shaped ids, increasing. */
export function fakeId(): string {
  seq++;
  return `01JTEST${String(Date.now()).slice(-8)}${String(seq).padStart(11, '0')}`.slice(0, 26).toUpperCase();
}

export function rawMessage(o: { from?: string; to?: string; subject?: string; html?: string; text?: string }): string {
  const head = `From: ${o.from ?? 'Bob <bob@sender.test>'}\r\nTo: ${o.to ?? 'alice@a.test'}\r\nSubject: ${o.subject ?? 'hello'}\r\nDate: ${mailDate()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\nMIME-Version: 1.0\r\n`;
  if (o.html) {
    return `${head}Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${o.text ?? 'text part'}\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${o.html}\r\n--b--\r\n`;
  }
  return `${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${o.text ?? 'hello there'}\r\n`;
}

/** `database: 'postgres'`: the console on a fresh database of the run's PostgreSQL, quarantined bodies in it too. */
export async function startHarness(
  o: { config?: Record<string, unknown>; database?: Dialect; learner?: boolean; deps?: Partial<ConsoleDeps> } = {},
): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailmoat-ui-'));
  const config: Config = configSchema.parse({
    hostname: 'mx.gateway.test',
    dataDir: dir,
    domains: { 'a.test': { downstream: [{ host: '127.0.0.1', port: 1 }] }, 'b.test': { downstream: [{ host: '127.0.0.1', port: 1 }] } },
    redis: { socket: '/nonexistent' },
    clamd: { socket: '/nonexistent' },
    spamd: { socket: '/nonexistent' },
    ...o.config,
  });
  const database = await createTestDatabase(o.database ?? 'sqlite');
  const sql = await openSql(database.target);
  await migrate(sql);
  const store = openMetadataStore(sql);
  const blobs = sql.dialect === 'postgres' ? sqlBlobStore(sql) : fileBlobStore(path.join(dir, 'quarantine'));
  const accounts = openAccountStore(sql);
  const audit = openAuditStore(sql);
  const lists = openListStore(sql);
  const learnLog = openLearnLog(sql);
  const digests = openDigestStore(sql);
  const requests = openReleaseRequestStore(sql);
  const notices: Harness['notices'] = [];
  const released: string[] = [];
  const told: { cls: string; size: number }[] = [];
  const h: Partial<Harness> & { spamdDidSet: string[] } = { spamdDidSet: ['local'] };
  const logger = silentLogger();
  const live = liveConfig(config);
  const domainStore = openDomainStore(sql);
  const domainSync = await startDomainSync({ store: domainStore, live, logger, intervalMs: config.database.domainsPollMs });
  const deps: ConsoleDeps = {
    config: live.config,
    logger,
    store,
    quarantine: blobs,
    accounts,
    audit,
    lists,
    learnLog,
    digests,
    requests,
    async notify(to, subject, text) {
      notices.push({ to, subject, text });
    },
    secret: Buffer.alloc(32, 7),
    async release(id, by) {
      const r = await store.get(id);
      if (!r) return { ok: false, reason: 'no such message' };
      if (!(await store.transition(id, ['quarantined'], 'releasing'))) return { ok: false, reason: `not in quarantine (status: ${r.status})` };
      await store.addEvent(id, 'released', `released by ${by}`);
      released.push(id);
      return { ok: true };
    },
    remove: (id, by) => deleteMessage({ store, quarantine: blobs, logger }, id, by),
    spamd: {
      async tell(message: Buffer, t: TellOptions) {
        told.push({ cls: t.messageClass, size: message.length });
        return { didSet: h.spamdDidSet, didRemove: [] };
      },
    },
    async queueCounts() {
      return { scan: { waiting: 1, active: 0, delayed: 0, failed: 0 }, deliver: { waiting: 0, active: 2, delayed: 1, failed: 0 } };
    },
    healthChecks: { database: async () => 'ok', redis: async () => 'PONG' },
    async smtpTest() {
      return { ok: true, summary: 'fake', transcript: [{ ms: 0, dir: 'S', line: '220 fake <script>alert(1)</script>' }] };
    },
    now: () => Date.now(),
    hostedDomains: { store: domainStore, fileDomains: () => domainSync.fileDomains(), refresh: () => domainSync.refresh() },
    tokens: openApiTokenStore(sql),
    stats: openStatsStore(sql),
    totp: openTotpStore(sql),
    ...(o.learner ? { learner: createLearner(openLearnerStore(sql)) } : {}),
    ...o.deps,
  };
  const app = await buildConsole(deps);
  await app.ready();
  Object.assign(h, {
    app,
    deps,
    dir,
    store,
    blobs,
    accounts,
    audit,
    lists,
    learnLog,
    digests,
    requests,
    sql,
    live,
    domainSync,
    notices,
    released,
    told,
    async addMessage(m: Parameters<Harness['addMessage']>[0]) {
      const id = m.id ?? fakeId();
      const raw = m.raw ?? rawMessage({ to: m.rcpt[0], subject: m.subject, text: m.body });
      await store.recordReceived({
        id,
        receivedAt: Date.now(),
        clientIp: m.clientIp ?? '192.0.2.1',
        helo: 'client.test',
        mailFrom: m.from ?? 'bob@sender.test',
        rcptTo: m.rcpt,
        size: raw.length,
      });
      const report: ScanReport = {
        virus: m.verdict === 'virus' ? { status: 'infected', viruses: ['Eicar-Test-Signature'] } : { status: 'clean' },
        spam: { status: 'scored', score: m.score ?? 12.5, threshold: 5, rules: ['GTUBE', 'MISSING_DATE'] },
      };
      await store.recordVerdict(id, {
        verdict: m.verdict ?? 'high-spam',
        reason: `spam score ${m.score ?? 12.5} >= 10`,
        report,
        subject: m.subject ?? 'hello',
      });
      if ((m.status ?? 'quarantined') === 'quarantined') {
        const file = path.join(dir, `${id}.tmp.eml`);
        writeFileSync(file, raw);
        await blobs.put(id, file);
        await store.transition(id, ['queued'], 'quarantined');
      } else {
        await store.transition(id, ['queued'], 'delivered');
      }
      return id;
    },
    async addAccount(username: string, role: Role, a: { domains?: string[]; addresses?: string[] } = {}) {
      await accounts.create({ username, role, ...a, passwordHash: await hashPassword(PASSWORD, { logN: 10, r: 8, p: 1 }) });
    },
    async close() {
      await app.close();
      domainSync.stop();
      await store.close(); // closes the shared database too
      await database.drop();
    },
  });
  return h as Harness;
}

/** A browser-like client for app.inject: keeps cookies, reads CSRF tokens from pages. */
export class Client {
  readonly app: FastifyInstance;
  cookies = new Map<string, string>();
  /** The client address the console sees (req.ip). */
  readonly ip: string;
  constructor(app: FastifyInstance, ip = '127.0.0.1') {
    this.app = app;
    this.ip = ip;
  }
  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  private keep(res: { headers: Record<string, unknown> }): void {
    const set = res.headers['set-cookie'];
    for (const c of ([] as string[]).concat((set as string[] | string | undefined) ?? [])) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c) || /max-age=0/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  async get(url: string) {
    const res = await this.app.inject({ method: 'GET', url, remoteAddress: this.ip, headers: { cookie: this.cookieHeader() } });
    this.keep(res);
    return res;
  }
  /** A form post; `_csrf` is taken from `csrfFrom` (a page) unless given (or false: none). */
  async post(url: string, form: Record<string, string | string[]>, o: { csrf?: string | false; csrfFrom?: string } = {}) {
    let csrf = o.csrf;
    if (csrf === undefined) csrf = await this.csrf(o.csrfFrom ?? '/quarantine');
    const body = new URLSearchParams();
    if (csrf !== false) body.append('_csrf', csrf);
    for (const [k, v] of Object.entries(form)) for (const x of ([] as string[]).concat(v)) body.append(k, x);
    const res = await this.app.inject({
      method: 'POST',
      url,
      remoteAddress: this.ip,
      headers: { cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: body.toString(),
    });
    this.keep(res);
    return res;
  }
  async csrf(page: string): Promise<string> {
    const res = await this.get(page);
    const m = /name="_csrf" value="([^"]+)"/.exec(res.body);
    if (!m) throw new Error(`no CSRF token on ${page} (status ${res.statusCode})`);
    return m[1]!;
  }
  async login(username: string, password = PASSWORD) {
    const csrf = await this.csrf('/login');
    return this.post('/login', { username, password }, { csrf });
  }
}
