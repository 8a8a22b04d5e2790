// An in-process authoritative DNS server on UDP 127.0.0.1 for tests. Every gateway test that does
// DNS points the one resolver (gateway/dns/resolver.ts) at it, so DNS behaviour is scripted and
// no test ever leaves the machine.
//
// What it does: answers A, AAAA, TXT, PTR, MX and CNAME from an in-memory zone; NXDOMAIN for a
// name it does not know; NOERROR with no answers (NODATA) for a name it knows with other types;
// SERVFAIL or silence (a hung server, for timeouts) for names told to misbehave. It records
// every question it receives.
// What it leaves out: TCP (no truncation, so keep answers under ~1200 bytes), wildcards, SOA and
// authority sections (the resolver cannot see negative TTLs from it), EDNS options, DNSSEC.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';

/** The record data each supported type takes. TXT data is a string or its chunks. */
export interface FakeRecordData {
  A: string;
  AAAA: string;
  TXT: string | string[];
  PTR: string;
  MX: { exchange: string; priority: number };
  CNAME: string;
}
export type FakeRecordType = keyof FakeRecordData;

/** A starting zone: name → type → answers, all with the default TTL. */
export type FakeZone = Record<string, { [T in FakeRecordType]?: FakeRecordData[T][] }>;

export interface FakeDns {
  /** "127.0.0.1:PORT", ready for createResolver({ servers: [address] }). */
  readonly address: string;
  /** Replaces the answers of one name and type (ttl in seconds, default 300). */
  set<T extends FakeRecordType>(name: string, type: T, answers: FakeRecordData[T][], ttl?: number): void;
  /** Without a type: forgets the name entirely, including servfail/hang. With a type: only those records. */
  remove(name: string, type?: FakeRecordType): void;
  /** Every question for this name (any type) gets SERVFAIL until remove(name). */
  servfail(name: string): void;
  /** Every question for this name (any type) gets no answer at all until remove(name). */
  hang(name: string): void;
  /** Questions received, in order, names lower-cased without the trailing dot. */
  readonly queries: { name: string; type: string }[];
  close(): Promise<void>;
}

export const DEFAULT_TTL = 300;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;
const MAX_CNAME_CHAIN = 8;

interface RRSet {
  type: FakeRecordType;
  ttl: number;
  answers: unknown[];
}

const norm = (name: string): string => name.toLowerCase().replace(/\.$/, '');

class Zone {
  readonly records = new Map<string, Map<FakeRecordType, RRSet>>();
  readonly faults = new Map<string, 'servfail' | 'hang'>();

  set(name: string, type: FakeRecordType, answers: unknown[], ttl: number): void {
    const key = norm(name);
    const byType = this.records.get(key) ?? new Map<FakeRecordType, RRSet>();
    byType.set(type, { type, ttl, answers: [...answers] });
    this.records.set(key, byType);
  }

  remove(name: string, type?: FakeRecordType): void {
    const key = norm(name);
    if (type === undefined) {
      this.records.delete(key);
      this.faults.delete(key);
      return;
    }
    const byType = this.records.get(key);
    byType?.delete(type);
    if (byType?.size === 0) this.records.delete(key);
  }

  /** Answers for one question, following CNAMEs inside the zone like an authoritative server. */
  lookup(qname: string, qtype: string): { rcode: number; answers: Answer[] } {
    const answers: Answer[] = [];
    let current = qname;
    for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
      const byType = this.records.get(norm(current));
      // RFC 6604: the rcode is that of the last name in the chain, so a dangling CNAME is NXDOMAIN.
      if (!byType) return { rcode: RCODE_NXDOMAIN, answers };
      const own = byType.get(qtype as FakeRecordType);
      if (own) return { rcode: 0, answers: answers.concat(toAnswers(current, own)) };
      const cname = byType.get('CNAME');
      if (!cname || qtype === 'CNAME') return { rcode: 0, answers };
      answers.push(...toAnswers(current, cname));
      current = String(cname.answers[0]);
    }
    return { rcode: RCODE_SERVFAIL, answers: [] };
  }
}

function toAnswers(name: string, set: RRSet): Answer[] {
  return set.answers.map((data) => {
    if (set.type === 'MX') {
      const mx = data as FakeRecordData['MX'];
      return { name, type: 'MX', ttl: set.ttl, data: { exchange: mx.exchange, preference: mx.priority } };
    }
    if (set.type === 'TXT') return { name, type: 'TXT', ttl: set.ttl, data: txtChunks(data as string | string[]) };
    return { name, type: set.type, ttl: set.ttl, data: data as string };
  });
}

/** A TXT character-string holds at most 255 bytes (RFC 1035 §3.3); longer strings are split, as zone files do. */
function txtChunks(data: string | string[]): Buffer[] {
  return [data].flat().flatMap((text) => {
    const bytes = Buffer.from(text);
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 255) chunks.push(bytes.subarray(at, at + 255));
    return chunks.length > 0 ? chunks : [Buffer.alloc(0)];
  });
}

const SUPPORTED = new Set<string>(['A', 'AAAA', 'TXT', 'PTR', 'MX', 'CNAME']);

function respond(zone: Zone, query: DecodedPacket): Buffer | undefined {
  const question = query.questions?.[0];
  const base = { type: 'response' as const, id: query.id, questions: query.questions ?? [] };
  // Echo RD as real servers do; the question is echoed verbatim too (c-ares may randomise its case).
  const flags = dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED);
  if (!question) return dnsPacket.encode({ ...base, flags: flags | RCODE_NOTIMP });
  const fault = zone.faults.get(norm(question.name));
  if (fault === 'hang') return undefined;
  if (fault === 'servfail') return dnsPacket.encode({ ...base, flags: flags | RCODE_SERVFAIL });
  if (!SUPPORTED.has(question.type)) return dnsPacket.encode({ ...base, flags: flags | RCODE_NOTIMP });
  const { rcode, answers } = zone.lookup(question.name, question.type);
  return dnsPacket.encode({ ...base, flags: flags | rcode, answers });
}

export async function startFakeDns(initial: FakeZone = {}): Promise<FakeDns> {
  const zone = new Zone();
  for (const [name, types] of Object.entries(initial)) {
    for (const [type, answers] of Object.entries(types)) {
      zone.set(name, type as FakeRecordType, answers as unknown[], DEFAULT_TTL);
    }
  }
  const queries: { name: string; type: string }[] = [];
  const socket: Socket = createSocket('udp4');
  socket.on('message', (message: Buffer, peer: RemoteInfo) => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return; // garbage is dropped, as a real server would
    }
    const question = query.questions?.[0];
    if (question) queries.push({ name: norm(question.name), type: question.type });
    const reply = respond(zone, query);
    if (reply) socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    set: (name, type, answers, ttl = DEFAULT_TTL) => zone.set(name, type, answers, ttl),
    remove: (name, type) => zone.remove(name, type),
    servfail: (name) => void zone.faults.set(norm(name), 'servfail'),
    hang: (name) => void zone.faults.set(norm(name), 'hang'),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
