// Mail from an authenticated sender (the submission listener): outbound holds belong to the
// sender's side. Pure.
//
// Why refuse in session: for inbound mail a refusal gives the recipient no way to get a false
// positive back, so it is an operator's choice (rules/policy.ts DEFAULT_POLICY). For submitted
// mail the sender is the one who can fix a virus or a forbidden attachment, and a 250 followed by
// a silent hold tells them nothing; a 554 with the reason in their own mail client does.
import { layerPolicy, type Policy, type VerdictClass } from './policy.ts';

/** The classes refused in session for authenticated senders unless configured (submission.refuse). */
export const SUBMISSION_REFUSE_DEFAULT = ['virus', 'banned'] as const satisfies readonly VerdictClass[];

/**
 * A recipient's policy for a message an authenticated user submitted (the last layer, over the
 * domain's policy and the rules):
 * - the classes in `refuse` are refused (their notices and forwards stay). The SMTP session waits
 *   for the verdict (inline verdicts) because some action is now `reject`; past the deadline a
 *   refusal becomes a hold, as for any message;
 * - no SPF/DKIM/DMARC check: they judge the path from the sender's domain to us, and here we are
 *   its first hop. The client is a user's device on any network, never in the domain's SPF, so
 *   a domain with DMARC p=reject had every submitted message held as spoofed. The listener
 *   already proved the sender (AUTH, and an address the account owns).
 */
export function submittedPolicy(p: Policy, refuse: readonly VerdictClass[]): Policy {
  return layerPolicy(p, [{ checks: { auth: false }, actions: Object.fromEntries(refuse.map((c) => [c, { do: 'reject' as const }])) }]);
}
