import { describe, expect, it } from 'vitest';
import { onwardRecipients } from '../../rules/backup-hop.ts';

describe('backup hop', () => {
  const results = [
    { recipient: 'a', outcome: 'delivered' as const },
    { recipient: 'b', outcome: 'deferred' as const },
    { recipient: 'c', outcome: 'failed' as const },
  ];
  it('a 4xx goes on to any next hop; a 5xx only to a backup hop', () => {
    expect(onwardRecipients(results, false).onward.map((r) => r.recipient)).toEqual(['b']);
    expect(onwardRecipients(results, false).settled.map((r) => r.recipient)).toEqual(['a', 'c']);
    expect(onwardRecipients(results, true).onward.map((r) => r.recipient)).toEqual(['b', 'c']);
    expect(onwardRecipients(results, true).settled.map((r) => r.recipient)).toEqual(['a']);
  });
});
