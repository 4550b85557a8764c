import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTimeoutError } from './abort.ts';
import { isInvalidOptionError, isPolicyClosedError } from './errors.ts';
import { CallScope, type PolicyContext } from './policy.ts';
import { TimeoutPolicy } from './timeout.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const never = (): Promise<never> => new Promise(() => {});

describe('TimeoutPolicy', () => {
  it('resolves with the value and leaves the signal alone when the call is in time', async () => {
    const policy = new TimeoutPolicy({ timeoutMs: 100 });
    let seen: PolicyContext | undefined;
    const value = await policy.execute(async (context) => {
      seen = context;
      return 42;
    });
    expect(value).toBe(42);
    expect(seen?.attempt).toBe(1);
    expect(seen?.signal.aborted).toBe(false);
    expect(policy.stats()).toEqual({ timeoutMs: 100, calls: 1, timeouts: 0, inFlight: 0 });
    policy.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with a TimeoutError at the limit and aborts the signal, even when the work ignores it', async () => {
    const policy = new TimeoutPolicy(100);
    const timeouts = vi.fn();
    policy.on('timeout', timeouts);
    let signal: AbortSignal | undefined;
    const pending = policy
      .execute((context) => {
        signal = context.signal;
        return never();
      })
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(99);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await pending;
    expect(isTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ timeoutMs: 100 });
    expect(signal?.reason).toBe(error);
    expect(timeouts).toHaveBeenCalledWith({ timeoutMs: 100 });
    expect(policy.stats().timeouts).toBe(1);
    policy.close();
  });

  it('shares one timer among the calls in flight', async () => {
    const policy = new TimeoutPolicy(100);
    const calls = [0, 1, 2].map(() => policy.execute(never).catch((e: unknown) => e));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    for (const c of calls) expect(isTimeoutError(await c)).toBe(true);
    policy.close();
  });

  it('the caller signal cancels the call: it rejects with the reason at once', async () => {
    const policy = new TimeoutPolicy(1_000);
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const pending = policy
      .execute(
        (context) => {
          signal = context.signal;
          return never();
        },
        { signal: caller.signal },
      )
      .catch((e: unknown) => e);
    caller.abort(new Error('client left'));
    expect(await pending).toMatchObject({ message: 'client left' });
    expect(signal?.aborted).toBe(true);
    expect(policy.stats().inFlight).toBe(0);
    await expect(policy.execute(async () => 1, { signal: caller.signal })).rejects.toThrow('client left');
    policy.close();
  });

  it('passes errors and synchronous results through', async () => {
    const policy = new TimeoutPolicy(100);
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(policy.execute(() => 'plain')).resolves.toBe('plain');
    await expect(policy.execute(async () => Promise.reject(new Error('async')))).rejects.toThrow('async');
    policy.close();
  });

  it('close() aborts calls in flight with PolicyClosedError and refuses new ones', async () => {
    const policy = new TimeoutPolicy(100);
    const pending = policy.execute(never).catch((e: unknown) => e);
    policy.close();
    expect(isPolicyClosedError(await pending)).toBe(true);
    expect(isPolicyClosedError(await policy.execute(async () => 1).catch((e: unknown) => e))).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each([0, -1, Number.NaN, 2 ** 31])('refuses timeoutMs %s by name', (timeoutMs) => {
    let error: unknown;
    try {
      new TimeoutPolicy({ timeoutMs });
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'timeoutMs' });
  });

  it('rejects a bad fn or signal without counting a call', async () => {
    const policy = new TimeoutPolicy(100);
    await expect(policy.execute('x' as never)).rejects.toThrow(/fn must be a function/);
    await expect(policy.execute(async () => 1, { signal: {} as AbortSignal })).rejects.toThrow(/signal must be an AbortSignal/);
    expect(policy.stats().calls).toBe(0);
    policy.close();
  });

  it('reads no clock for a call that ends within its turn; a call still running is timed from the end of that turn', async () => {
    let reads = 0;
    // The turn's end reads 40 ms later than the call's start (work done in the same turn); later reads follow the timers.
    const clock = { now: () => performance.now() + (reads++ === 0 ? 40 : 0) };
    const quick = new TimeoutPolicy({ timeoutMs: 100, clock });
    await expect(quick.execute(async () => 'fast')).resolves.toBe('fast');
    await vi.advanceTimersByTimeAsync(0);
    expect(reads).toBe(0);
    quick.close();

    const policy = new TimeoutPolicy({ timeoutMs: 100, clock });
    let signal: AbortSignal | undefined;
    const pending = policy
      .execute((context) => {
        signal = context.signal;
        return never();
      })
      .catch((e: unknown) => e);
    expect(reads).toBe(0);
    await vi.advanceTimersByTimeAsync(139);
    expect(reads).toBeGreaterThan(0);
    expect(signal?.aborted).toBe(false);
    expect(policy.stats().inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(await pending)).toBe(true);
    policy.close();
  });

  it("counts from an enclosing policy's clock reading on the same clock", async () => {
    const clock = { now: () => performance.now() };
    const enclosing = CallScope.root();
    enclosing.stampStart(clock, undefined);
    await vi.advanceTimersByTimeAsync(50);
    const policy = new TimeoutPolicy({ timeoutMs: 100, clock });
    const pending = policy.execute(never, enclosing).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(49);
    expect(policy.stats().timeouts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(await pending)).toBe(true);
    policy.close();
    enclosing.release();
  });

  it('close() before the turn ends aborts a call not yet stamped and leaves no timer', async () => {
    const policy = new TimeoutPolicy(100);
    const pending = policy.execute(never).catch((e: unknown) => e);
    expect(policy.stats().inFlight).toBe(1);
    policy.close();
    expect(isPolicyClosedError(await pending)).toBe(true);
    expect(policy.stats().inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
