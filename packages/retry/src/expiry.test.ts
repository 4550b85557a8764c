import { systemClock } from '@ballast/common';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ExpiryQueue } from './expiry.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ExpiryQueue', () => {
  it('fires every entry exactly at its time, never early, on a single timer (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.boolean()), { minLength: 1, maxLength: 40 }),
        async (entries) => {
          vi.setSystemTime(0);
          const queue = new ExpiryQueue(systemClock);
          const start = performance.now();
          const fired: Array<{ due: number; at: number }> = [];
          const added = entries.map(([delay, keep]) => {
            const due = start + delay;
            const entry = {
              expiresAt: due,
              expire: () => fired.push({ due, at: performance.now() }),
              expiryIndex: -1,
            };
            queue.add(entry);
            return { keep, entry };
          });
          for (const { keep, entry } of added) if (!keep) queue.delete(entry);
          expect(vi.getTimerCount()).toBeLessThanOrEqual(1);
          await vi.advanceTimersByTimeAsync(600);
          expect(fired).toHaveLength(added.filter((a) => a.keep).length);
          for (const { due, at } of fired) expect(at).toBe(due);
          expect(vi.getTimerCount()).toBe(0);
          expect(queue.size).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('fires exactly the entries left after interleaved adds and deletes, in time order (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constant(-1)), { minLength: 1, maxLength: 200 }),
        fc.array(fc.nat()),
        async (ops, picks) => {
          vi.setSystemTime(0);
          const queue = new ExpiryQueue(systemClock);
          const start = performance.now();
          const live = new Set<{ expiresAt: number; expire: () => void; expiryIndex: number }>();
          const fired: Array<{ due: number; at: number }> = [];
          let pick = 0;
          for (const op of ops) {
            if (op >= 0) {
              const due = start + op;
              const entry = { expiresAt: due, expire: () => fired.push({ due, at: performance.now() }), expiryIndex: -1 };
              queue.add(entry);
              live.add(entry);
            } else if (live.size > 0) {
              // -1: delete an entry chosen among the live ones, wherever it sits in the heap.
              const entry = [...live][(picks[pick++ % Math.max(1, picks.length)] ?? 0) % live.size];
              if (entry) {
                queue.delete(entry);
                queue.delete(entry); // twice: a no-op
                live.delete(entry);
              }
            }
          }
          expect(queue.size).toBe(live.size);
          await vi.advanceTimersByTimeAsync(400);
          expect(fired).toHaveLength(live.size);
          for (const { due, at } of fired) expect(at).toBe(due);
          expect(fired.map((f) => f.due)).toEqual(fired.map((f) => f.due).sort((a, b) => a - b));
          expect(vi.getTimerCount()).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('re-arms for an earlier entry and clears everything on clear()', () => {
    const queue = new ExpiryQueue(systemClock);
    const fire = vi.fn();
    queue.add({ expiresAt: performance.now() + 1_000, expire: fire, expiryIndex: -1 });
    queue.add({ expiresAt: performance.now() + 10, expire: fire, expiryIndex: -1 });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(10);
    expect(fire).toHaveBeenCalledTimes(1);
    queue.clear();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(2_000);
    expect(fire).toHaveBeenCalledTimes(1);
  });
});
