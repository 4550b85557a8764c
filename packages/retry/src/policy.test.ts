import { getEventListeners } from 'node:events';
import { isInvalidOptionError, MAX_TIMER_MS, TimeoutError } from '@ballast/common';
import { AbortError as PRetryAbortError } from 'p-retry';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { constantBackoff, exponentialBackoff } from './backoff.ts';
import { tokenBucketBudget } from './budget.ts';
import {
  isRetryBudgetExhaustedError,
  isRetryDeadlineError,
  isRetryError,
  isRetryPolicyClosedError,
  RetryBudgetExhaustedError,
  type RetryDeadlineError,
} from './errors.ts';
import { type AttemptContext, type RetryEvents, RetryPolicy, retry } from './policy.ts';
import { errorOf, settle } from './testing/settle.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** An operation that fails `failures` times (with `error`), then returns `value`; records when each attempt started. */
function flaky<T>(failures: number, value: T, error: (n: number) => unknown = (n) => new Error(`boom ${n}`)) {
  const calls: Array<{ at: number; context: AttemptContext }> = [];
  const fn = async (context: AttemptContext): Promise<T> => {
    calls.push({ at: Date.now(), context });
    if (calls.length <= failures) throw error(calls.length);
    return value;
  };
  return { fn, calls };
}

const response = (status: number, headers: Record<string, string> = {}) => ({ status, headers: new Headers(headers) });
const never = (context: AttemptContext) => new Promise<never>(() => void context);

