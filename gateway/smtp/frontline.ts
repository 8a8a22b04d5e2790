// The front line of one SMTP process: per-session state, fact gathering through the ports, and
// applying the pure decisions of rules/frontline.ts at the right SMTP stage, each logged with its
// reason and counted. server.ts calls one method per smtp-server hook and turns a returned
// SmtpReply into the wire reply; nothing here speaks SMTP or decides policy itself.
//
// Stages: connect (limits, trust, start PTR + client DNSBL lookups, greet pause), MAIL (TLS/AUTH
// requirements, syntax, message rate, start SPF), RCPT (syntax, relay, limits, the connection
// checks with the recipient domain's policy, recipient existence), end of DATA (bare line
// endings, pipelining). Checks are enforced at RCPT (see rules/frontline.ts for why).
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { DnsResolver } from '../../core/dns.ts';
import { smtpMetrics } from '../metrics.ts';
import { createDnsblChecker } from '../../scanners/dnsbl.ts';
import { checkAddress, checkParameters, KNOWN_MAIL_PARAMETERS, KNOWN_RCPT_PARAMETERS } from '../../rules/address.ts';
import type { Decision } from '../../rules/connection.ts';
import { decideRecipient, domainOf } from '../../rules/envelope.ts';
import {
  clientKey,
  decideConnections,
  decideFrontline,
  decideRate,
  decideRecipientExists,
  decideSubmissionSender,
  isExemptRecipient,
  networkTrust,
  policyFor,
  trustBySender,
  type CheckOutcome,
  type FrontlineFacts,
  type FrontlinePolicy,
  type SkippableCheck,
  type SubmissionUser,
  type Trust,
} from '../../rules/frontline.ts';
import { replies, type SmtpReply } from '../../rules/replies.ts';
import { decideNulBytes } from '../../rules/nul-bytes.ts';
import { routeFor } from '../delivery/transport.ts';
import { bareKind, type BodyReport } from './body-guard.ts';
import { SessionFacts, type FactSources } from './facts.ts';
import { SessionCounter, WindowCounter } from './limits.ts';
import { createRecipientProber, type RecipientProber } from './probe.ts';
import { createSpfChecker, type SpfCheck } from './spf.ts';
import type { WireTap } from './wiretap.ts';
import { decideReporter, reportTarget, separateTransaction, type EnvelopeReport } from '../reports/rcpt.ts';
import type { SubmissionListener } from '../config/submission.ts';
import { decideSubmissionAccess, relayNetworkOf } from '../../rules/submission-access.ts';
import type { Submitted } from '../spool/spool.ts';
import type { OutboundLimits, Sender } from './outbound-limits.ts';

export type ListenerKind = 'smtp' | 'submission';

interface Transaction {
  sender: string;
  spf?: Promise<SpfCheck>;
  senderTrust?: Trust | null;
  /** Issue 8: the transaction is a spam report (its one recipient is a report address). */
  report?: EnvelopeReport;
  /** check|action pairs already counted in this transaction (one count per transaction, not per recipient). */
  counted: Set<string>;
}

interface SessionState {
  listener: ListenerKind;
  /** The submission listener's own settings (issue 18). */
  submission?: SubmissionListener;
  clientIp: string;
  key: string;
  counted: boolean;
  trust: Trust | null;
  facts: SessionFacts;
  tap?: WireTap;
  authFailures: number;
  txn: Transaction;
  /** Set once a pipelining violation was refused: the command it was about. */
  tainted?: string;
}

export interface FrontlineDeps {
  config: Config;
  logger: Logger;
  resolver: DnsResolver;
  prober?: RecipientProber;
  /** The front line this one replaces after a config reload: its per-client counters carry on. */
  previous?: Frontline;
  /** Issue 18: sending limits across nodes (Redis), for the submission listeners. */
  limits?: OutboundLimits;
}

const NONE: ReadonlySet<SkippableCheck> = new Set();
const union = (...sets: (ReadonlySet<SkippableCheck> | undefined)[]) => new Set(sets.flatMap((s) => [...(s ?? [])]));

