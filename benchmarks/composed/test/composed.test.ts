/**
 * The composed stack of the common README, with the real policies: retry ∘ breaker ∘
 * limiter ∘ timeout under one wrap(), one signal and one classification.
 */

import { getEventListeners } from 'node:events';
import { ConcurrencyLimiter } from '@ballast/backpressure';
import { CircuitBreaker } from '@ballast/circuit-breaker';
import { CallScope, type Classifier, isTimeoutError, type PolicyContext, TimeoutPolicy, wrap } from '@ballast/common';
import { constantBackoff, RetryPolicy } from '@ballast/retry';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
}

function stack(options: { timeoutMs?: number; limit?: number } = {}) {
  const retry = new RetryPolicy<Answer>({ maxAttempts: 3, backoff: constantBackoff({ delayMs: 10 }) });
  const breaker = new CircuitBreaker<Answer>({ name: 'upstream', timeoutMs: false, opossum: { volumeThreshold: 100 } });
  const limiter = new ConcurrencyLimiter({ limit: options.limit ?? 10 });
  const timeout = new TimeoutPolicy({ timeoutMs: options.timeoutMs ?? 1_000 });
  const dispose = (): void => {
    retry.close();
    breaker.dispose();
    limiter.close();
    timeout.close();
  };
  return { chain: wrap(retry, breaker, limiter, timeout), retry, breaker, limiter, timeout, dispose };
}

/** 5xx are failures; an `answer` with status 429 is an overload; the rest succeed. */
const classify: Classifier<Answer> = (o) =>
  !o.ok ? 'failure' : o.value.status === 429 ? 'overload' : o.value.status >= 500 ? 'failure' : 'success';

