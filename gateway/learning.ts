// Teaching the spam filter: ONE implementation for the console's "learn as spam/ham" buttons,
// the report-spam upload and (issue 8) mail sent to the reportspam@ address. It checks that the
// input is a message at all, refuses oversized ones, recognises a repeat by its hash, asks spamd
// to learn it (TELL, Set: local) and records the outcome in the learn log.
//
// spamd answers EX_OK to TELL even when it learned nothing (unwritable Bayes store, or the
// message was already learned): only a DidSet naming "local" counts as learned.
//
// Issue 19: the same event also teaches mailmoat's own learned filter (gateway/learner/), with
// the guards' weight; what it did is added to the detail.
import { createHash } from 'node:crypto';
import type { LearnClass, LearnLog, LearnOutcome, LearnSource } from './store/learnlog.ts';
import type { TellOptions } from '../scanners/spamd.ts';
import type { Learner } from './learner/learner.ts';

export interface SpamTeacher {
  tell(message: Buffer, o: TellOptions): Promise<{ didSet: string[]; didRemove: string[] }>;
}

export interface LearnDeps {
  spamd: SpamTeacher;
  log: LearnLog;
  /** The learned filter (issue 19); absent: spamd's Bayes alone learns. */
  learner?: Pick<Learner, 'teach'>;
}

export interface LearnRequest {
  as: LearnClass;
  actor: string;
  source: LearnSource;
  messageId?: string | null;
  /** An uploaded file's name (shown back to the person, recorded). */
  name?: string | null;
  maxBytes: number;
  /** The hosted domain the message was addressed to (the learner's per-domain model); null or absent: the global model. */
  domain?: string | null;
  /** An administrator taught it (console admin, CLI): the learner gives it full weight at once. */
  trusted?: boolean;
}

export interface LearnResult {
  outcome: LearnOutcome;
  /** One sentence for the person who asked. */
  detail: string;
  sha256: string;
}

/** Why `raw` is not a message we can learn from, or undefined when it looks like one. */
export function notAMessage(raw: Buffer, maxBytes: number): string | undefined {
  if (raw.length === 0) return 'it is empty';
  if (raw.length > maxBytes) return `it is ${raw.length} bytes, larger than the limit of ${maxBytes}`;
  const head = raw.subarray(0, 64 * 1024).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const block = end === -1 ? head : head.slice(0, end);
  const lines = block.split(/\r?\n/).filter((l) => !/^[ \t]/.test(l));
  const headerLines = lines.filter((l) => /^[!-9;-~]+:/.test(l));
  // "From " mbox separators are tolerated on the first line; anything else must be a header.
  const firstIsMbox = /^From /.test(lines[0] ?? '');
  if (headerLines.length < 2 || headerLines.length < lines.length - (firstIsMbox ? 1 : 0)) {
    return 'it does not start with mail headers (save or paste the message with its full headers)';
  }
  if (!headerLines.some((l) => /^(from|received|subject|message-id|date):/i.test(l))) {
    return 'it has no From, Received, Subject, Date or Message-ID header';
  }
  return undefined;
}

export async function learnMessage(deps: LearnDeps, raw: Buffer, req: LearnRequest): Promise<LearnResult> {
  const sha256 = createHash('sha256').update(raw).digest('hex');
  let learned = '';
  const finish = async (outcome: LearnOutcome, spamdDetail: string): Promise<LearnResult> => {
    const detail = `${spamdDetail}${learned}`;
    await deps.log.record({
      actor: req.actor,
      source: req.source,
      messageId: req.messageId ?? null,
      name: req.name ?? null,
      sha256,
      size: raw.length,
      class: req.as,
      outcome,
      detail,
    });
    return { outcome, detail, sha256 };
  };
  const problem = notAMessage(raw, req.maxBytes);
  if (problem) return finish('refused', `not learned: ${problem}`);
  // The learner first, and also for a message spamd learned before: a second reporter's
  // agreement is what gives a report full weight (rules/learner.ts).
  if (deps.learner) {
    try {
      const t = await deps.learner.teach(raw, { as: req.as, reporter: req.actor, domain: req.domain ?? null, trusted: req.trusted ?? false });
      learned = `; ${t.detail}`;
    } catch (err) {
      learned = `; learned filter failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  if (await deps.log.learnedBefore(sha256, req.as)) return finish('already-learned', `already learned as ${req.as} earlier; nothing to do`);
  try {
    const r = await deps.spamd.tell(raw, { messageClass: req.as, set: ['local'] });
    if (!r.didSet.includes('local')) {
      return finish('failed', `spamd learned nothing (it may have learned this message before, or its Bayes store is not writable)`);
    }
    return finish('learned', `learned as ${req.as}`);
  } catch (err) {
    return finish('failed', `spamd could not learn it: ${err instanceof Error ? err.message : String(err)}`);
  }
}
