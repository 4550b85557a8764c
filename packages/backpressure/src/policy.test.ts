import { CallScope, isInvalidOptionError, type PolicyContext, wrap } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isShedError } from './errors.ts';
import { ConcurrencyLimiter } from './limiter.ts';
import type { LimitAlgorithm, LimitSample } from './limits/limit.ts';
import { KeyedRateLimiter } from './rate-limit.ts';
import { OutboundScheduler } from './scheduler.ts';
import { AdaptiveThrottle } from './throttle.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A fixed limit that records what each release taught it. */
function spyLimit(limit: number): LimitAlgorithm & { samples: LimitSample[] } {
  const samples: LimitSample[] = [];
  return {
    name: 'spy',
    limit,
    samples,
    update: (sample) => {
      samples.push(sample);
      return limit;
    },
  };
}

const never = (): Promise<never> => new Promise(() => {});

describe('ConcurrencyLimiter.execute (the policy contract)', () => {
  it('runs fn with a context, frees the slot, and teaches the limit a good sample', async () => {
    const algorithm = spyLimit(2);
    const limiter = new ConcurrencyLimiter({ limit: algorithm });
    let context: PolicyContext | undefined;
    const value = await limiter.execute(async (c) => {
      context = c;
      expect(limiter.inflight).toBe(1);
      return 7;
    });
    expect(value).toBe(7);
    expect(context?.attempt).toBe(1);
    expect(context?.signal.aborted).toBe(false);
    expect(limiter.inflight).toBe(0);
    expect(algorithm.samples).toEqual([expect.objectContaining({ dropped: false, inflight: 1 })]);
    expect(limiter.stats().admitted).toBe(1);
  });

  it('a rejection is a drop, and is passed through', async () => {
    const algorithm = spyLimit(2);
    const limiter = new ConcurrencyLimiter({ limit: algorithm });
    await expect(limiter.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await expect(
      limiter.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(algorithm.samples.map((s) => s.dropped)).toEqual([true, true]);
    expect(limiter.inflight).toBe(0);
  });

  it('follows the verdict of classify: success teaches, failure and overload drop, ignore teaches nothing', async () => {
    const algorithm = spyLimit(4);
    const limiter = new ConcurrencyLimiter({ limit: algorithm });
    const classify = (o: { ok: boolean; value?: unknown }) =>
      o.ok ? (o.value as 'success' | 'failure' | 'overload' | 'ignore') : ('failure' as const);
    for (const verdict of ['success', 'failure', 'overload', 'ignore'] as const) {
      await limiter.execute(async () => verdict, { classify: classify as never });
    }
    expect(algorithm.samples.map((s) => s.dropped)).toEqual([false, true, true]);
    expect(limiter.inflight).toBe(0);
  });

  it('a classifier that throws frees the slot and rejects the call with its error', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1 });
    const error = await limiter
      .execute(async () => 1, {
        classify: () => {
          throw new Error('classifier bug');
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ message: 'classifier bug' });
    expect(limiter.inflight).toBe(0);
  });

  it('sheds when full without a queue, and queues when it may; the caller signal leaves the queue', async () => {
    const full = new ConcurrencyLimiter({ limit: 1 });
    void full.execute(never);
    const shed = await full.execute(async () => 1).catch((e: unknown) => e);
    expect(isShedError(shed) && shed.reason).toBe('limit');

    const queued = new ConcurrencyLimiter({ limit: 1, maxQueue: 1, queueTimeoutMs: 1_000 });
    let release: (value: string) => void = () => {};
    const first = queued.execute(() => new Promise<string>((resolve) => (release = resolve)));
    const caller = new AbortController();
    const waiting = queued.execute(async () => 'never runs', { signal: caller.signal }).catch((e: unknown) => e);
    const second = queued.execute(async (c) => c.attempt);
    expect(queued.queued).toBe(1);
    // the queue holds one: `second` was refused
    expect(isShedError(await second.catch((e: unknown) => e))).toBe(true);
    caller.abort(new Error('client left'));
    expect(await waiting).toMatchObject({ message: 'client left' });
    expect(queued.queued).toBe(0);
    release('done');
    expect(await first).toBe('done');
    expect(queued.inflight).toBe(0);
  });

  it('a queued call runs with a context whose signal follows the caller', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 1 });
    let release: () => void = () => {};
    const first = limiter.execute(() => new Promise<void>((resolve) => (release = resolve)));
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const second = limiter.execute(
      (c) => {
        signal = c.signal;
        return never();
      },
      { signal: caller.signal },
    );
    release();
    await first;
    await vi.advanceTimersByTimeAsync(0);
    expect(signal?.aborted).toBe(false);
    caller.abort('stop');
    expect(signal?.aborted).toBe(true);
    void second.catch(() => undefined);
  });

  it('refuses bad arguments by name', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1 });
    expect(isInvalidOptionError(await limiter.execute('x' as never).catch((e: unknown) => e))).toBe(true);
    await expect(limiter.execute(async () => 1, { priority: 'urgent' as never })).rejects.toThrow(/priority/);
    await expect(limiter.execute(async () => 1, { signal: 'no' as never })).rejects.toThrow(/signal must be an AbortSignal/);
    expect(limiter.inflight).toBe(0);
  });
});

