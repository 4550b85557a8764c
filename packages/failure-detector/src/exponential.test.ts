import { describe, expect, it } from 'vitest';
import { ExponentialDetector } from './exponential.ts';

describe('ExponentialDetector', () => {
  it('has Cassandra defaults', () => {
    const d = new ExponentialDetector();
    expect([d.threshold, d.maxSampleSize, d.initialIntervalMs, d.maxIntervalMs]).toEqual([8, 1000, 2000, 2000]);
  });

  it('is available with suspicion 0 before the first heartbeat', () => {
    const d = new ExponentialDetector();
    expect(d.suspicion(1e9)).toBe(0);
    expect(d.isAvailable(1e9)).toBe(true);
    expect(d.isMonitoring).toBe(false);
  });

  it('computes phi as silence / mean / ln 10, like Cassandra', () => {
    const d = new ExponentialDetector();
    d.heartbeat(0); // records the initial 2000 ms interval
    d.heartbeat(1000);
    d.heartbeat(2000);
    expect(d.meanIntervalMs).toBeCloseTo(4000 / 3, 12);
    // 1500 ms of silence over a 1333.3 ms mean: 1.125 / ln 10.
    expect(d.suspicion(3500)).toBeCloseTo(1.125 / Math.LN10, 12);
    expect(d.suspicion(3500)).toBeCloseTo(-Math.log10(Math.exp(-1500 / (4000 / 3))), 12);
  });

  it('suspects once phi reaches the threshold: 8 × ln 10 mean intervals of silence', () => {
    const d = new ExponentialDetector({ initialIntervalMs: 1000 });
    d.heartbeat(0);
    d.heartbeat(1000);
    expect(d.isAvailable(1000 + 8 * Math.LN10 * 1000 - 1)).toBe(true);
    expect(d.isAvailable(1000 + 8 * Math.LN10 * 1000 + 1)).toBe(false);
  });

  it('does not record intervals longer than maxIntervalMs', () => {
    const d = new ExponentialDetector({ initialIntervalMs: 1000, maxIntervalMs: 1500 });
    d.heartbeat(0);
    d.heartbeat(60_000);
    expect(d.meanIntervalMs).toBe(1000);
    d.heartbeat(61_400);
    expect(d.meanIntervalMs).toBe(1200);
  });

  it('keeps only maxSampleSize intervals', () => {
    const d = new ExponentialDetector({ maxSampleSize: 2 });
    for (const t of [0, 100, 300, 600]) d.heartbeat(t);
    expect(d.meanIntervalMs).toBe(250);
  });

  it('treats any silence as infinitely suspicious when only zero intervals were recorded', () => {
    const d = new ExponentialDetector({ maxSampleSize: 1 });
    d.heartbeat(5);
    d.heartbeat(5);
    expect(d.suspicion(5)).toBe(0);
    expect(d.suspicion(6)).toBe(Number.POSITIVE_INFINITY);
  });

  it('forgets everything on reset()', () => {
    const d = new ExponentialDetector();
    d.heartbeat(0);
    d.reset();
    expect(d.isMonitoring).toBe(false);
    expect(d.meanIntervalMs).toBe(0);
  });

  it.each([
    ['threshold', { threshold: -1 }],
    ['maxSampleSize', { maxSampleSize: 0 }],
    ['initialIntervalMs', { initialIntervalMs: 0 }],
    ['maxIntervalMs', { maxIntervalMs: Number.NaN }],
  ])('rejects an invalid %s', (option, options) => {
    expect(() => new ExponentialDetector(options)).toThrow(expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', option }));
  });
});
