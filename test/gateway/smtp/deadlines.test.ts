// SessionDeadlines keeps one timer per session and moves it only when a deadline comes earlier
// (gateway/smtp/deadlines.ts): each deadline must still fire exactly when it is due, whichever way
// it moved since the timer was set.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionDeadlines } from '../../../gateway/smtp/deadlines.ts';
import type { DeadlineKind, DeadlinePolicy } from '../../../rules/deadlines.ts';

const policy: DeadlinePolicy = { commandMs: 1_000, commandUnderLoadMs: 100, underLoadAt: 0.8, dataMinBytesPerSec: 100, dataMs: 3_000, sessionMs: 60_000 };

describe('SessionDeadlines', () => {
  let load: { open: number; max: number };
  let expired: { kind: DeadlineKind; at: number }[];
  const make = () => new SessionDeadlines({ policy, load: () => load, onExpire: (kind) => expired.push({ kind, at: Date.now() }) });

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    load = { open: 1, max: 100 };
    expired = [];
  });
  afterEach(() => vi.useRealTimers());

  it('a command deadline renewed by each reply fires once, a full command timeout after the last reply', () => {
    const d = make();
    d.commandExpected();
    for (let t = 0; t < 5; t++) {
      vi.advanceTimersByTime(600);
      d.busy();
      d.commandExpected();
    }
    vi.advanceTimersByTime(999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([{ kind: 'command', at: 4_000 }]);
    vi.advanceTimersByTime(10_000);
    expect(expired).toHaveLength(1);
  });

  it('a deadline that comes earlier than the armed one (the listener filled up) fires at its own time', () => {
    const d = make();
    d.commandExpected(); // due at 1000
    vi.advanceTimersByTime(200);
    load = { open: 90, max: 100 };
    d.busy();
    d.commandExpected(); // under load: due at 300
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([{ kind: 'command', at: 300 }]);
  });

  it('nothing fires while busy, and the next command deadline counts from the next reply', () => {
    const d = make();
    d.commandExpected();
    vi.advanceTimersByTime(500);
    d.busy();
    vi.advanceTimersByTime(5_000); // our work (a check, the spool) is not the client's time
    expect(expired).toEqual([]);
    d.commandExpected();
    vi.advanceTimersByTime(999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([{ kind: 'command', at: 6_500 }]);
  });

  it('DATA at the minimum rate: each byte moves the deadline later, and it fires once they stop coming', () => {
    const d = make();
    d.dataStarted(); // rate deadline at 1000 (the command timeout), total at 3000
    for (let t = 0; t < 5; t++) {
      vi.advanceTimersByTime(500);
      d.dataBytes(60); // 600 ms of credit per 500 ms
    }
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(2_000);
    expect(expired).toEqual([{ kind: 'data', at: 3_000 }]);
  });

  it('DATA below the minimum rate is cut off when the credit runs out', () => {
    const d = make();
    d.dataStarted();
    vi.advanceTimersByTime(500);
    d.dataBytes(10); // 100 ms of credit: due at 1100
    vi.advanceTimersByTime(599);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([{ kind: 'data-rate', at: 1_100 }]);
  });

  it('stop() ends every deadline', () => {
    const d = make();
    d.commandExpected();
    d.stop();
    vi.advanceTimersByTime(100_000);
    expect(expired).toEqual([]);
  });
});
