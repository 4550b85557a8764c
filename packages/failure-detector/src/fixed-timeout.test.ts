import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FixedTimeoutDetector } from './fixed-timeout.ts';

describe('FixedTimeoutDetector', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('suspects exactly when the silence reaches the timeout', () => {
    const d = new FixedTimeoutDetector({ timeoutMs: 3000 });
    expect(d.isAvailable(1e9)).toBe(true);
    d.heartbeat(1000);
    expect(d.isAvailable(3999)).toBe(true);
    expect(d.suspicion(2500)).toBe(0.5);
    expect(d.isAvailable(4000)).toBe(false);
    expect(d.suspicion(4000)).toBe(d.threshold);
    d.heartbeat(5000);
    expect(d.isAvailable(5000)).toBe(true);
  });

  it('follows fake time through the system clock', () => {
    const d = new FixedTimeoutDetector({ timeoutMs: 500 });
    d.heartbeat();
    vi.advanceTimersByTime(499);
    expect(d.isAvailable()).toBe(true);
    vi.advanceTimersByTime(1);
    expect(d.isAvailable()).toBe(false);
    d.reset();
    expect(d.isMonitoring).toBe(false);
    expect(d.isAvailable()).toBe(true);
  });

  it('rejects a timeout that is not a positive duration', () => {
    for (const timeoutMs of [0, -5, Number.POSITIVE_INFINITY, '1000']) {
      expect(() => new FixedTimeoutDetector({ timeoutMs: timeoutMs as number })).toThrow(
        expect.objectContaining({
          code: 'ERR_BALLAST_INVALID_OPTION',
          option: 'timeoutMs',
          message: expect.stringMatching(/^timeoutMs must be/),
        }),
      );
    }
  });
});