export class Frontline {
  readonly #config: Config;
  readonly #log: Logger;
  readonly #resolver: DnsResolver;
  readonly #sources: FactSources;
  readonly #prober: RecipientProber;
  readonly #policies = new Map<string, FrontlinePolicy>();
  readonly #global: FrontlinePolicy;
  /** Whether a check is enabled for at least one domain (else its facts are never gathered). */
  readonly #wanted: Record<'helo' | 'rdns' | 'dnsbl' | 'spf', boolean>;
  readonly #states = new WeakMap<SMTPServerSession, SessionState>();
  readonly #taps = new Map<string, WireTap>();
  readonly #sessions: SessionCounter;
  readonly #rates: { connection?: WindowCounter; message?: WindowCounter; recipient?: WindowCounter };
  readonly #limits: OutboundLimits | undefined;
  /** The trusted networks, parsed once for this config. */
  readonly #trustOf: (clientIp: string) => Trust | null;

  constructor(deps: FrontlineDeps) {
    const { config } = deps;
    const checks = config.checks;
    this.#config = config;
    this.#log = deps.logger;
    this.#limits = deps.limits;
    this.#resolver = deps.resolver;
    this.#global = policyFor(checks);
    this.#trustOf = networkTrust(checks.trusted);
    const lists = checks.dnsbl.lists;
    this.#sources = {
      resolver: deps.resolver,
      dnsbl: lists.length > 0 ? createDnsblChecker({ resolver: deps.resolver, lists }) : null,
      hasDomainLists: lists.some((l) => l.kind === 'domain'),
      spf: createSpfChecker({ resolver: deps.resolver, hostname: config.hostname, timeoutMs: checks.spfTimeoutMs }),
      ourHostnames: [config.hostname, ...checks.helo.ourNames],
      maxPtrNames: checks.rdns.maxPtrNames,
    };
    // The recipient probe cache outlives a reload (unless our name changed: probes say HELO with it).
    const before = deps.previous;
    this.#prober = deps.prober ?? (before && before.#config.hostname === config.hostname ? before.#prober : createRecipientProber({ helo: config.hostname }));
    const domains = Object.keys(config.domains).map((d) => this.policyFor(d));
    const any = (pick: (p: FrontlinePolicy) => boolean) => pick(this.#global) || domains.some(pick);
    this.#wanted = {
      helo: any((p) => p.helo.enabled),
      rdns: any((p) => p.rdns.enabled),
      dnsbl: lists.length > 0 && any((p) => p.dnsbl.enabled),
      spf: any((p) => p.spf.enabled) || checks.trusted.senders.length > 0,
    };
    const { limits } = checks;
    // A reload must not reset the limits: sessions open now stay counted, and a rate window
    // carries on while its setting is unchanged.
    const previous = deps.previous;
    this.#sessions = previous ? previous.#sessions : new SessionCounter();
    const counter = (name: 'connection' | 'message' | 'recipient', r: { max: number; windowSec: number } | null) => {
      if (!r) return undefined;
      const before = previous && previous.#config.checks.limits[`${name}Rate`];
      return previous && before?.max === r.max && before.windowSec === r.windowSec ? previous.#rates[name] : new WindowCounter(r);
    };
    this.#rates = {
      connection: counter('connection', limits.connectionRate),
      message: counter('message', limits.messageRate),
      recipient: counter('recipient', limits.recipientRate),
    };
  }

  policyFor(domain: string): FrontlinePolicy {
    let p = this.#policies.get(domain);
    if (!p) {
      p = policyFor(this.#config.checks, this.#config.domains[domain]?.checks);
      this.#policies.set(domain, p);
    }
    return p;
  }

  /** The wire tap of a connection (server.ts attaches it by the session id smtp-server assigned; a TLS session gets a new one). */
  attachTap(sessionId: string, tap: WireTap): void {
    this.#taps.set(sessionId, tap);
  }

  #state(session: SMTPServerSession, listener: ListenerKind = 'smtp'): SessionState {
    let st = this.#states.get(session);
    if (!st) {
      const clientIp = session.remoteAddress;
      st = {
        listener,
        clientIp,
        key: clientKey(clientIp),
        counted: false,
        // A session that still has a balancer's address came through it without a client address
        // (PROXY UNKNOWN): whoever it is, the balancer's place in the trusted networks is not theirs.
        trust: this.#config.proxy.from.includes(clientIp) ? null : this.#trustOf(clientIp),
        facts: new SessionFacts(this.#sources, clientIp, session.localAddress),
        authFailures: 0,
        txn: { sender: '', counted: new Set() },
      };
      this.#states.set(session, st);
    }
    st.tap = this.#taps.get(session.id) ?? st.tap;
    return st;
  }

  #skips(st: SessionState, name: SkippableCheck): boolean {
    return Boolean(st.trust?.skip.has(name) || st.txn.senderTrust?.skip.has(name));
  }

  /** Logs a decision with its reason and counts it (once per transaction for connection checks). */
  #note(st: SessionState, session: SMTPServerSession, stage: string, check: string, d: Decision, once = false): void {
    const action = d.action === 'accept' ? 'pass' : d.action;
    const key = `${check}|${action}`;
    if (!once || !st.txn.counted.has(key)) {
      st.txn.counted.add(key);
      smtpMetrics.decisions.inc({ check, action });
    }
    const base = { session: session.id, client: st.clientIp, stage, check, action };
    if (d.action !== 'accept')
      this.#log.info(
        {
          ...base,
          reason: d.reason,
          reply: d.action === 'score' ? undefined : `${d.reply.code} ${d.reply.enhanced}`,
          score: d.action === 'score' ? d.score : undefined,
        },
        'check decision',
      );
    for (const note of d.notes ?? []) this.#log.info({ ...base, note }, 'check note');
  }

  #refusal(st: SessionState, session: SMTPServerSession, stage: string, d: Decision): SmtpReply | null {
    if (d.action !== 'reject' && d.action !== 'tempfail') return null;
    this.#note(st, session, stage, d.check, d);
    return d.reply;
  }

  // ---- connect ----------------------------------------------------------------------------

  async connect(session: SMTPServerSession, listener: ListenerKind, submission?: SubmissionListener): Promise<SmtpReply | null> {
    const st = this.#state(session, listener);
    if (submission) st.submission = submission;
    smtpMetrics.sessions.inc({ listener });
    if (st.trust && this.#log.isLevelEnabled('debug')) this.#log.debug({ session: session.id, client: st.clientIp, trust: st.trust.by }, 'trusted client');
    if (!this.#skips(st, 'limits')) {
      st.counted = true;
      const open = this.#sessions.open(st.key);
      const max = this.#config.checks.limits.connectionsPerClient;
      const refusal =
        this.#refusal(st, session, 'connect', decideConnections(st.clientIp, open, max)) ??
        this.#refusal(
          st,
          session,
          'connect',
          decideRate('connection', st.clientIp, this.#rates.connection?.hit(st.key) ?? 0, this.#config.checks.limits.connectionRate),
        );
      if (refusal) return refusal;
    }
    if (listener === 'smtp') {
      // Started now, awaited at RCPT: the lookups run while the client says EHLO and MAIL.
      if (this.#wanted.rdns && !this.#skips(st, 'rdns')) void st.facts.rdns();
      if (this.#wanted.dnsbl && !this.#skips(st, 'dnsbl')) void st.facts.clientDnsbl();
      const pause = this.#config.checks.protocol.greetPauseMs;
      if (pause > 0 && !this.#skips(st, 'pipelining')) await new Promise((r) => setTimeout(r, pause));
    } else if (submission?.dnsbl && this.#sources.dnsbl && !this.#skips(st, 'dnsbl')) {
      void st.facts.clientDnsbl();
    }
    return null;
  }

  close(session: SMTPServerSession): void {
    const st = this.#states.get(session);
    this.#taps.delete(session.id);
    if (!st) return;
    smtpMetrics.sessions.dec({ listener: st.listener });
    if (st.counted) this.#sessions.close(st.key);
  }

  // ---- protocol ---------------------------------------------------------------------------

  /**
   * The wire tap's findings as a refusal. A command line ended by a bare LF is refused at once. A
   * pipelining violation is refused at the end of the DATA it belongs to (the whole message is
   * read first, as Postfix refuses at DATA) and taints the session: each later MAIL gets 554 too.
   * Checking it at MAIL/RCPT of the same group would depend on how the reads were cut.
   */
  #protocol(st: SessionState, session: SMTPServerSession, stage: 'mail' | 'rcpt' | 'data'): SmtpReply | null {
    const findings = st.tap?.findings;
    const { protocol } = this.#config.checks;
    const pipelining = stage === 'data' ? findings?.pipelining : stage === 'mail' ? st.tainted : undefined;
    if (pipelining && protocol.pipelining === 'reject' && !this.#skips(st, 'pipelining')) {
      st.tainted = pipelining;
      const reply = replies.pipelining(pipelining.split(' ')[0]!);
      return this.#refusal(st, session, stage, {
        action: 'reject',
        reply,
        reason: `client did not wait for the reply to ${pipelining}`,
        check: 'protocol.pipelining',
      });
    }
    if (findings?.bareLfInCommand && protocol.bareLineEndings === 'reject' && !this.#skips(st, 'bareLineEndings')) {
      const reply = replies.bareLineEnding('LF', 'command');
      return this.#refusal(st, session, stage, { action: 'reject', reply, reason: 'command line ended by a bare LF', check: 'protocol.bare-lf-command' });
    }
    return null;
  }

  // ---- MAIL FROM --------------------------------------------------------------------------

  async mail(address: SMTPServerAddress, session: SMTPServerSession): Promise<SmtpReply | null> {
    const st = this.#state(session);
    st.txn = { sender: address.address, counted: new Set() };
    await Promise.resolve(); // the wire tap sees the read that carried this command first
    const refuse = (d: Decision) => this.#refusal(st, session, 'mail', d);
    const submission = st.listener === 'submission';
    if (submission) {
      const spec = st.submission!;
      const access = decideSubmissionAccess({ clientIp: st.clientIp, secure: Boolean(session.secure), authenticated: Boolean(session.user) }, spec);
      if (access.action !== 'accept') return refuse(access);
      for (const note of access.notes ?? []) this.#log.info({ session: session.id, client: st.clientIp, listener: spec.name, note }, 'relay without AUTH');
    } else if (this.#config.smtp.requireTls && !session.secure) {
      return refuse({ action: 'reject', reply: replies.tlsRequired(), reason: 'MAIL before STARTTLS', check: 'tls.required' });
    }
    const protocol = this.#protocol(st, session, 'mail');
    if (protocol) return protocol;
    const syntax =
      this.#refusal(st, session, 'mail', checkAddress('sender', address.address, { requireFqdn: this.#config.checks.requireFqdnAddresses })) ??
      this.#refusal(st, session, 'mail', checkParameters(address.args, KNOWN_MAIL_PARAMETERS));
    if (syntax) return syntax;
    if (submission && session.user) {
      const owner = this.#refusal(
        st,
        session,
        'mail',
        decideSubmissionSender(address.address, session.user as SubmissionUser, this.#config.submission.senders),
      );
      if (owner) return owner;
    }
    const limited = submission ? await this.#outbound(st, session, 'mail', (l, who) => l.message(who)) : null;
    if (limited) return limited;
    if (!this.#skips(st, 'limits')) {
      const rate = this.#refusal(
        st,
        session,
        'mail',
        decideRate('message', st.clientIp, this.#rates.message?.hit(st.key) ?? 0, this.#config.checks.limits.messageRate),
      );
      if (rate) return rate;
    }
    if (!submission && this.#wanted.spf && !this.#skips(st, 'spf')) {
      st.txn.spf = st.facts.spf(address.address, session.hostNameAppearsAs || '');
    }
    return null;
  }

  // ---- RCPT TO ----------------------------------------------------------------------------

  async rcpt(address: SMTPServerAddress, session: SMTPServerSession): Promise<SmtpReply | null> {
    const st = this.#state(session);
    await Promise.resolve(); // see mail()
    const refuse = (d: Decision) => this.#refusal(st, session, 'rcpt', d);
    const recipient = address.address;
    const protocol = this.#protocol(st, session, 'rcpt');
    if (protocol) return protocol;
    const syntax =
      refuse(checkAddress('recipient', recipient, { requireFqdn: this.#config.checks.requireFqdnAddresses })) ??
      refuse(checkParameters(address.args, KNOWN_RCPT_PARAMETERS));
    if (syntax) return syntax;
    const domain = domainOf(recipient);
    const hosted = this.#config.domains[domain];
    const accepted = session.envelope.rcptTo.length;
    const maxRecipients = st.submission?.maxRecipients ?? this.#config.smtp.maxRecipients;
    // Authenticated submission may relay (delivery routes other domains by MX or the relay hosts).
    const envelopeReply =
      st.listener === 'submission'
        ? accepted >= maxRecipients
          ? replies.tooManyRecipients(maxRecipients)
          : null
        : decideRecipient(recipient, { hostedDomains: new Set(Object.keys(this.#config.domains)), accepted, maxRecipients });
    if (envelopeReply) {
      const check = envelopeReply.code === 554 ? 'relay' : 'limits.recipients';
      return refuse({ action: envelopeReply.code < 500 ? 'tempfail' : 'reject', reply: envelopeReply, reason: `${recipient}: ${envelopeReply.text}`, check });
    }
    // Issue 8: a report address (reportspam@, notspam@) is taken here, only from the domain's own users.
    const target = hosted ? reportTarget(this.#config, recipient) : undefined;
    if (st.txn.report || (target && accepted > 0)) {
      return refuse({
        action: 'tempfail',
        reply: separateTransaction(),
        reason: `${recipient}: a report address shares a transaction with other recipients`,
        check: 'reports.separate',
      });
    }
    let report: EnvelopeReport | undefined;
    if (target) {
      const sender = st.txn.sender;
      const ours =
        st.listener === 'smtp' &&
        !st.trust &&
        sender.includes('@') &&
        domainOf(sender) !== '' &&
        (domainOf(sender) === domain || domainOf(sender).endsWith(`.${domain}`));
      const spf = ours ? await (st.txn.spf ?? (st.txn.spf = st.facts.spf(sender, session.hostNameAppearsAs || ''))) : undefined;
      const user = (session.user as { username?: string } | undefined)?.username;
      const d = decideReporter(this.#config, target, {
        sender,
        ...(user ? { user } : {}),
        ...(st.trust ? { trustedNetwork: st.trust.by } : {}),
        ...(spf ? { spf: spf.result } : {}),
      });
      if (!d.ok) return refuse({ action: 'reject', reply: d.reply, reason: `${recipient}: ${d.reason}`, check: 'reports.untrusted' });
      report = { ...target, trust: d.trust, by: d.by };
    }
    const rateCounted = !this.#skips(st, 'limits') && this.#rates.recipient !== undefined;
    if (rateCounted) {
      const rate = refuse(decideRate('recipient', st.clientIp, this.#rates.recipient!.hit(st.key), this.#config.checks.limits.recipientRate));
      if (rate) return rate;
    }
    const undo = () => rateCounted && this.#rates.recipient!.undo(st.key);
    const limited = st.listener === 'submission' ? await this.#outbound(st, session, 'rcpt', (l, who) => l.recipient(who, recipient)) : null;
    if (limited) return (undo(), limited);
    const checked = st.listener === 'smtp' ? await this.#connectionChecks(st, session, recipient, domain) : await this.#submissionChecks(st, session);
    if (checked) return (undo(), checked);
    if (report) {
      // Never delivered downstream, so never verified there.
      st.txn.report = report;
      this.#log.info({ session: session.id, client: st.clientIp, recipient, trust: report.trust, by: report.by }, 'spam report accepted at RCPT');
      return null;
    }
    if (hosted && hosted.recipients.mode !== 'any') {
      const exists = await this.#recipientExists(st, session, recipient, domain);
      if (exists) return (undo(), exists);
    }
    return null;
  }

  /** Issue 18: counts a message or recipient against the sending limits of its account and sender domain. */
  async #outbound(
    st: SessionState,
    session: SMTPServerSession,
    stage: 'mail' | 'rcpt',
    count: (l: OutboundLimits, who: Sender) => Promise<SmtpReply | null>,
  ): Promise<SmtpReply | null> {
    const submitted = this.submitted(session);
    if (!this.#limits || !submitted) return null;
    const sender = st.txn.sender.toLowerCase();
    const who: Sender = { account: submitted.user ?? `network ${submitted.relayNetwork}`, domain: sender.includes('@') ? domainOf(sender) : '' };
    const reply = await count(this.#limits, who);
    if (!reply) return null;
    return this.#refusal(st, session, stage, { action: 'tempfail', reply, reason: reply.text, check: 'submission.limits' });
  }

  /** Who submitted the transaction, on a submission listener. */
  submitted(session: SMTPServerSession): Submitted | undefined {
    const st = this.#states.get(session);
    if (!st?.submission) return undefined;
    const user = (session.user as { username?: string } | undefined)?.username;
    const network = user ? undefined : relayNetworkOf(st.clientIp, st.submission.relayNetworks);
    return { listener: st.submission.name, ...(user ? { user } : {}), ...(network ? { relayNetwork: network } : {}) };
  }

  /** Issue 8: the report this transaction carries, if its recipient is a report address. */
  reportOf(session: SMTPServerSession): EnvelopeReport | undefined {
    return this.#states.get(session)?.txn.report;
  }

  async #connectionChecks(st: SessionState, session: SMTPServerSession, recipient: string, domain: string): Promise<SmtpReply | null> {
    const policy = this.policyFor(domain);
    if (this.#config.checks.trusted.senders.length > 0 && st.txn.senderTrust === undefined) {
      st.txn.senderTrust = trustBySender(st.txn.sender, (await st.txn.spf)?.result, this.#config.checks.trusted);
      if (st.txn.senderTrust) this.#log.info({ session: session.id, client: st.clientIp, trust: st.txn.senderTrust.by }, 'trusted sender');
    }
    const skip = union(st.trust?.skip ?? NONE, st.txn.senderTrust?.skip);
    const facts = await this.#gather(st, session, skip);
    const exempt = isExemptRecipient(recipient, policy.exemptRecipients);
    const result = decideFrontline(facts, policy, { skip, exempt });
    this.#count(st, session, result.checks);
    for (const note of result.decision.action === 'accept' ? (result.decision.notes ?? []) : []) {
      if (note.startsWith('exempt recipient')) this.#log.info({ session: session.id, client: st.clientIp, recipient, note }, 'check note');
    }
    return result.decision.action === 'reject' || result.decision.action === 'tempfail' ? result.decision.reply : null;
  }

  /** Issue 18: the MX port's HELO checks and client DNSBLs, when the submission listener asks for them. */
  async #submissionChecks(st: SessionState, session: SMTPServerSession): Promise<SmtpReply | null> {
    const spec = st.submission;
    if (!spec || (!spec.heloChecks && !spec.dnsbl)) return null;
    const g = this.#global;
    const policy: FrontlinePolicy = {
      ...g,
      helo: { ...g.helo, enabled: spec.heloChecks },
      rdns: { ...g.rdns, enabled: false },
      spf: { ...g.spf, enabled: false },
      dnsbl: { ...g.dnsbl, enabled: spec.dnsbl },
    };
    const skip = new Set<SkippableCheck>(['rdns', 'spf', ...(spec.heloChecks ? [] : (['helo'] as const)), ...(spec.dnsbl ? [] : (['dnsbl'] as const))]);
    const gathered = await this.#gather(st, session, union(skip, st.trust?.skip), { helo: spec.heloChecks, dnsbl: spec.dnsbl && this.#sources.dnsbl !== null });
    const zones = spec.dnsblZones?.map((z) => z.toLowerCase().replace(/\.$/, ''));
    const facts = zones
      ? {
          ...gathered,
          dnsbl: gathered.dnsbl.map((f) => ({ ...f, results: f.results.filter((r) => zones.includes(r.list.zone.toLowerCase().replace(/\.$/, ''))) })),
        }
      : gathered;
    const result = decideFrontline(facts, policy, { skip, exempt: false });
    this.#count(st, session, result.checks);
    return result.decision.action === 'reject' || result.decision.action === 'tempfail' ? result.decision.reply : null;
  }

  #count(st: SessionState, session: SMTPServerSession, outcomes: CheckOutcome[]): void {
    for (const { name, decision } of outcomes) this.#note(st, session, 'rcpt', decision.action === 'accept' ? name : decision.check, decision, true);
  }

  async #gather(
    st: SessionState,
    session: SMTPServerSession,
    skip: ReadonlySet<SkippableCheck>,
    force: Partial<Record<'helo' | 'dnsbl', boolean>> = {},
  ): Promise<FrontlineFacts> {
    const want = (name: 'helo' | 'rdns' | 'dnsbl' | 'spf') => (this.#wanted[name] || Boolean(force[name as 'helo'])) && !skip.has(name);
    // A trusted network skips them all (and a config may enable none): no lookups to wait for.
    if (!want('helo') && !want('rdns') && !want('dnsbl') && !want('spf')) return { clientIp: st.clientIp, dnsbl: [] };
    const helo = session.hostNameAppearsAs || '';
    const { dnsbl } = this.#config.checks;
    const senderDomain = st.txn.sender.includes('@') ? domainOf(st.txn.sender) : '';
    const [heloFacts, rdns, client, heloList, senderList, spf] = await Promise.all([
      want('helo') && helo ? st.facts.helo(helo) : undefined,
      want('rdns') ? st.facts.rdns() : undefined,
      want('dnsbl') ? st.facts.clientDnsbl() : undefined,
      want('dnsbl') && dnsbl.checkHelo && helo ? st.facts.domainDnsbl(helo, 'helo') : undefined,
      want('dnsbl') && dnsbl.checkSender && senderDomain ? st.facts.domainDnsbl(senderDomain, 'sender') : undefined,
      want('spf') ? st.txn.spf : undefined,
    ]);
    return {
      clientIp: st.clientIp,
      ...(heloFacts ? { helo: heloFacts } : {}),
      ...(rdns ? { rdns } : {}),
      dnsbl: [client, heloList, senderList].filter((f) => f !== undefined),
      ...(spf ? { spf } : {}),
    };
  }

  async #recipientExists(st: SessionState, session: SMTPServerSession, recipient: string, domain: string): Promise<SmtpReply | null> {
    const cfg = this.#config.domains[domain]!.recipients;
    let probe;
    if (cfg.mode === 'verify') {
      const route = await routeFor(domain, this.#config, this.#resolver);
      probe = route.ok
        ? await this.#prober.verify(recipient, { hosts: route.targets.map((t) => ({ host: t.address, port: t.port })), ...cfg.verify })
        : { status: 'failed' as const, reason: route.reason };
    }
    const d = decideRecipientExists(recipient, cfg, probe);
    this.#note(st, session, 'rcpt', d.action === 'accept' ? `recipient.${cfg.mode}` : d.check, d);
    return this.#refusal(st, session, 'rcpt', d);
  }

  // ---- DATA -------------------------------------------------------------------------------

  /** Trace headers for the top of the spooled copy: Received-SPF, and the front-line summary for the scanners. */
  async dataHeaders(session: SMTPServerSession): Promise<Buffer> {
    const st = this.#state(session);
    if (st.listener !== 'smtp') return Buffer.alloc(0);
    const lines: string[] = [];
    const spf = await st.txn.spf;
    if (spf?.header) lines.push(spf.header.replace(/\r?\n/g, '\r\n'));
    const skip = union(st.trust?.skip ?? NONE, st.txn.senderTrust?.skip);
    const facts = await this.#gather(st, session, skip);
    const scored = decideFrontline(facts, { ...this.#global, rejectAt: null }, { skip, exempt: false }).checks.flatMap((c) =>
      c.decision.action === 'score' ? [c.decision] : [],
    );
    if (scored.length > 0) {
      // check ids only (our own words): the reasons, with client-supplied text, are in the log
      const score = scored.reduce((sum, d) => sum + d.score, 0);
      lines.push(`X-Mailmoat-Frontline: score=${score}; checks=${scored.map((d) => d.check).join(',')}`);
    }
    return Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
  }

  /** The verified (forward-confirmed) PTR name of the client, if one was looked up. */
  verifiedHostname(session: SMTPServerSession): Promise<string | undefined> {
    return this.#state(session).facts.verifiedHostname();
  }

  /** Decided when the whole message is in: pipelining, then bare CR/LF (the body was counted on its way to the spool). */
  afterData(session: SMTPServerSession, body: BodyReport): SmtpReply | null {
    const st = this.#state(session);
    const protocol = this.#protocol(st, session, 'data');
    if (protocol) return protocol;
    const nul = decideNulBytes(body.nul, this.#config.checks.protocol.nulBytes);
    if (nul.action === 'reject') return this.#refusal(st, session, 'data', nul);
    if (body.nul > 0) this.#note(st, session, 'data', 'protocol.nul-bytes', nul);
    const kind = bareKind(body);
    if (!kind) return null;
    const policy = this.#config.checks.protocol.bareLineEndings;
    const reason = `message has ${body.bareLf} bare LF and ${body.bareCr} bare CR`;
    if (policy === 'reject' && !this.#skips(st, 'bareLineEndings')) {
      return this.#refusal(st, session, 'data', {
        action: 'reject',
        reply: replies.bareLineEnding(kind, 'message'),
        reason,
        check: 'protocol.bare-line-ending',
      });
    }
    this.#note(st, session, 'data', 'protocol.bare-line-ending', {
      action: 'accept',
      notes: [`${reason}: ${policy === 'normalize' ? 'normalised to CRLF' : 'accepted'}`],
    });
    return null;
  }

  /** Whether NUL bytes are to be removed on the way to the spool. */
  stripsNul(): boolean {
    return this.#config.checks.protocol.nulBytes === 'strip';
  }

  /** Whether bare CR/LF are to be rewritten on the way to the spool. */
  normalizes(session: SMTPServerSession): boolean {
    return this.#config.checks.protocol.bareLineEndings === 'normalize' && !this.#skips(this.#state(session), 'bareLineEndings');
  }

  // ---- AUTH (submission) ------------------------------------------------------------------

  /** Counts a failed AUTH; returns the 421 that ends the session once there were too many. */
  authFailed(session: SMTPServerSession): SmtpReply | null {
    const st = this.#state(session);
    st.authFailures++;
    const d: Decision =
      st.authFailures >= (st.submission?.maxAuthFailures ?? 3)
        ? { action: 'tempfail', reply: replies.authTooManyFailures(), reason: `${st.authFailures} failed AUTH attempts`, check: 'auth.failures' }
        : { action: 'reject', reply: replies.authFailed(), reason: 'AUTH failed', check: 'auth.failed' };
    this.#note(st, session, 'auth', d.check, d);
    return d.reply;
  }
}
