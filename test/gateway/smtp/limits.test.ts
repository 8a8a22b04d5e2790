import { describe, expect, it } from 'vitest';
import { SessionCounter, WindowCounter } from '../../../gateway/smtp/limits.ts';

describe('WindowCounter', () => {
  it('counts events within the sliding window only', () => {
    let now = 0;
    const w = new WindowCounter({ windowSec: 10, max: 3, now: () => now });
    expect([w.hit('a'), w.hit('a'), w.hit('b')]).toEqual([1, 2, 1]);
    now = 9_999;
    expect(w.hit('a')).toBe(3);
    now = 10_001; // the first two left the window
    expect(w.hit('a')).toBe(2);
    w.undo('a');
    expect(w.hit('a')).toBe(2);
  });

  it('keeps at most maxKeys clients', () => {
    let now = 0;
    const w = new WindowCounter({ windowSec: 10, max: 1, maxKeys: 2, now: () => now });
    w.hit('a');
    w.hit('b');
    now = 1;
    w.hit('c');
    expect(w.hit('a')).toBe(1); // "a" was evicted, so it starts again
  });
});

describe('SessionCounter', () => {
  it('counts open sessions per key', () => {
    const s = new SessionCounter();
    expect([s.open('a'), s.open('a'), s.open('b')]).toEqual([1, 2, 1]);
    s.close('a');
    expect(s.count('a')).toBe(1);
    s.close('a');
    s.close('a');
    expect(s.count('a')).toBe(0);
  });
});
