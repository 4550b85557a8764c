import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ratioBudget, tokenBucketBudget } from './budget.ts';
import {
  isRetryBudgetExhaustedError,
  isRetryDeadlineError,
  isRetryPolicyClosedError,
  type RetryBudgetExhaustedError,
  type RetryDeadlineError,
} from './errors.ts';
import { type AttemptContext, hedge, type RetryEvents, RetryPolicy } from './policy.ts';
import { errorOf, settle } from './testing/settle.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** An endpoint answering after `ms` (or failing with `error`), honouring its signal, recording what happened. */
function endpoint(ms: number, value: string, error?: Error) {
  const log = { started: 0, aborted: 0, signals: [] as AbortSignal[] };
  const call = ({ signal }: AttemptContext) => {
    log.started++;
    log.signals.push(signal);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => (error ? reject(error) : resolve(value)), ms);
      signal.addEventListener(
        'abort',
        () => {
          log.aborted++;
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  };
  return { call, log };
}

describe('hedge', () => {
  it('starts a second attempt on another endpoint after the delay, takes the first success and cancels the loser', async () => {
    const slow = endpoint(1_000, 'slow');
    const fast = endpoint(30, 'fast');
    const policy = new RetryPolicy({ hedgeDelayMs: 50, maxAttempts: 2 });
    const hedges: RetryEvents['hedge'][] = [];
    policy.on('hedge', (e) => hedges.push(e));
    const result = policy.hedge(({ attempt, signal }) => (attempt === 1 ? slow : fast).call({ attempt, signal }));
    await vi.advanceTimersByTimeAsync(49);
    expect(fast.log.started).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(fast.log.started).toBe(1);
    await vi.advanceTimersByTimeAsync(30);
    await expect(result).resolves.toBe('fast');
    expect(slow.log.aborted).toBe(1);
    expect(slow.log.signals[0]?.aborted).toBe(true);
    expect(hedges).toEqual([{ attempt: 2, afterMs: 50, inFlight: 1 }]);
    expect(policy.stats()).toMatchObject({ calls: 1, attempts: 2, hedges: 1, successes: 1, inFlight: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('schedules nothing after an operation that answers synchronously', async () => {
    const fn = vi.fn(() => 'sync');
    await expect(hedge(fn, { hedgeDelayMs: 50, maxAttempts: 3 })).resolves.toBe('sync');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends no hedge when the first attempt answers in time', async () => {
    const a = endpoint(10, 'a');
    const result = hedge(a.call, { hedgeDelayMs: 50 });
    await vi.advanceTimersByTimeAsync(10);
    await expect(result).resolves.toBe('a');
    expect(a.log.started).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts the next attempt at once when one fails, and rejects with the last error when all fail', async () => {
    const errors = [new Error('a down'), new Error('b down'), new Error('c down')];
    const started: number[] = [];
    const result = settle(
      hedge(
        ({ attempt, signal }) => {
          started.push(Date.now());
          return endpoint(5, '', errors[attempt - 1]).call({ attempt, signal });
        },
        { hedgeDelayMs: 1_000, maxAttempts: 3 },
      ),
    );
    await vi.advanceTimersByTimeAsync(15);
    expect(started).toEqual([0, 5, 10].map((ms) => started[0]! + ms));
    expect(await result).toEqual({ ok: false, error: errors[2] });
  });

  it('counts an allowed hedge against the budget like a retry', async () => {
    const budget = ratioBudget({ ratio: 1, minRetriesPerSec: 0 });
    const slow = endpoint(1_000, 'slow');
    const fast = endpoint(10, 'fast');
    const result = hedge(({ attempt, signal }) => (attempt === 1 ? slow : fast).call({ attempt, signal }), {
      hedgeDelayMs: 20,
      maxAttempts: 3,
      budget,
    });
    await vi.advanceTimersByTimeAsync(30);
    await expect(result).resolves.toBe('fast');
    expect(budget.stats()).toMatchObject({ requests: 1, retries: 1, allowed: 1, suppressed: 0 });
    expect(slow.log.aborted).toBe(1);
  });

  it('counts hedges against the budget: a refused hedge emits budgetExhausted and the call waits for the first attempt', async () => {
    const budget = tokenBucketBudget({ maxTokens: 2 });
    budget.onFailure(); // 1 token left: not above half, so no hedge
    const policy = new RetryPolicy({ hedgeDelayMs: 10, budget });
    const exhausted: RetryEvents['budgetExhausted'][] = [];
    policy.on('budgetExhausted', (e) => exhausted.push(e));
    const slow = endpoint(100, 'slow');
    const result = policy.hedge(slow.call);
    await vi.advanceTimersByTimeAsync(100);
    await expect(result).resolves.toBe('slow');
    expect(slow.log.started).toBe(1);
    expect(exhausted).toMatchObject([{ kind: 'hedge', attempts: 1 }]);
    expect(budget.stats().suppressed).toBe(1);
  });

  it('ends with RetryBudgetExhaustedError when the only attempt failed and the budget refuses another', async () => {
    const budget = tokenBucketBudget({ maxTokens: 2 });
    const result = settle(hedge(endpoint(5, '', new Error('down')).call, { budget, hedgeDelayMs: 50 }));
    await vi.advanceTimersByTimeAsync(5);
    const settled = await result;
    expect(isRetryBudgetExhaustedError(!settled.ok && settled.error)).toBe(true);
  });

  it('ends with RetryBudgetExhaustedError carrying the last value when the budget refuses to retry a value, as execute() does', async () => {
    const budget = tokenBucketBudget({ maxTokens: 2 });
    const unavailable = { status: 503, headers: new Headers() };
    const discarded: unknown[] = [];
    const policy = new RetryPolicy<typeof unavailable>({ budget, hedgeDelayMs: 50, discard: (v) => discarded.push(v) });
    const giveUps: RetryEvents['giveUp'][] = [];
    const exhausted: RetryEvents['budgetExhausted'][] = [];
    policy.on('giveUp', (e) => giveUps.push(e));
    policy.on('budgetExhausted', (e) => exhausted.push(e));
    const result = settle(policy.hedge(async () => unavailable));
    await vi.advanceTimersByTimeAsync(0);
    const settled = await result;
    expect(isRetryBudgetExhaustedError(!settled.ok && settled.error)).toBe(true);
    expect(errorOf<RetryBudgetExhaustedError>(settled).lastValue).toBe(unavailable);
    expect(errorOf<RetryBudgetExhaustedError>(settled).cause).toBeUndefined();
    expect(discarded).toEqual([]);
    expect(exhausted).toMatchObject([{ attempts: 1, kind: 'hedge' }]);
    expect(giveUps).toMatchObject([{ attempts: 1, reason: 'budget', outcome: { ok: true, value: unavailable } }]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts every attempt at the deadline', async () => {
    const slow = endpoint(10_000, 'slow');
    const result = settle(hedge(slow.call, { hedgeDelayMs: 100, maxAttempts: 3, deadlineMs: 1_000 }));
    await vi.advanceTimersByTimeAsync(1_000);
    const settled = await result;
    expect(isRetryDeadlineError(!settled.ok && settled.error)).toBe(true);
    expect(slow.log).toMatchObject({ started: 3, aborted: 3 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops on caller abort and on close, leaving no timer', async () => {
    const controller = new AbortController();
    const slow = endpoint(10_000, 'slow');
    const policy = new RetryPolicy({ hedgeDelayMs: 100 });
    const aborted = settle(policy.hedge(slow.call, { signal: controller.signal }));
    const closed = settle(policy.hedge(slow.call));
    await vi.advanceTimersByTimeAsync(150);
    controller.abort(new Error('bye'));
    expect(await aborted).toMatchObject({ ok: false, error: { message: 'bye' } });
    policy.close();
    const c = await closed;
    expect(isRetryPolicyClosedError(!c.ok && c.error)).toBe(true);
    expect(slow.log.started).toBe(4);
    expect(slow.log.aborted).toBe(4);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("never starts the next attempt before a failed attempt's Retry-After", async () => {
    const starts: number[] = [];
    const t0 = Date.now();
    const result = hedge(
      async ({ attempt }) => {
        starts.push(Date.now() - t0);
        return { status: attempt === 1 ? 503 : 200, headers: new Headers(attempt === 1 ? { 'retry-after': '5' } : {}) };
      },
      { hedgeDelayMs: 100, maxAttempts: 3 },
    );
    await vi.advanceTimersByTimeAsync(4_999);
    expect(starts).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect((await result).status).toBe(200);
    expect(starts).toEqual([0, 5_000]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives up at once with RetryDeadlineError when the hint does not fit before the deadline', async () => {
    const error = Object.assign(new Error('throttled'), { retryAfterMs: 20_000 });
    const a = endpoint(5, '', error);
    const result = settle(hedge(a.call, { hedgeDelayMs: 100, maxAttempts: 3, deadlineMs: 10_000 }));
    await vi.advanceTimersByTimeAsync(5);
    const settled = await result;
    expect(a.log.started).toBe(1);
    expect(isRetryDeadlineError(!settled.ok && settled.error)).toBe(true);
    expect(errorOf<RetryDeadlineError>(settled).cause).toBe(error);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends with RetryBudgetExhaustedError when the budget refuses the attempt that waited for a hint', async () => {
    const budget = tokenBucketBudget({ maxTokens: 2 });
    const a = endpoint(5, '', Object.assign(new Error('throttled'), { retryAfterMs: 100 }));
    const result = settle(hedge(a.call, { budget, hedgeDelayMs: 1_000 }));
    await vi.advanceTimersByTimeAsync(104);
    expect(a.log.started).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const settled = await result;
    expect(isRetryBudgetExhaustedError(!settled.ok && settled.error)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a classifier that throws rejects the call and aborts the attempts in flight', async () => {
    const bug = new Error('classifier bug');
    const slow = endpoint(1_000, 'slow');
    const result = settle(
      hedge(({ attempt, signal }) => (attempt === 1 ? slow.call({ attempt, signal }) : Promise.resolve('fast')), {
        hedgeDelayMs: 10,
        retryOn: () => {
          throw bug;
        },
      }),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toEqual({ ok: false, error: bug });
    expect(slow.log.aborted).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no listener on the caller signal once the call ends', async () => {
    const controller = new AbortController();
    const policy = new RetryPolicy({ hedgeDelayMs: 10, timeoutMs: 500, maxAttempts: 3 });
    const slow = endpoint(50, 'slow');
    const result = policy.hedge(slow.call, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(50);
    await expect(result).resolves.toBe('slow');
    expect(slow.log).toMatchObject({ started: 3, aborted: 2 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    policy.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends at once on a non-retryable error', async () => {
    const fatal = new TypeError('bad input');
    const other = endpoint(1_000, 'late');
    const result = settle(
      hedge(({ attempt, signal }) => (attempt === 1 ? other.call({ attempt, signal }) : Promise.reject(fatal)), { hedgeDelayMs: 10 }),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toEqual({ ok: false, error: fatal });
    expect(other.log.aborted).toBe(1);
  });

  it('treats a retryable value (503) like a failure: hedges at once, returns the last one when all are retryable, discards the others', async () => {
    const discarded: number[] = [];
    const statuses = [503, 502];
    const result = hedge(async () => ({ status: statuses.shift() ?? 500, headers: {} }), {
      hedgeDelayMs: 1_000,
      maxAttempts: 2,
      discard: (v) => discarded.push(v.status),
    });
    await vi.advanceTimersByTimeAsync(0);
    expect((await result).status).toBe(502);
    expect(discarded).toEqual([503]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
