import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isShedError } from './errors.ts';
import { AdaptiveThrottle } from './throttle.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const overloaded = Object.assign(new Error('503'), { status: 503 });

describe('AdaptiveThrottle', () => {
  it('computes max(0, (requests − K·accepts) / (requests + 1))', () => {
    const throttle = new AdaptiveThrottle({ k: 2, random: () => 0.999 });
    for (let i = 0; i < 10; i++) {
      throttle.tryAcquire();
      throttle.record(i < 3);
    }
    // 10 requests, 3 accepts: (10 − 6) / 11
    expect(throttle.probability()).toBeCloseTo(4 / 11, 10);
    throttle.tryAcquire();
    throttle.record(true);
    expect(throttle.stats()).toMatchObject({ requests: 11, accepts: 4, probability: 3 / 12 });
  });

  it('never rejects while the backend accepts at least 1/K of requests', () => {
    const throttle = new AdaptiveThrottle({ k: 2, random: () => 0 });
    for (let i = 0; i < 1000; i++) {
      expect(throttle.tryAcquire()).toBe(true);
      throttle.record(i % 2 === 0);
    }
    expect(throttle.stats().throttled).toBe(0);
  });

  it('rejects locally once the backend rejects everything, and recovers as the window slides', async () => {
    const throttle = new AdaptiveThrottle({ k: 2, windowMs: 10_000, buckets: 10 });
    const shed: number[] = [];
    throttle.on('shed', ({ probability }) => shed.push(probability));
    let sent = 0;
    for (let i = 0; i < 200; i++) {
      await throttle
        .run(() => {
          sent++;
          throw overloaded;
        })
        .catch(() => undefined);
    }
    expect(sent).toBeLessThan(50);
    expect(shed.length).toBe(200 - sent);
    expect(throttle.probability()).toBeGreaterThan(0.9);
    expect(throttle.stats()).toMatchObject({ sent, throttled: 200 - sent });
    vi.advanceTimersByTime(11_000);
    expect(throttle.probability()).toBe(0);
    expect(await throttle.run(() => 'ok')).toBe('ok');
    // Counters since creation do not slide with the window.
    expect(throttle.stats()).toMatchObject({ requests: 1, sent: sent + 1, throttled: 200 - sent });
  });

  it('throws a ShedError with reason throttled, and counts other errors as accepted', async () => {
    const throttle = new AdaptiveThrottle({ random: () => 0 });
    await expect(throttle.run(() => Promise.reject(new Error('404')))).rejects.toThrow('404');
    expect(throttle.stats().accepts).toBe(1);
    for (let i = 0; i < 5; i++) {
      throttle.tryAcquire();
      throttle.record(false);
    }
    const error = await throttle.run(() => 'never').catch((e: unknown) => e);
    expect(isShedError(error) && error.reason).toBe('throttled');
    throttle.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with admit/recordAnswer, counts only answered requests: requests in flight or turned away move nothing', () => {
    let roll = 0.5;
    const throttle = new AdaptiveThrottle({ k: 2, windowMs: 10_000, buckets: 10, random: () => roll });
    // A thousand requests admitted and never answered (slow uploads): no evidence of overload.
    for (let i = 0; i < 1000; i++) expect(throttle.admit()).toBe(true);
    expect(throttle.stats()).toMatchObject({ requests: 0, probability: 0 });
    // The backend sheds 30 answered requests: the probability rises from its answers alone.
    for (let i = 0; i < 30; i++) throttle.recordAnswer(false);
    const p = throttle.probability();
    expect(p).toBeCloseTo(30 / 31, 5);
    roll = 0; // every roll below p: turned away
    for (let i = 0; i < 500; i++) expect(throttle.admit()).toBe(false);
    // Turning requests away did not feed the signal (tryAcquire would have raised it further).
    expect(throttle.probability()).toBe(p);
    expect(throttle.stats()).toMatchObject({ requests: 30, accepts: 0, sent: 1000, throttled: 500 });
    // Answers that are accepted bring it down.
    for (let i = 0; i < 30; i++) throttle.recordAnswer(true);
    expect(throttle.probability()).toBe(0);
  });

  it('validates options', () => {
    expect(() => new AdaptiveThrottle({ k: 0.5 })).toThrow(/k must be/);
    expect(() => new AdaptiveThrottle({ windowMs: 0 })).toThrow(/windowMs/);
  });
});
