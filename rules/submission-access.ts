// Who may start a transaction on a submission listener: an authenticated account, or a
// client in the listener's relay networks (a customer's static address), and only over TLS unless
// the listener allows relay networks in the clear. Pure: the listener's settings and the session's
// facts in, a decision out.
import type { Decision } from './connection.ts';
import { ipInAny } from './lists.ts';
import { replies } from './replies.ts';

export interface SubmissionAccessPolicy {
  auth: 'required' | 'off';
  relayNetworks: readonly string[];
  requireTls: boolean;
}

export interface SubmissionAccessFacts {
  clientIp: string;
  secure: boolean;
  authenticated: boolean;
}

/** The relay network the client is in, if any. */
export function relayNetworkOf(clientIp: string, networks: readonly string[]): string | undefined {
  return networks.find((n) => ipInAny(clientIp, [n]));
}

export function decideSubmissionAccess(facts: SubmissionAccessFacts, policy: SubmissionAccessPolicy): Decision {
  const network = relayNetworkOf(facts.clientIp, policy.relayNetworks);
  if (policy.requireTls && !facts.secure) return { action: 'reject', reply: replies.tlsRequired(), reason: 'MAIL before STARTTLS', check: 'tls.required' };
  if (facts.authenticated) return { action: 'accept' };
  if (network !== undefined) return { action: 'accept', notes: [`relay network ${network}`] };
  // A relay-only listener (auth: off) tells a stranger that relaying is not for them, not to log in.
  if (policy.auth === 'off')
    return { action: 'reject', reply: replies.clientNotRelay(facts.clientIp), reason: `client ${facts.clientIp} not in the relay networks`, check: 'relay' };
  return { action: 'reject', reply: replies.authRequired(), reason: 'MAIL before AUTH', check: 'auth.required' };
}