describe('retry ∘ breaker ∘ limiter ∘ timeout', () => {
  it('a success goes through every layer once, with one context', async () => {
    const s = stack();
    const contexts: PolicyContext[] = [];
    const answer = await s.chain.execute(async (context) => {
      contexts.push(context);
      return { status: 200, headers: {} };
    });
    expect(answer.status).toBe(200);
    expect(contexts).toHaveLength(1);
    expect(contexts[0]?.attempt).toBe(1);
    expect(s.retry.stats()).toMatchObject({ calls: 1, attempts: 1, successes: 1 });
    expect(s.breaker.stats().calls.success).toBe(1);
    expect(s.limiter.stats().admitted).toBe(1);
    expect(s.limiter.inflight).toBe(0);
    s.dispose();
  });

  it('classifies each attempt once for every policy, and retries what it judges a failure', async () => {
    const s = stack();
    const judged = vi.fn(classify);
    const statuses = [503, 503, 200];
    const pending = s.chain.execute(async ({ attempt }) => ({ status: statuses[attempt - 1] as number, headers: {} }), {
      classify: judged,
    });
    await vi.advanceTimersByTimeAsync(100);
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(judged).toHaveBeenCalledTimes(3);
    expect(s.breaker.stats().calls).toMatchObject({ result: 2, success: 1 });
    expect(s.retry.stats()).toMatchObject({ attempts: 3, retries: 2 });
    s.dispose();
  });

  it('the timeout aborts one attempt, which the breaker counts and the retry repeats', async () => {
    const s = stack({ timeoutMs: 50 });
    const signals: AbortSignal[] = [];
    const pending = s.chain.execute(({ attempt, signal }) => {
      signals.push(signal);
      return attempt === 1 ? new Promise<Answer>(() => {}) : Promise.resolve({ status: 200, headers: {} });
    });
    await vi.advanceTimersByTimeAsync(100);
    expect((await pending).status).toBe(200);
    expect(signals[0]?.aborted).toBe(true);
    expect(isTimeoutError(signals[0]?.reason)).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
    expect(s.breaker.stats().calls).toMatchObject({ error: 1, success: 1 });
    s.dispose();
  });

  it('the caller cancels the whole stack through one signal, and nothing counts as a failure', async () => {
    const s = stack();
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const pending = s.chain
      .execute(
        (context) => {
          signal = context.signal;
          return new Promise<Answer>(() => {});
        },
        { signal: caller.signal },
      )
      .catch((e: unknown) => e);
    caller.abort(new Error('client left'));
    expect(await pending).toMatchObject({ message: 'client left' });
    expect(signal?.aborted).toBe(true);
    expect(s.breaker.stats().calls).toMatchObject({ error: 0, ignored: 1 });
    expect(s.retry.stats().retries).toBe(0);
    expect(s.limiter.inflight).toBe(0);
    s.dispose();
  });

  it('an open circuit refuses at once, without running the work or taking a slot; retry honours its retryAfterMs', async () => {
    const s = stack();
    s.breaker.trip();
    const fn = vi.fn(async () => ({ status: 200, headers: {} }));
    const pending = s.chain.execute(fn, { classify }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    // The circuit stays open for 30 s, as long as the retry deadline: the retry gives up at once.
    expect(await pending).toMatchObject({ code: 'ERR_BALLAST_RETRY_DEADLINE', cause: { code: 'ERR_BALLAST_CIRCUIT_OPEN' } });
    expect(s.retry.stats().attempts).toBe(1);
    expect(fn).not.toHaveBeenCalled();
    expect(s.limiter.stats().admitted).toBe(0);
    s.dispose();
  });
});

describe('one promise per call: every policy still ends the call at once', () => {
  function once(options: { timeoutMs?: number } = {}) {
    const retry = new RetryPolicy<Answer>({ maxAttempts: 1 });
    const breaker = new CircuitBreaker<Answer>({ name: 'upstream', timeoutMs: false });
    const limiter = new ConcurrencyLimiter({ limit: 10 });
    const timeout = new TimeoutPolicy({ timeoutMs: options.timeoutMs ?? 1_000 });
    const close = (): void => {
      retry.close();
      breaker.dispose();
      limiter.close();
      timeout.close();
    };
    return { chain: wrap(retry, breaker, limiter, timeout), retry, breaker, limiter, timeout, close };
  }
  const ignoresItsSignal = (): Promise<Answer> => new Promise<Answer>(() => {});

  it('the timeout rejects the call when it fires, though the work ignores its signal; every layer lets go of it', async () => {
    const s = once({ timeoutMs: 50 });
    const pending = s.chain.execute(ignoresItsSignal).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(49);
    expect(s.limiter.inflight).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(await pending)).toBe(true);
    expect(s.limiter.inflight).toBe(0);
    expect(s.breaker.inFlight).toBe(0);
    expect(s.timeout.stats().inFlight).toBe(0);
    expect(s.retry.stats().inFlight).toBe(0);
    s.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("the caller's abort rejects the call at once, and no listener stays on the caller's signal", async () => {
    const s = once();
    const caller = new AbortController();
    const pending = s.chain.execute(ignoresItsSignal, { signal: caller.signal }).catch((e: unknown) => e);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    caller.abort(new Error('client left'));
    expect(await pending).toMatchObject({ message: 'client left' });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(s.limiter.inflight).toBe(0);
    expect(s.breaker.inFlight).toBe(0);
    s.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a call that ends, either way, leaves no listener on the caller's signal", async () => {
    const s = once();
    const caller = new AbortController();
    await s.chain.execute(async () => ({ status: 200, headers: {} }), { signal: caller.signal });
    await s.chain
      .execute(
        async () => {
          throw new TypeError('bug');
        },
        { signal: caller.signal },
      )
      .catch(() => undefined);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    s.close();
  });

  it('disposing the breaker rejects a call in flight at once and aborts its work', async () => {
    const s = once();
    let signal: AbortSignal | undefined;
    const pending = s.chain
      .execute((context) => {
        signal = context.signal;
        return ignoresItsSignal();
      })
      .catch((e: unknown) => e);
    s.breaker.dispose();
    expect(await pending).toMatchObject({ code: 'ERR_BALLAST_BREAKER_DISPOSED' });
    expect(signal?.aborted).toBe(true);
    expect(s.limiter.inflight).toBe(0);
    s.close();
  });

  it('closing the policies ends a call in flight and leaves no timer, the retry deadline included', async () => {
    const s = once();
    const pending = s.chain.execute(ignoresItsSignal).catch((e: unknown) => e);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    s.close();
    expect(await pending).toBeInstanceOf(Error);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a value that arrives after the timeout is neither delivered nor left unhandled', async () => {
    const s = once({ timeoutMs: 50 });
    let resolveLate: ((answer: Answer) => void) | undefined;
    const pending = s.chain
      .execute(
        () =>
          new Promise<Answer>((resolve) => {
            resolveLate = resolve;
          }),
      )
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    resolveLate?.({ status: 200, headers: {} });
    await vi.advanceTimersByTimeAsync(0);
    expect(isTimeoutError(await pending)).toBe(true);
    expect(s.breaker.stats().calls).toMatchObject({ timeout: 0, error: 1, success: 0 });
    s.close();
  });

  it('a limiter first in a chain hands the policies inside it one scope of the call', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 10 });
    const timeout = new TimeoutPolicy({ timeoutMs: 50 });
    let context: PolicyContext | undefined;
    const pending = wrap(limiter, timeout)
      .execute((c) => {
        context = c;
        return ignoresItsSignal();
      })
      .catch((e: unknown) => e);
    expect(CallScope.isScope(context)).toBe(true);
    await vi.advanceTimersByTimeAsync(50);
    expect(isTimeoutError(await pending)).toBe(true);
    expect(context?.signal.aborted).toBe(true);
    expect(limiter.inflight).toBe(0);
    limiter.close();
    timeout.close();
  });
});
