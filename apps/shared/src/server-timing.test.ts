import { describe, expect, it } from 'vitest';
import { harvestOf, parseServerTiming, serverTiming } from './server-timing.ts';

describe('Server-Timing', () => {
  it('round-trips stage timings, rounded to 0.01 ms, leaving out what is not a duration', () => {
    const header = serverTiming({ admission: 1.234, enqueue: 0, queue_wait: 12.5, conversion: Number.NaN, api: undefined, bad: -1 });
    expect(header).toBe('admission;dur=1.23, enqueue;dur=0, queue_wait;dur=12.5');
    expect(parseServerTiming(header)).toEqual({ admission: 1.23, enqueue: 0, queue_wait: 12.5 });
  });

  it.each([
    ['', {}],
    ['cache;desc="hit"', {}],
    ['db;dur=53, app;dur=47.2;desc="x"', { db: 53, app: 47.2 }],
    ['Upper;dur=1, with space;dur=2, __proto__;dur=3, x;dur=-1, y;dur=abc, z;dur=Infinity', {}],
    [['a;dur=1', 'b;dur=2'], { a: 1, b: 2 }],
  ])('reads %j tolerantly', (header, expected) => {
    const parsed = parseServerTiming(header as string);
    expect(parsed).toEqual(expected);
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
  });

  it('reads at most 16 entries and 1 KiB of a hostile header', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => `s${i};dur=${i}`).join(', ');
    const parsed = parseServerTiming(many);
    expect(Object.keys(parsed).length).toBeLessThanOrEqual(16);
    expect(parseServerTiming(`${'a'.repeat(5000)};dur=1, b;dur=2`)).toEqual({});
  });

  it('reads harvest as 1 unless a number in 0–1 is declared', () => {
    expect(harvestOf(undefined)).toBe(1);
    expect(harvestOf('0.5')).toBe(0.5);
    expect(harvestOf('7')).toBe(1);
    expect(harvestOf('-1')).toBe(0);
    expect(harvestOf('half')).toBe(1);
  });
});
