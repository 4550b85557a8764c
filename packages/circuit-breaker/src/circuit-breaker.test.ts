import { type PolicyContext, TimeoutError, TimeoutPolicy, wrap } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, type CircuitBreakerOptions, isBreakerDisposedError, isBrokenCircuitError, isTimeoutError } from './index.ts';
import { Opossum } from './opossum.ts';
import { expectInvalidOption } from './testing/invalid-option.ts';

const ok = async (): Promise<string> => 'ok';
const boom = async (): Promise<never> => {
  throw new Error('boom');
};

/** Breakers opened by a small volume, with short, round periods. */
function breaker<R = unknown>(options: CircuitBreakerOptions<R> = {}): CircuitBreaker<R> {
  return new CircuitBreaker<R>({
    name: 'test',
    volumeThreshold: 2,
    errorThresholdPercentage: 50,
    resetTimeout: 1_000,
    timeout: 500,
    ...options,
  });
}

async function failTimes(b: CircuitBreaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await b.execute(boom).catch(() => undefined);
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('state transitions', () => {
  it('opens once the failure rate crosses the threshold over at least volumeThreshold calls', async () => {
    const b = breaker({ volumeThreshold: 4 });
    const opened = vi.fn();
    b.on('open', opened);
    await failTimes(b, 3);
    expect(b.state).toBe('closed');
    await failTimes(b, 1);
    expect(b.state).toBe('open');
    expect(opened).toHaveBeenCalledWith({ name: 'test', reason: 'threshold', retryAfterMs: 1_000 });
    b.close();
  });

  it('rejects while open with retryAfterMs counting down, without running the call', async () => {
    const b = breaker();
    await failTimes(b, 2);
    await vi.advanceTimersByTimeAsync(300);
    const fn = vi.fn(ok);
    const error = await b.execute(fn).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(isBrokenCircuitError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ERR_BALLAST_CIRCUIT_OPEN', state: 'open', retryAfterMs: 700, breaker: 'test' });
    expect((error as Error).stack?.split('\n').length).toBe(1);
    expect(b.stats().calls.rejected).toBe(1);
    expect(b.opossum.stats.rejects).toBe(1);
    b.close();
  });

  it('goes half-open after resetTimeout and closes after halfOpenSuccessThreshold successful trials', async () => {
    const b = breaker({ halfOpenMaxCalls: 3, halfOpenSuccessThreshold: 2 });
    const events: string[] = [];
    b.on('halfOpen', () => events.push('halfOpen'));
    b.on('close', () => events.push('close'));
    await failTimes(b, 2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(b.state).toBe('halfOpen');
    await b.execute(ok);
    expect(b.state).toBe('halfOpen');
    expect(b.stats().trials).toEqual({ started: 1, succeeded: 1, failed: 0 });
    await b.execute(ok);
    expect(b.state).toBe('closed');
    expect(events).toEqual(['halfOpen', 'close']);
    expect(b.opossum.closed).toBe(true);
    b.close();
  });

  it('reopens when so many trials fail that the success threshold is out of reach', async () => {
    const b = breaker({ halfOpenMaxCalls: 3, halfOpenSuccessThreshold: 2 });
    const reasons: string[] = [];
    b.on('open', ({ reason }) => reasons.push(reason));
    await failTimes(b, 2);
    await vi.advanceTimersByTimeAsync(1_000);
    await b.execute(boom).catch(() => undefined);
    expect(b.state).toBe('halfOpen'); // one failure tolerated: 2 of 3 can still succeed
    await b.execute(boom).catch(() => undefined);
    expect(b.state).toBe('open');
    expect(reasons).toEqual(['threshold', 'trialFailure']);
    expect(b.retryAfterMs()).toBe(1_000);
    b.close();
  });

  it('admits at most halfOpenMaxCalls trials at once and rejects the rest', async () => {
    const b = breaker({ halfOpenMaxCalls: 2 });
    await failTimes(b, 2);
    await vi.advanceTimersByTimeAsync(1_000);
    const resolvers: Array<(v: string) => void> = [];
    const slow = (): Promise<string> => new Promise<string>((resolve) => resolvers.push(resolve));
    const first = b.execute(slow);
    const second = b.execute(slow);
    const third = await b.execute(slow).catch((e: unknown) => e);
    expect(isBrokenCircuitError(third)).toBe(true);
    expect(third).toMatchObject({ state: 'halfOpen' });
    expect(resolvers).toHaveLength(2);
    for (const resolve of resolvers) resolve('done');
    await expect(first).resolves.toBe('done');
    await expect(second).resolves.toBe('done');
    expect(b.state).toBe('closed');
    b.close();
  });

  it('reopens when half-open lasts longer than halfOpenMaxDurationMs', async () => {
    const b = breaker({ halfOpenMaxCalls: 1, halfOpenMaxDurationMs: 2_000, timeout: false });
    const reasons: string[] = [];
    b.on('open', ({ reason }) => reasons.push(reason));
    await failTimes(b, 2);
    await vi.advanceTimersByTimeAsync(1_000);
    const hanging = b.execute(() => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(b.state).toBe('halfOpen');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state).toBe('open');
    expect(reasons).toEqual(['threshold', 'halfOpenExpired']);
    b.close();
    expect(isBreakerDisposedError(await hanging)).toBe(true);
  });

  it('a cancelled trial gives its slot back', async () => {
    const b = breaker({ halfOpenMaxCalls: 1 });
    await failTimes(b, 2);
    await vi.advanceTimersByTimeAsync(1_000);
    const controller = new AbortController();
    const trial = b.execute(() => new Promise<never>(() => undefined), { signal: controller.signal });
    controller.abort(new Error('client went away'));
    await expect(trial).rejects.toThrow('client went away');
    expect(b.stats().trials.started).toBe(0);
    await expect(b.execute(ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
    b.close();
  });

  it('a late success from before the circuit opened does not close it', async () => {
    const b = breaker({ timeout: false });
    let release!: (v: string) => void;
    const late = b.execute(() => new Promise<string>((resolve) => (release = resolve)));
    await failTimes(b, 2);
    expect(b.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(b.state).toBe('halfOpen');
    release('late');
    await late;
    expect(b.state).toBe('halfOpen');
    b.close();
  });

  it('starts from an empty window after closing, so one failure does not reopen it', async () => {
    const b = breaker({ halfOpenMaxCalls: 1, resetTimeout: 100, rollingCountTimeout: 10_000 });
    await failTimes(b, 4);
    await vi.advanceTimersByTimeAsync(100);
    await b.execute(ok);
    expect(b.state).toBe('closed');
    expect(b.opossum.stats.failures).toBe(0);
    await failTimes(b, 1);
    expect(b.state).toBe('closed');
    b.close();
  });

  it('trip() and reset() force the state', async () => {
    const b = breaker();
    b.trip();
    expect(b.state).toBe('open');
    expect(b.opossum.opened).toBe(true);
    b.reset();
    expect(b.state).toBe('closed');
    await expect(b.execute(ok)).resolves.toBe('ok');
    b.close();
  });

  it('follows opossum when it is opened from outside (healthCheck, opossum.open())', async () => {
    const b = breaker();
    b.opossum.open();
    expect(b.state).toBe('open');
    b.opossum.close();
    expect(b.state).toBe('closed');
    b.close();
  });
});

describe('events', () => {
  it('emits every event with its payload, in order; once and unsubscribe work', async () => {
    const b = breaker({ volumeThreshold: 2, errorThresholdPercentage: 40, halfOpenMaxCalls: 1, timeout: 100 });
    const seen: string[] = [];
    const payloads: Record<string, unknown[]> = {};
    for (const name of ['open', 'halfOpen', 'close', 'reject', 'timeout', 'failure', 'success'] as const) {
      b.on(name, (e: unknown) => {
        seen.push(name);
        (payloads[name] ??= []).push(e);
      });
    }
    const first = vi.fn();
    b.once('success', first);
    const off = b.on('success', () => seen.push('unsubscribed listener'));
    off();
    await b.execute(ok);
    await b.execute(ok);
    expect(first).toHaveBeenCalledTimes(1);
    const hanging = b.execute(() => new Promise<never>(() => undefined)).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(100);
    await hanging;
    await failTimes(b, 1);
    await b.execute(ok).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(1_000);
    await b.execute(ok);
    expect(seen).toEqual(['success', 'success', 'timeout', 'failure', 'failure', 'open', 'reject', 'halfOpen', 'success', 'close']);
    expect(payloads.success?.[2]).toMatchObject({ name: 'test', trial: true });
    expect(payloads.success?.[0]).toMatchObject({ name: 'test', trial: false });
    expect(payloads.timeout?.[0]).toEqual({ name: 'test', timeoutMs: 100 });
    expect(payloads.failure?.[0]).toMatchObject({ outcome: 'timeout', trial: false });
    expect(payloads.failure?.[1]).toMatchObject({ outcome: 'error', error: new Error('boom') });
    expect(payloads.reject?.[0]).toEqual({ name: 'test', state: 'open', retryAfterMs: 1_000 });
    expect(payloads.halfOpen?.[0]).toEqual({ name: 'test' });
    expect(payloads.close?.[0]).toEqual({ name: 'test' });
    b.close();
  });
});

describe('per-call signal and timeout', () => {
  it('a timeout aborts that call only; the other call in flight completes', async () => {
    const b = breaker({ timeout: 100 });
    const signals: AbortSignal[] = [];
    const work =
      (ms: number) =>
      ({ signal }: PolicyContext) =>
        new Promise<string>((resolve, reject) => {
          signals.push(signal);
          const t = setTimeout(() => resolve(`done after ${ms}`), ms);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            reject(signal.reason);
          });
        });
    const slow = b.execute(work(200)).catch((e: unknown) => e);
    const fast = b.execute(work(50));
    await vi.advanceTimersByTimeAsync(50);
    await expect(fast).resolves.toBe('done after 50');
    await vi.advanceTimersByTimeAsync(50);
    const error = await slow;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(isTimeoutError(error)).toBe(true);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
    expect(b.stats().calls).toMatchObject({ success: 1, timeout: 1 });
    b.close();
  });

  it('a timed-out call rejects even when the work ignores its signal', async () => {
    const b = breaker({ timeout: 100 });
    const timeouts = vi.fn();
    b.on('timeout', timeouts);
    const call = b.execute(() => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(isTimeoutError(await call)).toBe(true);
    expect(timeouts).toHaveBeenCalledWith({ name: 'test', timeoutMs: 100 });
    expect(b.opossum.stats.failures).toBe(1);
    expect(b.stats().window).toMatchObject({ timeouts: 1, failures: 1 });
    b.close();
  });

  it("the caller's signal cancels the call, which does not count as a failure", async () => {
    const b = breaker();
    const controller = new AbortController();
    let inner: AbortSignal | undefined;
    const call = b.execute(
      ({ signal }) => {
        inner = signal;
        return new Promise<never>(() => undefined);
      },
      { signal: controller.signal },
    );
    const reason = new Error('cancelled');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(inner?.aborted).toBe(true);
    expect(b.stats().calls).toMatchObject({ ignored: 1, error: 0, timeout: 0 });
    expect(b.opossum.stats.failures).toBe(0);
    b.close();
  });

  it('cancelled calls leave no trace in the window opossum opens on', async () => {
    const b = breaker({ volumeThreshold: 4 });
    for (let i = 0; i < 2; i++) {
      const controller = new AbortController();
      const call = b.execute(() => new Promise<never>(() => undefined), { signal: controller.signal });
      controller.abort(new Error('client left'));
      await call.catch(() => undefined);
    }
    await b.execute(ok, { signal: AbortSignal.abort() }).catch(() => undefined);
    expect(b.stats().window).toMatchObject({ fires: 0, successes: 0, failures: 0 });
    await failTimes(b, 3);
    expect(b.state).toBe('closed'); // 3 calls, under volumeThreshold
    await failTimes(b, 1);
    expect(b.state).toBe('open'); // 4 of 4 failed: cancellations did not dilute the rate
    b.close();
  });

  it('an already aborted signal never runs the call', async () => {
    const b = breaker();
    const fn = vi.fn(ok);
    await expect(b.execute(fn, { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow('early');
    expect(fn).not.toHaveBeenCalled();
    b.close();
  });
});

describe('outcome classification', () => {
  it('a result judged a failure is returned to the caller and counts against the circuit', async () => {
    const b = breaker<{ status: number }>({ isFailure: (r) => r.status >= 500 });
    const failures = vi.fn();
    b.on('failure', failures);
    await expect(b.execute(async () => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await expect(b.execute(async () => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    expect(b.state).toBe('open');
    expect(failures).toHaveBeenCalledWith(expect.objectContaining({ outcome: 'result', result: { status: 503 } }));
    expect(b.stats().calls.result).toBe(2);
    b.close();
  });

  it('per-call isFailure overrides the breaker one', async () => {
    const b = breaker<number>({ isFailure: () => false });
    await b.execute(async () => 1, { isFailure: (n) => n === 1 });
    expect(b.stats().calls.result).toBe(1);
    b.close();
  });

  it('errorFilter keeps caller errors from tripping the circuit but still rethrows them', async () => {
    const b = breaker({ errorFilter: (e) => (e as { status?: number }).status === 404 });
    const notFound = Object.assign(new Error('not found'), { status: 404 });
    for (let i = 0; i < 5; i++) await expect(b.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(b.state).toBe('closed');
    expect(b.stats().calls.ignored).toBe(5);
    b.close();
  });

  it('slow successful calls count as failures when slowCallDurationMs is set', async () => {
    const b = breaker({ slowCallDurationMs: 100, timeout: false });
    const slow = (): Promise<string> => new Promise((resolve) => setTimeout(() => resolve('slow'), 150));
    const first = b.execute(slow);
    const second = b.execute(slow);
    await vi.advanceTimersByTimeAsync(150);
    await expect(first).resolves.toBe('slow');
    await expect(second).resolves.toBe('slow');
    expect(b.stats().calls.slow).toBe(2);
    expect(b.state).toBe('open');
    b.close();
  });

  it('a throwing isFailure counts as an error and rejects with it', async () => {
    const b = breaker({
      isFailure: () => {
        throw new Error('classifier bug');
      },
    });
    await expect(b.execute(ok)).rejects.toThrow('classifier bug');
    expect(b.stats().calls.error).toBe(1);
    b.close();
  });

  it('synchronous functions and synchronous throws are handled', async () => {
    const b = breaker();
    await expect(b.execute(() => 42)).resolves.toBe(42);
    await expect(
      b.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    b.close();
  });
});

describe('export and restore', () => {
  it('restores an open circuit with the rest of its open period', async () => {
    const a = breaker();
    await failTimes(a, 2);
    await vi.advanceTimersByTimeAsync(400);
    const saved = JSON.parse(JSON.stringify(a.toJSON()));
    a.close();
    expect(saved).toMatchObject({ name: 'test', state: 'open' });
    const b = breaker({ initialState: saved });
    expect(b.state).toBe('open');
    expect(b.retryAfterMs()).toBe(600);
    expect(b.opossum.opened).toBe(true);
    await vi.advanceTimersByTimeAsync(600);
    expect(b.state).toBe('halfOpen');
    b.close();
  });

  it('restores as half-open when the open period ended during the restart', () => {
    const b = breaker({ initialState: { name: 'test', state: 'open', openedAt: Date.now() - 5_000 } });
    expect(b.state).toBe('halfOpen');
    b.close();
  });

  it('restores half-open and closed states', () => {
    const h = breaker({ initialState: { name: 'test', state: 'halfOpen' } });
    expect(h.state).toBe('halfOpen');
    const c = breaker({ initialState: { name: 'test', state: 'closed' } });
    expect(c.state).toBe('closed');
    h.close();
    c.close();
  });
});

describe('options', () => {
  it.each([
    [{ timeout: -1 }, 'timeout'],
    [{ resetTimeout: Number.NaN }, 'resetTimeout'],
    [{ halfOpenMaxCalls: 0 }, 'halfOpenMaxCalls'],
    [{ halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 3 }, 'halfOpenSuccessThreshold'],
    [{ errorThresholdPercentage: 150 }, 'errorThresholdPercentage'],
    [{ volumeThreshold: 1.5 }, 'volumeThreshold'],
    [{ rollingCountBuckets: 0 }, 'rollingCountBuckets'],
    [{ isFailure: 'yes' }, 'isFailure'],
    [{ abortController: new AbortController() }, 'abortController'],
    [{ initialState: { state: 'ajar' } }, 'initialState.state'],
  ])('rejects %j naming %s', (options, option) => {
    expectInvalidOption(() => new CircuitBreaker(options as CircuitBreakerOptions), option);
  });

  it('applies safe defaults and passes opossum options through', () => {
    const b = new CircuitBreaker(ok, { capacity: 7, allowWarmUp: true, group: 'g' });
    expect(b.name).toBe('ok');
    expect(b.opossum.options).toMatchObject({
      rollingPercentilesEnabled: false,
      volumeThreshold: 20,
      enableSnapshots: false,
      capacity: 7,
      allowWarmUp: true,
      group: 'g',
      timeout: false,
    });
    expect(b.opossum.warmUp).toBe(true);
    b.close();
  });

  it('fire() calls the constructor action with its arguments, as opossum does', async () => {
    const b = new CircuitBreaker(async (a: number, c: number) => a + c);
    await expect(b.fire(2, 3)).resolves.toBe(5);
    const without = new CircuitBreaker(undefined, { name: 'no-action' });
    expect(without.name).toBe('no-action');
    await expect(without.fire()).rejects.toMatchObject({ option: 'action' });
    b.close();
    without.close();
  });

  it('keeps opossum percentiles when asked, with opossum computing them', async () => {
    const b = breaker({ rollingPercentilesEnabled: true });
    await b.execute(ok);
    expect(b.opossum.stats.latencyTimes).toHaveLength(1);
    b.close();
  });
});

describe("opossum's cache, coalescing and fallback", () => {
  it('caches fire() results by their arguments, as opossum does', async () => {
    const getUser = vi.fn(async (id: number) => `user ${id}`);
    const b = new CircuitBreaker(getUser, { cache: true });
    expect(await b.fire(1)).toBe('user 1');
    expect(await b.fire(2)).toBe('user 2');
    expect(await b.fire(1)).toBe('user 1');
    expect(getUser).toHaveBeenCalledTimes(2);
    b.close();
  });

  it('gives a custom cacheGetKey the fire() arguments', async () => {
    const cacheGetKey = vi.fn((id: number) => `k${id}`);
    const b = new CircuitBreaker(async (id: number) => id * 10, { cache: true, cacheGetKey });
    await b.fire(4);
    expect(cacheGetKey).toHaveBeenCalledWith(4);
    b.close();
  });

  it('caches execute() calls only under their cacheKey', async () => {
    const b = new CircuitBreaker({ cache: true });
    expect(await b.execute(async () => 'a')).toBe('a');
    expect(await b.execute(async () => 'b')).toBe('b');
    expect(await b.execute(async () => 'c', { cacheKey: 'k' })).toBe('c');
    expect(await b.execute(async () => 'd', { cacheKey: 'k' })).toBe('c');
    b.close();
  });

  it('coalesces only calls with the same key', async () => {
    const b = new CircuitBreaker({ coalesce: true, timeout: 1_000 });
    const [a, c] = await Promise.all([b.execute(async () => 'a'), b.execute(async () => 'c')]);
    expect([a, c]).toEqual(['a', 'c']);
    const shared = vi.fn(async () => 'shared');
    const both = await Promise.all([b.execute(shared, { cacheKey: 's' }), b.execute(shared, { cacheKey: 's' })]);
    expect(both).toEqual(['shared', 'shared']);
    expect(shared).toHaveBeenCalledTimes(1);
    b.close();
  });

  it('calls the fallback with the fire() arguments and the error, also while open', async () => {
    const b = new CircuitBreaker(async (id: number) => Promise.reject(new Error(`down ${id}`)), { volumeThreshold: 1 });
    const fallback = vi.fn((id: number, error: Error) => `fallback ${id}: ${error.message}`);
    b.opossum.fallback(fallback as never);
    await expect(b.fire(3)).resolves.toBe('fallback 3: down 3');
    expect(b.state).toBe('open');
    const run = vi.fn();
    b.fallback((...args: never[]) => args.length);
    await expect(b.execute(run)).resolves.toBe(1); // execute: the error alone
    expect(run).not.toHaveBeenCalled();
    expect(b.opossum.stats.fallbacks).toBe(2);
    b.close();
  });

  it("calls the fallback once per failed call: its promise's rejection is the caller's, on every path", async () => {
    // A direct call, then (the circuit now failing) a call through fire(), then one while open.
    const b = new CircuitBreaker({ name: 'fallback-rejects', volumeThreshold: 2 });
    const fallback = vi.fn(async (error: Error) => Promise.reject(new Error(`fallback saw: ${error.message}`)));
    b.fallback(fallback as never);
    await expect(b.execute(boom)).rejects.toThrow('fallback saw: boom');
    await expect(b.execute(boom)).rejects.toThrow('fallback saw: boom');
    expect(b.state).toBe('open');
    await expect(b.execute(ok as never)).rejects.toThrow('fallback saw: circuit "fallback-rejects" is open');
    expect(fallback).toHaveBeenCalledTimes(3);
    b.close();
  });

  it('does not call the fallback for results judged failures, caller errors or cancelled calls', async () => {
    const b = breaker<number>({ isFailure: (n) => n < 0, errorFilter: (e) => (e as Error).message === 'bad input' });
    const fallback = vi.fn(() => 0);
    b.fallback(fallback);
    await expect(b.execute(async () => -1)).resolves.toBe(-1);
    await expect(b.execute(() => Promise.reject(new Error('bad input')))).rejects.toThrow('bad input');
    await expect(b.execute(ok as never, { signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
    expect(fallback).not.toHaveBeenCalled();
    b.fallback(undefined);
    await expect(b.execute(boom)).rejects.toThrow('boom');
    b.close();
  });
});

describe('healthCheck', () => {
  it('opens the circuit when the check fails, and close() stops the interval', async () => {
    const b = breaker();
    const reasons: string[] = [];
    b.on('open', ({ reason }) => reasons.push(reason));
    const failed = vi.fn();
    b.opossum.on('healthCheckFailed', failed);
    let healthy = true;
    const check = vi.fn(async () => {
      if (!healthy) throw new Error('unhealthy');
    });
    b.opossum.healthCheck(check, 1_000); // opossum's entry point runs Ballast's
    await vi.advanceTimersByTimeAsync(0);
    expect(check).toHaveBeenCalledTimes(1);
    expect(b.state).toBe('closed');
    healthy = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(b.state).toBe('open');
    expect(reasons).toEqual(['healthCheck']);
    expect(failed).toHaveBeenCalledWith(new Error('unhealthy'));
    b.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('validates its arguments', () => {
    const b = breaker();
    expectInvalidOption(() => b.healthCheck('no' as never), 'check');
    expectInvalidOption(() => b.healthCheck(ok, -1), 'intervalMs');
    b.close();
  });
});

describe('bad arguments to execute', () => {
  it.each([
    ['fn', () => [undefined, undefined]],
    ['signal', () => [ok, { signal: {} }]],
    ['isFailure', () => [ok, { isFailure: 'yes' }]],
  ])('rejects a bad %s with InvalidOptionError, without counting it', async (option, args) => {
    const b = breaker({ volumeThreshold: 1 });
    const [fn, options] = args() as [never, never];
    await expect(b.execute(fn, options)).rejects.toMatchObject({ code: 'ERR_BALLAST_INVALID_OPTION', option });
    expect(b.state).toBe('closed');
    expect(b.opossum.stats.fires).toBe(0);
    b.close();
  });
});

describe('statistics', () => {
  it('counts outcomes and latency percentiles', async () => {
    const b = breaker({ volumeThreshold: 100 });
    const slow = (): Promise<string> => new Promise((resolve) => setTimeout(() => resolve('x'), 20));
    const p = b.execute(slow);
    await vi.advanceTimersByTimeAsync(20);
    await p;
    await failTimes(b, 1);
    const stats = b.stats();
    expect(stats.calls).toMatchObject({ success: 1, error: 1 });
    expect(stats.latencyMs.count).toBe(2);
    expect(stats.latencyMs.max).toBeCloseTo(20, 0);
    expect(stats.window).toMatchObject({ fires: 2, successes: 1, failures: 1 });
    expect(JSON.parse(JSON.stringify(b.opossum.stats))).toMatchObject({ fires: 2, failures: 1 });
    b.close();
  });

  it('counts the same window opossum counts on its own', async () => {
    const ours = breaker({ volumeThreshold: 1_000 });
    const theirs = new Opossum(boom, { volumeThreshold: 1_000, rollingPercentilesEnabled: false, timeout: false });
    for (let i = 0; i < 10; i++) {
      await ours.execute(i % 3 === 0 ? boom : ok).catch(() => undefined);
      await theirs.fire().catch(() => undefined);
    }
    expect(ours.opossum.stats.fires).toBe(theirs.stats.fires);
    theirs.shutdown();
    ours.close();
  });
});

describe('clock readings', () => {
  /** The process clock (faked), counting its readings. */
  function countingClock(): { now(): number; readings: number } {
    return {
      readings: 0,
      now() {
        this.readings++;
        return performance.now();
      },
    };
  }
  const slowOk = (): Promise<string> => new Promise((resolve) => setTimeout(() => resolve('x'), 20));

  it('reads the clock at the start and the end of every call by default, for the latency histogram', async () => {
    const clock = countingClock();
    const b = breaker({ timeout: false, clock });
    const p = b.execute(slowOk);
    await vi.advanceTimersByTimeAsync(20);
    await p;
    expect(clock.readings).toBe(2);
    expect(b.stats().latencyMs).toMatchObject({ count: 1 });
    expect(b.stats().latencyMs.max).toBeCloseTo(20, 0);
    b.close();
  });

  it('reads no clock with recordLatency: false, no timeout, no slow-call threshold and no listener', async () => {
    const clock = countingClock();
    const b = breaker({ timeout: false, recordLatency: false, clock });
    const p = b.execute(slowOk);
    await vi.advanceTimersByTimeAsync(20);
    await expect(p).resolves.toBe('x');
    await failTimes(b, 1);
    expect(clock.readings).toBe(0);
    const stats = b.stats();
    expect(stats.calls).toMatchObject({ success: 1, error: 1 });
    expect(stats.latencyMs.count).toBe(0);
    expect(stats.window).toMatchObject({ fires: 2, successes: 1, failures: 1 });
    b.close();
  });

  it('still times every call that needs it: a timeout, a slow-call threshold, a success or failure listener', async () => {
    const clock = countingClock();
    const timed = breaker({ timeout: 100, recordLatency: false, clock });
    const hanging = timed.execute(() => new Promise<never>(() => undefined)).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(100);
    expect(await hanging).toBeInstanceOf(TimeoutError);
    expect(timed.stats().latencyMs.count).toBe(0);
    timed.close();

    const slow = breaker({ timeout: false, recordLatency: false, slowCallDurationMs: 10, clock });
    const p = slow.execute(slowOk);
    await vi.advanceTimersByTimeAsync(20);
    await expect(p).resolves.toBe('x');
    expect(slow.stats().calls).toMatchObject({ slow: 1, success: 0 });
    slow.close();

    const listened = breaker({ timeout: false, recordLatency: false, clock });
    const durations: number[] = [];
    const off = listened.on('success', ({ durationMs }) => durations.push(durationMs));
    const q = listened.execute(slowOk);
    await vi.advanceTimersByTimeAsync(20);
    await q;
    off();
    const before = clock.readings;
    await listened.execute(ok);
    expect(clock.readings).toBe(before);
    expect(durations).toHaveLength(1);
    expect(durations[0]).toBeCloseTo(20, 0);
    expect(listened.stats().latencyMs.count).toBe(0);
    listened.close();
  });

  it('reports durationMs NaN for a call that started untimed and ended with a listener', async () => {
    const b = breaker({ timeout: false, recordLatency: false });
    const p = b.execute(slowOk);
    const durations: number[] = [];
    b.on('success', ({ durationMs }) => durations.push(durationMs));
    await vi.advanceTimersByTimeAsync(20);
    await p;
    expect(durations).toEqual([Number.NaN]);
    b.close();
  });

  it('with a timeout and recordLatency: false, reads the clock only at the start of a successful call', async () => {
    const clock = countingClock();
    const b = breaker({ timeout: 1_000, recordLatency: false, clock });
    const hanging = b.execute(() => new Promise(() => undefined)).catch(() => undefined);
    // The shared timeout timer is armed (one reading) for the call above, and stays armed.
    const before = clock.readings;
    await b.execute(ok);
    expect(clock.readings - before).toBe(1);
    await failTimes(b, 1);
    expect(clock.readings - before).toBe(3);
    await vi.advanceTimersByTimeAsync(1_000);
    await hanging;
    expect(b.stats().latencyMs.count).toBe(0);
    b.close();
  });

  it('inside wrap(), an untimed breaker reads no clock: the timeout policy inside it reads one per turn, none for a call that ends within it', async () => {
    const clock = countingClock();
    const b = breaker({ timeout: false, recordLatency: false, clock });
    const timeout = new TimeoutPolicy({ timeoutMs: 100, clock });
    const chain = wrap(b, timeout);
    const hanging = chain.execute(() => new Promise<never>(() => undefined)).catch((error: unknown) => error);
    const before = clock.readings;
    await expect(chain.execute(ok)).resolves.toBe('ok');
    expect(clock.readings - before).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(clock.readings - before).toBeGreaterThan(0);
    expect(await hanging).toBeInstanceOf(TimeoutError);
    expect(b.stats().calls).toMatchObject({ success: 1, error: 1 });
    expect(b.stats().latencyMs.count).toBe(0);
    timeout.close();
    b.close();
  });

  it('refuses a recordLatency that is not a boolean', () => {
    expectInvalidOption(() => new CircuitBreaker({ recordLatency: 'no' as never }), 'recordLatency');
  });
});

describe('disposal', () => {
  it('close() leaves no timer and later calls reject', async () => {
    const b = breaker();
    await failTimes(b, 2);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    b.close();
    expect(vi.getTimerCount()).toBe(0);
    const error = await b.execute(ok).catch((e: unknown) => e);
    expect(isBreakerDisposedError(error)).toBe(true);
    b[Symbol.dispose]();
  });

  it('close() aborts the calls still in flight', async () => {
    const b = breaker({ timeout: 1_000 });
    let signal: AbortSignal | undefined;
    const pending = b
      .execute((context) => {
        signal = context.signal;
        return new Promise<never>(() => undefined);
      })
      .catch((e: unknown) => e);
    expect(b.inFlight).toBe(1);
    b.close();
    expect(isBreakerDisposedError(await pending)).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(b.inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('one timer serves the timeouts of every call in flight', async () => {
    const b = breaker({ timeout: 100 });
    const before = vi.getTimerCount(); // opossum's bucket rotation
    const calls = Array.from({ length: 50 }, () => b.execute(() => new Promise<never>(() => undefined)).catch((e: unknown) => e));
    expect(vi.getTimerCount()).toBe(before + 1);
    await vi.advanceTimersByTimeAsync(100);
    for (const call of calls) expect(isTimeoutError(await call)).toBe(true);
    expect(b.inFlight).toBe(0);
    b.close();
  });

  it('staggered calls each time out after their own timeout', async () => {
    const b = breaker({ timeout: 100, volumeThreshold: 100 });
    const first = b.execute(() => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(60);
    const second = b.execute(() => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(40);
    expect(isTimeoutError(await first)).toBe(true);
    expect(b.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(59);
    expect(b.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(await second)).toBe(true);
    b.close();
  });

  it('a half-open breaker leaves no timer either', async () => {
    const b = breaker();
    b.trip();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(b.state).toBe('halfOpen');
    b.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