describe('retry: counting and delays', () => {
  it('returns the first success with attempt 1 and a live signal, scheduling nothing', async () => {
    const { fn, calls } = flaky(0, 'ok');
    await expect(retry(fn)).resolves.toBe('ok');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.context.attempt).toBe(1);
    expect(calls[0]?.context.signal.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('maxAttempts counts every attempt, the first included, and rethrows the last error as is', async () => {
    const errors: Error[] = [];
    const { fn, calls } = flaky(Number.POSITIVE_INFINITY, 'never', (n) => {
      errors.push(new Error(`boom ${n}`));
      return errors.at(-1);
    });
    const result = settle(retry(fn, { maxAttempts: 4, backoff: constantBackoff({ delayMs: 10 }) }));
    await vi.runAllTimersAsync();
    expect(calls.map((c) => c.context.attempt)).toEqual([1, 2, 3, 4]);
    expect(await result).toEqual({ ok: false, error: errors[3] });
  });

  it('waits exactly the backoff delays between attempts', async () => {
    const start = Date.now();
    const { fn, calls } = flaky(3, 'ok');
    const policy = new RetryPolicy({ maxAttempts: 4, backoff: exponentialBackoff({ baseMs: 100, jitter: 'none' }) });
    const delays: number[] = [];
    policy.on('retry', ({ delayMs }) => delays.push(delayMs));
    const result = policy.execute(fn);
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe('ok');
    expect(calls.map((c) => c.at - start)).toEqual([0, 100, 300, 700]);
    expect(delays).toEqual([100, 200, 400]);
  });

  it('draws jitter from the injected random source', async () => {
    const start = Date.now();
    const { fn, calls } = flaky(2, 'ok');
    const result = retry(fn, { backoff: exponentialBackoff({ baseMs: 1_000 }), random: () => 0.25 });
    await vi.runAllTimersAsync();
    await result;
    expect(calls.map((c) => c.at - start)).toEqual([0, 250, 750]);
  });

  it('by default never retries at once: each delay is at least half its exponential ceiling', async () => {
    const start = Date.now();
    const { fn, calls } = flaky(2, 'ok');
    const result = retry(fn, { random: () => 0 });
    await vi.runAllTimersAsync();
    await result;
    expect(calls.map((c) => c.at - start)).toEqual([0, 50, 150]);
  });

  it.each([
    [Number.NaN, 0],
    [-5, 0],
    [Number.POSITIVE_INFINITY, MAX_TIMER_MS],
    [MAX_TIMER_MS * 4, MAX_TIMER_MS],
  ])('brings a custom strategy delay of %d ms into the timer range (%d ms)', async (returned, expected) => {
    const policy = new RetryPolicy({ backoff: { start: () => () => returned }, deadlineMs: Number.POSITIVE_INFINITY, maxAttempts: 2 });
    const delays: number[] = [];
    policy.on('retry', ({ delayMs }) => delays.push(delayMs));
    const { fn, calls } = flaky(1, 'ok');
    const result = policy.execute(fn);
    await vi.advanceTimersByTimeAsync(expected);
    await expect(result).resolves.toBe('ok');
    expect(delays).toEqual([expected]);
    expect(calls).toHaveLength(2);
  });

  it('ends at once on an error the classifier declines', async () => {
    const { fn, calls } = flaky(5, 'ok', () => new TypeError('x is not a function'));
    await expect(retry(fn)).rejects.toThrow('x is not a function');
    expect(calls).toHaveLength(1);
    const custom = flaky(5, 'ok', (n) => Object.assign(new Error('fatal'), { n }));
    await expect(retry(custom.fn, { retryOn: () => false })).rejects.toThrow('fatal');
    expect(custom.calls).toHaveLength(1);
  });

  it("honours p-retry's AbortError and rejects with the error it wraps", async () => {
    const cause = new Error('not found');
    const { fn, calls } = flaky(5, 'ok', () => new PRetryAbortError(cause));
    await expect(retry(fn)).rejects.toBe(cause);
    expect(calls).toHaveLength(1);
  });

  it('retries non-Error throws (p-retry would turn them into TypeErrors and stop)', async () => {
    const { fn, calls } = flaky(1, 'ok', () => 'string failure');
    const result = retry(fn);
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe('ok');
    expect(calls).toHaveLength(2);
  });
});

describe('retry on result', () => {
  it('retries a 503 value and returns the later success, discarding the 503', async () => {
    const values = [response(503), response(502), response(200)];
    const discarded: unknown[] = [];
    const fn = vi.fn(async () => values.shift());
    const result = retry(fn, { backoff: constantBackoff({ delayMs: 1 }), discard: (v) => discarded.push(v) });
    await vi.runAllTimersAsync();
    expect((await result)?.status).toBe(200);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(discarded.map((v) => (v as { status: number }).status)).toEqual([503, 502]);
  });

  it('returns the last retryable value when attempts run out, not an error', async () => {
    const policy = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff({ delayMs: 1 }) });
    const giveUps: RetryEvents['giveUp'][] = [];
    policy.on('giveUp', (e) => giveUps.push(e));
    const result = policy.execute(async () => response(503));
    await vi.runAllTimersAsync();
    expect((await result).status).toBe(503);
    expect(giveUps).toMatchObject([{ attempts: 2, reason: 'attempts', outcome: { ok: true } }]);
  });

  it('accepts a replaced classifier for values', async () => {
    let n = 0;
    const result = retry(async () => ++n, { retryOn: (o) => o.ok && o.value < 3, backoff: constantBackoff({ delayMs: 1 }) });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe(3);
  });
});

