// Relay hops are followed in order on a 4xx or a dead host; a hop marked `backup` also
// takes what the hop before it refused with a 5xx (a provider's second relay, used when the first
// refuses, e.g. a relay that denies a customer the first one does not know yet).

/** After one hop's results: what is settled, and what is offered to the next hop. */
export function onwardRecipients<R extends { outcome: 'delivered' | 'deferred' | 'failed' }>(
  results: readonly R[],
  nextIsBackup: boolean,
): { settled: R[]; onward: R[] } {
  const onward = results.filter((r) => r.outcome === 'deferred' || (nextIsBackup && r.outcome === 'failed'));
  return { settled: results.filter((r) => !onward.includes(r)), onward };
}
