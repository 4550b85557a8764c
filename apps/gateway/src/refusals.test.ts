import { describe, expect, it } from 'vitest';
import { RefusalMemory, retryAfterMs } from './refusals.ts';

describe('RefusalMemory', () => {
  it('remembers a refusal until its time has passed, at most maxHoldMs', () => {
    let now = 1000;
    const memory = new RefusalMemory({ maxHoldMs: 5000, now: () => now });
    memory.remember('a', 2000);
    memory.remember('b', 60_000);
    expect([memory.remainingMs('a'), memory.remainingMs('b'), memory.remainingMs('c')]).toEqual([2000, 5000, 0]);
    now += 2000;
    expect(memory.remainingMs('a')).toBe(0);
    expect(memory.stats().remembered).toBe(1); // the expired one is gone
    now += 3000;
    expect(memory.remainingMs('b')).toBe(0);
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const memory = new RefusalMemory({ maxEntries: 2, now: () => 0 });
    memory.remember('a', 1000);
    memory.remember('b', 1000);
    memory.remember('c', 1000);
    expect([memory.remainingMs('a'), memory.remainingMs('b'), memory.remainingMs('c')]).toEqual([0, 1000, 1000]);
    expect(memory.stats().remembered).toBe(2);
  });

  it('ignores refusals without a delay, and names an invalid option', () => {
    const memory = new RefusalMemory({ now: () => 0 });
    memory.remember('a', 0);
    memory.remember('b', Number.NaN);
    expect(memory.stats().remembered).toBe(0);
    expect(() => new RefusalMemory({ maxEntries: 0 })).toThrow(/maxEntries/);
  });
});

describe('retryAfterMs', () => {
  it('reads delay-seconds only', () => {
    expect([retryAfterMs('3'), retryAfterMs(' 12 '), retryAfterMs(['2', '9'])]).toEqual([3000, 12_000, 2000]);
    expect([retryAfterMs(undefined), retryAfterMs('-1'), retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT'), retryAfterMs('1e9')]).toEqual([
      0, 0, 0, 0,
    ]);
  });
});