describe('server-driven delays', () => {
  it('never retries earlier than Retry-After in seconds', async () => {
    const values = [response(503, { 'retry-after': '3' }), response(200)];
    const fn = vi.fn(async () => values.shift());
    const result = retry(fn, { backoff: constantBackoff({ delayMs: 10 }) });
    await vi.advanceTimersByTimeAsync(2_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(2);
    expect((await result)?.status).toBe(200);
  });

  it('never retries earlier than a Retry-After HTTP date', async () => {
    vi.setSystemTime(new Date('2026-01-01T00:00:00.000Z'));
    const values = [response(429, { 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), response(200)];
    const fn = vi.fn(async () => values.shift());
    const policy = new RetryPolicy({ backoff: constantBackoff({ delayMs: 10 }) });
    const events: RetryEvents['retry'][] = [];
    policy.on('retry', (e) => events.push(e));
    const result = policy.execute(fn);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect((await result)?.status).toBe(200);
    expect(events[0]).toMatchObject({ attempt: 1, delayMs: 5_000, hintMs: 5_000 });
  });

  it('keeps the larger of backoff and hint, and reads error.retryAfterMs', async () => {
    const start = Date.now();
    const { fn, calls } = flaky(1, 'ok', () => Object.assign(new Error('throttled'), { retryAfterMs: 50 }));
    const result = retry(fn, { backoff: constantBackoff({ delayMs: 200 }) });
    await vi.runAllTimersAsync();
    await result;
    expect(calls.map((c) => c.at - start)).toEqual([0, 200]);
  });

  it('gives up at once when the hint exceeds the remaining deadline', async () => {
    const error = Object.assign(new Error('throttled'), { retryAfterMs: 20_000 });
    const { fn, calls } = flaky(5, 'ok', () => error);
    const result = settle(retry(fn, { deadlineMs: 10_000 }));
    await vi.advanceTimersByTimeAsync(0);
    const settled = await result;
    expect(calls).toHaveLength(1);
    expect(settled.ok).toBe(false);
    expect(isRetryDeadlineError(!settled.ok && settled.error)).toBe(true);
    expect(errorOf<RetryDeadlineError>(settled).cause).toBe(error);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never retries earlier than RateLimit-Reset on a 429', async () => {
    const values = [response(429, { 'ratelimit-reset': '2' }), response(200)];
    const fn = vi.fn(async () => values.shift());
    const result = retry(fn, { backoff: constantBackoff({ delayMs: 10 }) });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect((await result)?.status).toBe(200);
  });

  it("waits until the policy's clock reaches the hint, even when timers fire early against it", async () => {
    // A clock running at half the timers' pace: every timer fires "early" by its reading.
    const clock = { now: () => performance.now() / 2 };
    const starts: number[] = [];
    const values = [response(503, { 'retry-after': '1' }), response(200)];
    const result = retry(
      async () => {
        starts.push(clock.now());
        return values.shift();
      },
      { clock, backoff: constantBackoff({ delayMs: 0 }) },
    );
    await vi.advanceTimersByTimeAsync(1_999);
    expect(starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect((await result)?.status).toBe(200);
    expect((starts[1] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(1_000);
  });

  it('waits out a Retry-After beyond the timer limit in steps when there is no deadline, never firing early', async () => {
    const days40 = 40 * 86_400_000;
    const values = [response(503, { 'retry-after': String(days40 / 1000) }), response(200)];
    const fn = vi.fn(async () => values.shift());
    const result = retry(fn, { deadlineMs: Number.POSITIVE_INFINITY });
    await vi.advanceTimersByTimeAsync(days40 - 1);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect((await result)?.status).toBe(200);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('can ignore hints', async () => {
    const values = [response(503, { 'retry-after': '3600' }), response(200)];
    const result = retry(async () => values.shift(), { delayHint: false, backoff: constantBackoff({ delayMs: 5 }) });
    await vi.advanceTimersByTimeAsync(5);
    expect((await result)?.status).toBe(200);
  });
});

describe('timeouts and deadline', () => {
  it('aborts a slow attempt after timeoutMs with a TimeoutError and retries it', async () => {
    const signals: AbortSignal[] = [];
    let n = 0;
    const fn = (context: AttemptContext) => {
      signals.push(context.signal);
      return ++n < 3 ? never(context) : Promise.resolve('ok');
    };
    const result = retry(fn, { timeoutMs: 1_000, backoff: constantBackoff({ delayMs: 10 }) });
    await vi.advanceTimersByTimeAsync(999);
    expect(signals).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toBeInstanceOf(TimeoutError);
    await vi.advanceTimersByTimeAsync(1_020); // wait 10, second attempt times out at 2_010, wait 10
    await expect(result).resolves.toBe('ok');
    expect(signals.map((s) => s.aborted)).toEqual([true, true, false]);
    expect(new Set(signals).size).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('discards a value that arrives after its attempt timed out', async () => {
    const discarded: string[] = [];
    const fn = ({ attempt }: AttemptContext) =>
      new Promise<string>((resolve) => setTimeout(() => resolve(`value ${attempt}`), attempt === 1 ? 500 : 10));
    const result = retry(fn, { timeoutMs: 100, backoff: constantBackoff({ delayMs: 1 }), discard: (v) => discarded.push(v) });
    await vi.advanceTimersByTimeAsync(600);
    await expect(result).resolves.toBe('value 2');
    expect(discarded).toEqual(['value 1']);
  });

  it('rejects with the last TimeoutError when every attempt times out', async () => {
    const result = settle(retry(never, { maxAttempts: 2, timeoutMs: 100, backoff: constantBackoff({ delayMs: 1 }) }));
    await vi.runAllTimersAsync();
    const settled = await result;
    expect(!settled.ok && settled.error).toBeInstanceOf(TimeoutError);
  });

  it('aborts the attempt in flight when the deadline passes', async () => {
    const signals: AbortSignal[] = [];
    const fn = (context: AttemptContext) => {
      signals.push(context.signal);
      return signals.length === 1 ? Promise.reject(new Error('first')) : never(context);
    };
    const result = settle(retry(fn, { deadlineMs: 1_000, backoff: constantBackoff({ delayMs: 100 }) }));
    await vi.advanceTimersByTimeAsync(999);
    expect(signals).toHaveLength(2);
    expect(signals[1]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const settled = await result;
    expect(signals[1]?.aborted).toBe(true);
    expect(isRetryDeadlineError(!settled.ok && settled.error)).toBe(true);
    expect(errorOf<RetryDeadlineError>(settled).attempts).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not start a wait that would end past the deadline', async () => {
    const { fn, calls } = flaky(5, 'ok');
    const result = settle(retry(fn, { deadlineMs: 150, backoff: constantBackoff({ delayMs: 100 }) }));
    await vi.advanceTimersByTimeAsync(100);
    const settled = await result;
    expect(calls).toHaveLength(2);
    expect(isRetryDeadlineError(!settled.ok && settled.error)).toBe(true);
  });
});

describe('the deadline of a first attempt, counted from the end of its turn', () => {
  it('a call that ends within the turn it started in reads no clock and sets no timer entry', async () => {
    const clock = { now: vi.fn(() => performance.now()) };
    const policy = new RetryPolicy({ clock, timeoutMs: 1_000 });
    await expect(policy.execute(async () => 'ok')).resolves.toBe('ok');
    await expect(policy.execute(() => 'sync')).resolves.toBe('sync');
    expect(clock.now).not.toHaveBeenCalled();
    policy.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a call still running at the end of its turn is stamped once, with every other call of that turn', async () => {
    const clock = { now: vi.fn(() => performance.now()) };
    const policy = new RetryPolicy({ clock, deadlineMs: 1_000 });
    const calls = [settle(policy.execute(never)), settle(policy.execute(never)), settle(policy.execute(never))];
    await vi.advanceTimersByTimeAsync(0);
    // One reading stamps all three; arming the shared timer reads the clock once more.
    expect(clock.now).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(policy.stats().inFlight).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    for (const call of calls) expect(isRetryDeadlineError(errorOf(await call))).toBe(true);
    policy.close();
  });

  it('the first attempt is aborted at its time limit, never before', async () => {
    const signals: AbortSignal[] = [];
    const policy = new RetryPolicy({ maxAttempts: 1, timeoutMs: 100 });
    const result = settle(
      policy.execute((context) => {
        signals.push(context.signal);
        return never(context);
      }),
    );
    await vi.advanceTimersByTimeAsync(99);
    expect(signals[0]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(signals[0]?.aborted).toBe(true);
    expect(errorOf(await result)).toBeInstanceOf(TimeoutError);
    policy.close();
  });

  it('a first attempt that fails within its turn counts the deadline from then', async () => {
    const { fn, calls } = flaky(5, 'ok');
    const result = settle(retry(fn, { maxAttempts: 10, deadlineMs: 250, backoff: constantBackoff({ delayMs: 100 }) }));
    await vi.advanceTimersByTimeAsync(250);
    // Attempts at 0, 100 and 200; the wait after the third would end past the deadline.
    expect(calls.map((c) => c.at - (calls[0]?.at ?? 0))).toEqual([0, 100, 200]);
    expect(isRetryDeadlineError(errorOf(await result))).toBe(true);
  });

  it('close() aborts a call whose start is not stamped yet and leaves no timer, the pending stamp included', async () => {
    const policy = new RetryPolicy();
    const result = settle(policy.execute(never));
    expect(vi.getTimerCount()).toBe(1);
    policy.close();
    expect(isRetryPolicyClosedError(errorOf(await result))).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('cancellation', () => {
  it('does not call fn when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    const fn = vi.fn(async () => 'ok');
    await expect(retry(fn, { signal: controller.signal })).rejects.toThrow('gone');
    expect(fn).not.toHaveBeenCalled();
  });

  it('aborts the attempt in flight with the caller reason, even if fn ignores its signal', async () => {
    const controller = new AbortController();
    let attemptSignal: AbortSignal | undefined;
    const result = settle(
      retry(
        (c) => {
          attemptSignal = c.signal;
          return never(c);
        },
        { signal: controller.signal },
      ),
    );
    await vi.advanceTimersByTimeAsync(10);
    const reason = new Error('user left');
    controller.abort(reason);
    expect(await result).toEqual({ ok: false, error: reason });
    expect(attemptSignal?.reason).toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops the wait between attempts', async () => {
    const controller = new AbortController();
    const { fn, calls } = flaky(5, 'ok');
    const policy = new RetryPolicy({ backoff: constantBackoff({ delayMs: 1_000 }) });
    const giveUps: RetryEvents['giveUp'][] = [];
    policy.on('giveUp', (e) => giveUps.push(e));
    const result = settle(policy.execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(500);
    controller.abort(new Error('stop'));
    expect(await result).toMatchObject({ ok: false, error: { message: 'stop' } });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toHaveLength(1);
    expect(giveUps).toMatchObject([{ reason: 'aborted', attempts: 1 }]);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    policy.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts a later attempt in flight, after a retry', async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const fn = (context: AttemptContext) => {
      signals.push(context.signal);
      return signals.length === 1 ? Promise.reject(new Error('first')) : never(context);
    };
    const result = settle(retry(fn, { signal: controller.signal, backoff: constantBackoff({ delayMs: 100 }) }));
    await vi.advanceTimersByTimeAsync(150);
    expect(signals).toHaveLength(2);
    controller.abort(new Error('stop'));
    expect(await result).toMatchObject({ ok: false, error: { message: 'stop' } });
    expect(signals[1]?.aborted).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops when the caller aborts between the retry decision and the wait (from a retry listener)', async () => {
    const controller = new AbortController();
    const policy = new RetryPolicy({ backoff: constantBackoff({ delayMs: 1_000 }) });
    policy.on('retry', () => controller.abort(new Error('enough')));
    const { fn, calls } = flaky(5, 'ok');
    const result = settle(policy.execute(fn, { signal: controller.signal }));
    expect(await result).toMatchObject({ ok: false, error: { message: 'enough' } });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toHaveLength(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    policy.close(); // the lapsed deadline's shared timer
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a classifier that throws ends the call with its error, reported as notRetryable', async () => {
    const bug = new Error('classifier bug');
    const policy = new RetryPolicy({
      retryOn: () => {
        throw bug;
      },
    });
    const reasons: string[] = [];
    policy.on('giveUp', (e) => reasons.push(e.reason));
    await expect(policy.execute(async () => 1)).rejects.toBe(bug);
    expect(reasons).toEqual(['notRetryable']);
  });

  it('leaves no listener on a long-lived caller signal after many calls', async () => {
    const controller = new AbortController();
    const policy = new RetryPolicy({ timeoutMs: 1_000 });
    for (let i = 0; i < 50; i++) await policy.execute(async () => i, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // Every attempt's timeout shares one unref'd timer, which lapses once no attempt needs it.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(vi.getTimerCount()).toBe(0);
    expect(policy.stats()).toMatchObject({ calls: 50, attempts: 50, successes: 50, inFlight: 0 });
  });
});

describe('budget', () => {
  it('ends with RetryBudgetExhaustedError and a budgetExhausted event when the budget refuses', async () => {
    const budget = tokenBucketBudget({ maxTokens: 4, tokenRatio: 1 });
    const policy = new RetryPolicy({ maxAttempts: 5, budget, backoff: constantBackoff({ delayMs: 1 }) });
    const exhausted: RetryEvents['budgetExhausted'][] = [];
    policy.on('budgetExhausted', (e) => exhausted.push(e));
    const error = new Error('down');
    const fn = vi.fn(async () => {
      throw error;
    });
    const result = settle(policy.execute(fn));
    await vi.runAllTimersAsync();
    const settled = await result;
    // 4 tokens: failures leave 3 (retry allowed), 2 (refused: not above half of 4).
    expect(fn).toHaveBeenCalledTimes(2);
    expect(!settled.ok && settled.error).toBeInstanceOf(RetryBudgetExhaustedError);
    expect(isRetryBudgetExhaustedError(!settled.ok && settled.error)).toBe(true);
    expect(errorOf<Error>(settled).cause).toBe(error);
    expect(exhausted).toMatchObject([{ attempts: 2, kind: 'retry', budget: { kind: 'tokenBucket', tokens: 2, suppressed: 1 } }]);
    expect(policy.stats()).toMatchObject({ retries: 1, budgetExhausted: 1, giveUps: 1 });
  });

  it('ends with RetryBudgetExhaustedError carrying the last value when the budget refuses to retry a value', async () => {
    const budget = tokenBucketBudget({ maxTokens: 4, tokenRatio: 1 });
    const discarded: unknown[] = [];
    const policy = new RetryPolicy<{ status: number; headers: Headers }>({
      maxAttempts: 5,
      budget,
      backoff: constantBackoff({ delayMs: 1 }),
      delayHint: false,
      discard: (value) => discarded.push(value),
    });
    const exhausted: RetryEvents['budgetExhausted'][] = [];
    const giveUps: RetryEvents['giveUp'][] = [];
    policy.on('budgetExhausted', (e) => exhausted.push(e));
    policy.on('giveUp', (e) => giveUps.push(e));
    const answers = [response(503), response(503, { 'retry-after': '1' })];
    const fn = vi.fn(async ({ attempt }: AttemptContext) => answers[attempt - 1] ?? response(200));
    const result = settle(policy.execute(fn));
    await vi.runAllTimersAsync();
    const settled = await result;
    expect(fn).toHaveBeenCalledTimes(2);
    const error = errorOf<RetryBudgetExhaustedError<{ status: number; headers: Headers }>>(settled);
    expect(error).toBeInstanceOf(RetryBudgetExhaustedError);
    expect(error.attempts).toBe(2);
    expect(error.lastValue).toBe(answers[1]);
    expect(error.lastValue?.headers.get('retry-after')).toBe('1');
    expect(error.cause).toBeUndefined();
    // The retried value was released; the one handed to the caller in the error was not.
    expect(discarded).toEqual([answers[0]]);
    expect(exhausted).toMatchObject([{ attempts: 2, kind: 'retry' }]);
    expect(giveUps).toMatchObject([{ attempts: 2, reason: 'budget', outcome: { ok: true, value: answers[1], attempt: 2 } }]);
    expect(policy.stats()).toMatchObject({ retries: 1, budgetExhausted: 1, giveUps: 1, successes: 0 });
  });

  it('still returns the last value when attempts run out on a value, budget or not', async () => {
    const budget = tokenBucketBudget();
    const last = response(503);
    const result = retry(async () => last, { maxAttempts: 2, budget, backoff: constantBackoff({ delayMs: 1 }) });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe(last);
  });

  it('earns tokens back on success', async () => {
    const budget = tokenBucketBudget({ maxTokens: 10, tokenRatio: 0.5 });
    const { fn } = flaky(1, 'ok');
    const result = retry(fn, { budget, backoff: constantBackoff({ delayMs: 1 }) });
    await vi.runAllTimersAsync();
    await result;
    expect(budget.tokens).toBe(9.5);
  });
});

describe('policy lifecycle', () => {
  it('close() aborts waits and attempts in flight, refuses new calls and leaves no timer', async () => {
    const policy = new RetryPolicy({ backoff: constantBackoff({ delayMs: 10_000 }) });
    const waiting = settle(policy.execute(flaky(5, 'ok').fn));
    let attemptSignal: AbortSignal | undefined;
    const running = settle(
      policy.execute((c) => {
        attemptSignal = c.signal;
        return never(c);
      }),
    );
    await vi.advanceTimersByTimeAsync(1);
    expect(policy.stats().inFlight).toBe(2);
    policy.close();
    const [a, b] = await Promise.all([waiting, running]);
    expect(isRetryPolicyClosedError(!a.ok && a.error)).toBe(true);
    expect(isRetryPolicyClosedError(!b.ok && b.error)).toBe(true);
    expect(attemptSignal?.aborted).toBe(true);
    await expect(policy.execute(async () => 1)).rejects.toSatisfy(isRetryPolicyClosedError);
    expect(policy.stats().inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    policy.close();
  });

  it('close() between steps (from a retry listener) stops the call before the next wait or attempt', async () => {
    const policy = new RetryPolicy({ backoff: constantBackoff({ delayMs: 10 }) });
    policy.on('retry', () => policy.close());
    const { fn, calls } = flaky(5, 'ok');
    const result = settle(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(100);
    const settled = await result;
    expect(isRetryPolicyClosedError(errorOf(settled))).toBe(true);
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('supports using-declarations', async () => {
    let escaped: RetryPolicy | undefined;
    {
      using policy = new RetryPolicy();
      escaped = policy;
    }
    await expect(escaped.execute(async () => 1)).rejects.toSatisfy(isRetryError);
  });

  it('reports retry and giveUp events with attempts and delays', async () => {
    const policy = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff({ delayMs: 7 }) });
    const seen: string[] = [];
    policy.on('retry', (e) => seen.push(`retry ${e.attempt} ${e.delayMs}`));
    const off = policy.on('giveUp', (e) => seen.push(`giveUp ${e.attempts} ${e.reason}`));
    const result = settle(policy.execute(flaky(9, 'x').fn));
    await vi.runAllTimersAsync();
    await result;
    off();
    expect(seen).toEqual(['retry 1 7', 'retry 2 7', 'giveUp 3 attempts']);
    expect(policy.stats()).toMatchObject({ calls: 1, attempts: 3, retries: 2, giveUps: 1, successes: 0 });
  });

  it.each([
    [{ maxAttempts: 0 }, 'maxAttempts'],
    [{ maxAttempts: 1.5 }, 'maxAttempts'],
    [{ timeoutMs: -1 }, 'timeoutMs'],
    [{ deadlineMs: Number.NaN }, 'deadlineMs'],
    [{ backoff: {} }, 'backoff'],
    [{ budget: {} }, 'budget'],
    [{ retryOn: 3 }, 'retryOn'],
    [{ hedgeDelayMs: -5 }, 'hedgeDelayMs'],
    [{ clock: {} }, 'clock'],
    [{ random: 0.5 }, 'random'],
    [{ delayHint: 'retry-after' }, 'delayHint'],
    [{ signal: { aborted: false } }, 'signal'],
  ])('rejects %o naming %s', async (options, option) => {
    if (option === 'signal') {
      const policy = new RetryPolicy();
      await expect(policy.execute(async () => 1, options as never)).rejects.toThrowError(expect.objectContaining({ option }));
      await expect(policy.hedge(async () => 1, options as never)).rejects.toThrowError(expect.objectContaining({ option }));
    } else {
      expect(() => new RetryPolicy(options as never)).toThrowError(expect.objectContaining({ option }));
    }
    const rejection = await settle(retry(async () => 1, options as never));
    expect(isInvalidOptionError(!rejection.ok && rejection.error)).toBe(true);
  });

  it('types the value through', () => {
    expectTypeOf(retry(async () => 42)).toEqualTypeOf<Promise<number>>();
    const policy = new RetryPolicy<{ status: number }>();
    expectTypeOf(policy.execute(async () => ({ status: 200, body: 'x' }))).toEqualTypeOf<Promise<{ status: number; body: string }>>();
    expectTypeOf<RetryEvents['retry']['delayMs']>().toEqualTypeOf<number>();
    // @ts-expect-error a wrong expectation must fail the typecheck (tsc -p checks this file)
    expectTypeOf(policy.execute(async () => 1)).toEqualTypeOf<Promise<string>>();
  });
});