describe('AdaptiveThrottle.execute', () => {
  it('records an overload verdict as a rejection, anything else as accepted', async () => {
    const throttle = new AdaptiveThrottle({ random: () => 0.99 });
    const classify = (o: { ok: boolean; value?: unknown }) => (o.ok && o.value === 429 ? 'overload' : 'success');
    await throttle.execute(async () => 429, { classify: classify as never });
    await throttle.execute(async () => 200, { classify: classify as never });
    expect(throttle.stats()).toMatchObject({ requests: 2, accepts: 1, sent: 2 });
  });

  it('without classify, keeps run() semantics: isRejection decides for errors', async () => {
    const throttle = new AdaptiveThrottle({ random: () => 0.99 });
    await throttle.execute(() => Promise.reject(Object.assign(new Error('busy'), { status: 503 }))).catch(() => undefined);
    await throttle.execute(() => Promise.reject(new Error('404'))).catch(() => undefined);
    expect(throttle.stats()).toMatchObject({ requests: 2, accepts: 1 });
  });

  it('rejects locally with ShedError("throttled") once the backend keeps refusing', async () => {
    const throttle = new AdaptiveThrottle({ random: () => 0 });
    for (let i = 0; i < 10; i++) {
      await throttle.execute(() => Promise.reject(Object.assign(new Error('busy'), { status: 429 }))).catch(() => undefined);
    }
    const fn = vi.fn(async () => 1);
    const error = await throttle.execute(fn).catch((e: unknown) => e);
    expect(isShedError(error) && error.reason).toBe('throttled');
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('KeyedRateLimiter.execute', () => {
  it('runs within the quota, then sheds with rateLimited and retryAfterMs, per key', async () => {
    const limiter = new KeyedRateLimiter({ limit: 1, windowMs: 1_000, burst: 1 });
    expect(await limiter.execute(async () => 'a', { key: 'tenant-a' })).toBe('a');
    const error = await limiter.execute(async () => 'again', { key: 'tenant-a' }).catch((e: unknown) => e);
    expect(isShedError(error)).toBe(true);
    expect(error).toMatchObject({ reason: 'rateLimited', retryAfterMs: 1_000 });
    expect(await limiter.execute(async () => 'b', { key: 'tenant-b' })).toBe('b');
  });

  it('hands the caller signal (or an enclosing context) to fn, and refuses an aborted one', async () => {
    const limiter = new KeyedRateLimiter({ limit: 10 });
    const caller = new AbortController();
    await limiter.execute(async (c) => expect(c.signal).toBe(caller.signal), { signal: caller.signal });
    const scope = CallScope.root();
    await limiter.execute(async (c) => expect(c).toBe(scope), scope);
    caller.abort('gone');
    await expect(limiter.execute(async () => 1, { signal: caller.signal })).rejects.toBe('gone');
  });
});

describe('OutboundScheduler.execute', () => {
  it('runs fn with a context, and the caller signal rejects at once', async () => {
    vi.useRealTimers();
    const scheduler = new OutboundScheduler({ maxConcurrent: 1 });
    try {
      expect(await scheduler.execute(async (c) => c.attempt)).toBe(1);
      const caller = new AbortController();
      const pending = scheduler.execute(never, { signal: caller.signal }).catch((e: unknown) => e);
      caller.abort(new Error('stop'));
      expect(await pending).toMatchObject({ message: 'stop' });
    } finally {
      await scheduler.close();
    }
  });
});

describe('in a wrap() chain', () => {
  it('limiter and throttle share the one context and the one classification', async () => {
    const limiter = new ConcurrencyLimiter({ limit: spyLimit(2) });
    const throttle = new AdaptiveThrottle({ random: () => 0.99 });
    const classify = vi.fn(() => 'overload' as const);
    const contexts: PolicyContext[] = [];
    const chain = wrap(throttle, limiter);
    await chain.execute(async (c) => contexts.push(c), { classify });
    expect(classify).toHaveBeenCalledTimes(1);
    expect(throttle.stats()).toMatchObject({ requests: 1, accepts: 0 });
    expect(contexts[0]).toBeInstanceOf(CallScope);
  });
});
