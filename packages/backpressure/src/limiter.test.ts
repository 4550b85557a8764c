import { isInvalidOptionError } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { isShedError, type ShedError } from './errors.ts';
import { type AcquireOptions, ConcurrencyLimiter, type Permit } from './limiter.ts';
import { AimdLimit } from './limits/aimd.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

async function shedReason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => {
      throw new Error('expected a shed');
    },
    (e: unknown) => e,
  );
  expect(isShedError(error)).toBe(true);
  return (error as ShedError).reason;
}

describe('ConcurrencyLimiter', () => {
  it('admits up to the limit and sheds the rest at once without a queue', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 2 });
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    expect(limiter.inflight).toBe(2);
    expect(await shedReason(limiter.acquire())).toBe('limit');
    expect(limiter.tryAcquire()).toBeUndefined();
    a.release();
    a.release(); // idempotent
    expect(limiter.inflight).toBe(1);
    expect(limiter.tryAcquire()).toBeDefined();
    b.release();
    expect(limiter.stats()).toMatchObject({ inflight: 1, admitted: 3, shed: { limit: 2 } });
  });

  it('carries a retryAfterMs hint and a stable code', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, retryAfterMs: 2500 });
    await limiter.acquire();
    const error = await limiter.acquire().catch((e: ShedError) => e);
    expect(error).toMatchObject({ code: 'ERR_BALLAST_SHED', name: 'ShedError', reason: 'limit', retryAfterMs: 2500 });
  });

  it('queues up to maxQueue, serves FIFO, and sheds queueFull beyond it', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 2 });
    const first = await limiter.acquire();
    const order: number[] = [];
    const p1 = limiter.acquire().then((p) => {
      order.push(1);
      return p;
    });
    const p2 = limiter.acquire().then((p) => {
      order.push(2);
      return p;
    });
    expect(await shedReason(limiter.acquire())).toBe('queueFull');
    expect(limiter.queued).toBe(2);
    first.release();
    (await p1).release();
    (await p2).release();
    expect(order).toEqual([1, 2]);
    expect(limiter.inflight).toBe(0);
  });

  it('sheds a request that waited longer than queueTimeoutMs', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 5, queueTimeoutMs: 50 });
    await limiter.acquire();
    const waiting = shedReason(limiter.acquire());
    await vi.advanceTimersByTimeAsync(49);
    expect(limiter.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await waiting).toBe('queueTimeout');
    expect(limiter.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('removes an aborted request from the queue so it never runs', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 5 });
    const held = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire({ signal: controller.signal });
    const next = limiter.acquire();
    controller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    expect(limiter.queued).toBe(1);
    held.release();
    const permit = await next;
    expect(limiter.inflight).toBe(1);
    permit.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('calls a signal function only when the request has to wait', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 1 });
    let reads = 0;
    const controller = new AbortController();
    const signal = () => {
      reads++;
      return controller.signal;
    };
    const held = await limiter.acquire({ signal }); // admitted at once
    expect(reads).toBe(0);
    const waiting = limiter.acquire({ signal }); // queued: the signal is read and watched
    expect(reads).toBe(1);
    expect(await shedReason(limiter.acquire({ signal }))).toBe('queueFull'); // shed at once
    expect(reads).toBe(1);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(limiter.queued).toBe(0);
    // An already aborted signal read at queueing time rejects without queueing.
    await expect(limiter.acquire({ signal: () => AbortSignal.abort(new Error('late')) })).rejects.toThrow('late');
    expect(limiter.queued).toBe(0);
    held.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits without a timer when queueTimeoutMs is Infinity', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 1, queueTimeoutMs: Number.POSITIVE_INFINITY });
    const held = await limiter.acquire();
    const waiting = limiter.acquire();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(limiter.queued).toBe(1);
    held.release();
    (await waiting).release();
    expect(limiter.inflight).toBe(0);
  });

  it('rejects at once with the reason of an already aborted signal', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1 });
    await expect(limiter.acquire({ signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
    expect(limiter.inflight).toBe(0);
  });

  it('serves critical before normal before low, and evicts the lowest priority when full', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 2 });
    const held = await limiter.acquire();
    const served: string[] = [];
    const track = (p: Promise<Permit>, name: string) =>
      p.then(
        (permit) => {
          served.push(name);
          permit.release();
        },
        (e: ShedError) => served.push(`${name}:${e.reason}`),
      );
    const low = track(limiter.acquire({ priority: 'low' }), 'low');
    const normal = track(limiter.acquire({ priority: 'normal' }), 'normal');
    const critical = track(limiter.acquire({ priority: 'critical' }), 'critical');
    await low;
    expect(served).toEqual(['low:queueFull']);
    // A second low cannot evict anything of higher priority.
    expect(await shedReason(limiter.acquire({ priority: 'low' }))).toBe('queueFull');
    held.release();
    await Promise.all([normal, critical]);
    expect(served).toEqual(['low:queueFull', 'critical', 'normal']);
  });

  it('keeps the share of the limit above each priority free for higher priorities, even without a queue', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 10, shares: { normal: 0.8, low: 0.5 } });
    const low = Array.from({ length: 5 }, () => limiter.tryAcquire('low'));
    expect(low.every(Boolean)).toBe(true);
    expect(limiter.tryAcquire('low')).toBeUndefined(); // half the slots busy: low is shed
    expect(await shedReason(limiter.acquire({ priority: 'low' }))).toBe('limit');
    const normal = Array.from({ length: 3 }, () => limiter.tryAcquire('normal'));
    expect(normal.every(Boolean)).toBe(true);
    expect(limiter.tryAcquire('normal')).toBeUndefined(); // 8 of 10 busy
    expect(limiter.tryAcquire('high')).toBeDefined();
    expect(limiter.tryAcquire('critical')).toBeDefined();
    expect(limiter.tryAcquire('critical')).toBeUndefined(); // the limit itself
    expect(limiter.stats()).toMatchObject({ inflight: 10, shed: { limit: 4 } });
  });

  it('serves a queued request only within its share, and lets higher priorities past it', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 4, maxQueue: 10, shares: { low: 0.5 } });
    const held = [limiter.tryAcquire('normal')!, limiter.tryAcquire('normal')!];
    const low = limiter.acquire({ priority: 'low' }); // 2 of 4 busy: at the low cap, waits
    expect(limiter.queued).toBe(1);
    // A waiting low request does not hold back a normal one while slots are free.
    const normal = await limiter.acquire();
    expect(limiter.inflight).toBe(3);
    held[0]!.release(); // 2 busy: still at the low cap
    await vi.advanceTimersByTimeAsync(0);
    expect(limiter.queued).toBe(1);
    held[1]!.release(); // 1 busy: the low request fits
    (await low).release();
    normal.release();
    expect(limiter.inflight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('frees the slot and hands it on even when the limit algorithm misbehaves', async () => {
    let answer: () => number = () => Number.NaN;
    const broken = { name: 'broken', limit: 1, update: () => answer() };
    const limiter = new ConcurrencyLimiter({ limit: broken, maxQueue: 2 });
    const first = await limiter.acquire();
    const second = limiter.acquire();
    first.release(); // NaN: the limit stays 1, the waiter gets the slot
    const permit = await second;
    expect(limiter.limit).toBe(1);
    const third = limiter.acquire();
    answer = () => {
      throw new Error('algorithm bug');
    };
    expect(() => permit.release()).toThrow('algorithm bug');
    (await third).release({ ignore: true });
    expect(limiter.inflight).toBe(0);
  });

  it('rejects a bad latencyMs on release, freeing the slot without learning from it', async () => {
    const limiter = new ConcurrencyLimiter({ limit: new AimdLimit({ initialLimit: 4 }), maxQueue: 1 });
    const permit = await limiter.acquire();
    expect(() => permit.release({ latencyMs: Number.NaN })).toThrow('latencyMs must be a finite number >= 0, got NaN');
    expect(permit.held).toBe(false);
    expect(limiter.inflight).toBe(0);
    expect(limiter.limit).toBe(4);
  });

  it('CoDel: sheds requests older than the target once a standing queue has formed', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 100, discipline: 'codel', codel: { targetMs: 5, intervalMs: 100 } });
    const held = await limiter.acquire();
    // Without a standing queue a request may wait up to intervalMs.
    const early = limiter.acquire();
    await vi.advanceTimersByTimeAsync(60);
    held.release();
    const p = await early;
    expect(limiter.inflight).toBe(1);
    // Keep the queue non-empty for longer than the interval.
    const results: Array<Promise<string>> = [];
    results.push(shedReason(limiter.acquire())); // joins while the queue is empty: interval timeout
    await vi.advanceTimersByTimeAsync(99);
    results.push(shedReason(limiter.acquire())); // queue not empty for 99 ms: still normal
    await vi.advanceTimersByTimeAsync(2);
    const late = limiter.acquire(); // standing queue now: the target applies
    const lateReason = shedReason(late);
    await vi.advanceTimersByTimeAsync(5);
    expect(await lateReason).toBe('codel');
    await vi.advanceTimersByTimeAsync(200);
    expect(await Promise.all(results)).toEqual(['queueTimeout', 'codel']);
    p.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(['codel', 'adaptiveLifo'] as const)(
    '%s: a fresh arrival sheds stale waiters instead of being turned away by a full queue',
    async (discipline) => {
      const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 2, discipline, codel: { targetMs: 5, intervalMs: 100 } });
      const held = await limiter.acquire();
      const a = shedReason(limiter.acquire()); // t=0: no standing queue, waits up to the interval
      await vi.advanceTimersByTimeAsync(60);
      const b = shedReason(limiter.acquire()); // t=60: likewise, until t=160
      await vi.advanceTimersByTimeAsync(41);
      expect(await a).toBe('queueTimeout'); // t=100
      // t=101: the queue has not been empty since t=0, a standing queue. b has waited 41 ms, far past
      // the 5 ms target: it is shed now, not at t=160, and leaves its place to fresh arrivals.
      const x = limiter.acquire();
      expect(await b).toBe('codel');
      await vi.advanceTimersByTimeAsync(2);
      const y = limiter.acquire(); // t=103: x has waited 2 ms, still fresh, so both wait
      expect(limiter.queued).toBe(2);
      held.release();
      const [first, second] = discipline === 'adaptiveLifo' ? [y, x] : [x, y];
      (await first).release();
      (await second).release();
      expect(limiter.inflight).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    },
  );

  it('adaptive LIFO serves the newest request first during a standing queue', async () => {
    const limiter = new ConcurrencyLimiter({
      limit: 1,
      maxQueue: 10,
      queueTimeoutMs: 10_000,
      discipline: 'adaptiveLifo',
      codel: { targetMs: 1000, intervalMs: 100 },
    });
    const held = await limiter.acquire();
    const served: number[] = [];
    const settled: Array<Promise<unknown>> = [];
    const join = (i: number) =>
      settled.push(
        limiter.acquire().then(
          (p) => {
            served.push(i);
            p.release();
          },
          (e: ShedError) => e.reason,
        ),
      );
    join(0);
    await vi.advanceTimersByTimeAsync(50);
    join(1);
    await vi.advanceTimersByTimeAsync(40);
    join(2);
    // The queue has not been empty since t=0: at t=120 it is a standing queue.
    await vi.advanceTimersByTimeAsync(30);
    join(3);
    held.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(served).toEqual([3, 2, 1]);
    expect(await Promise.all(settled)).toEqual(['queueTimeout', undefined, undefined, undefined]);
  });

  it('FIFO order holds for adaptive LIFO when no standing queue has formed', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 10, discipline: 'adaptiveLifo' });
    const held = await limiter.acquire();
    const served: number[] = [];
    const waits = [0, 1].map((i) =>
      limiter.acquire().then((p) => {
        served.push(i);
        p.release();
      }),
    );
    held.release();
    await Promise.all(waits);
    expect(served).toEqual([0, 1]);
  });

  it('run() releases on success and failure and feeds drops to the algorithm', async () => {
    const limit = new AimdLimit({ initialLimit: 10, minLimit: 1, maxLimit: 20, backoffRatio: 0.5 });
    const limiter = new ConcurrencyLimiter({ limit });
    const changes: Array<[number, number]> = [];
    limiter.on('limitChanged', ({ from, to }) => changes.push([from, to]));
    await expect(limiter.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(limiter.inflight).toBe(0);
    expect(limiter.limit).toBe(5);
    expect(await limiter.run(() => 42)).toBe(42);
    expect(changes).toEqual([[10, 5]]);
  });

  it('feeds latencyMs, ok and ignore from release() to the algorithm', async () => {
    const limiter = new ConcurrencyLimiter({ limit: new AimdLimit({ initialLimit: 10, timeoutMs: 100, backoffRatio: 0.5 }) });
    (await limiter.acquire()).release({ latencyMs: 101 }); // slower than timeoutMs: a drop
    expect(limiter.limit).toBe(5);
    (await limiter.acquire()).release({ ok: false, ignore: true }); // ignored: no change
    expect(limiter.limit).toBe(5);
    const permit = await limiter.acquire();
    await vi.advanceTimersByTimeAsync(150); // measured latency 150 ms: a drop
    permit.release();
    expect(limiter.limit).toBe(2);
  });

  it('admits queued requests as soon as the limit grows', async () => {
    const limiter = new ConcurrencyLimiter({ limit: new AimdLimit({ initialLimit: 1, maxLimit: 5 }), maxQueue: 5 });
    const first = await limiter.acquire();
    const second = limiter.acquire();
    const third = limiter.acquire();
    first.release(); // success at full use: limit 1 → 2, both waiters fit
    await Promise.all([second, third]);
    expect(limiter.inflight).toBe(2);
  });

  it('emits admit, queue and shed events', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 1, name: 'api' });
    const events: string[] = [];
    limiter.on('admit', (e) => events.push(`admit:${e.name}:${e.inflight}:${e.waitedMs}`));
    limiter.on('queue', (e) => events.push(`queue:${e.queued}`));
    limiter.on('shed', (e) => events.push(`shed:${e.reason}`));
    const p = await limiter.acquire();
    const waiting = limiter.acquire();
    await limiter.acquire().catch(() => undefined);
    await vi.advanceTimersByTimeAsync(10);
    p.release();
    (await waiting).release();
    expect(events).toEqual(['admit:api:1:0', 'queue:1', 'shed:queueFull', 'admit:api:1:10']);
  });

  it('close() sheds queued requests, refuses new ones and leaves no timer or listener', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 5 });
    const controller = new AbortController();
    const held = await limiter.acquire();
    const waiting = shedReason(limiter.acquire({ signal: controller.signal }));
    expect(vi.getTimerCount()).toBe(1);
    limiter[Symbol.dispose]();
    expect(await waiting).toBe('closed');
    expect(await shedReason(limiter.acquire())).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
    held.release();
    expect(limiter.stats()).toMatchObject({ closed: true, inflight: 0, shed: { closed: 2 } });
  });

  it.each([
    [{ limit: 0 }, 'limit'],
    [{ limit: 'x' as unknown as number }, 'limit'],
    [{ maxQueue: -1 }, 'maxQueue'],
    [{ queueTimeoutMs: Number.NaN }, 'queueTimeoutMs'],
    [{ discipline: 'random' as 'fifo' }, 'discipline'],
    [{ codel: { targetMs: -5 } }, 'codel.targetMs'],
    [{ shares: { low: 0 } }, 'shares.low'],
    [{ shares: { high: 1.5 } }, 'shares.high'],
  ])('rejects invalid options %j naming %s', (options, option) => {
    let error: unknown;
    try {
      new ConcurrencyLimiter(options);
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect((error as { option: string }).option).toBe(option);
  });

  it('has the types callers rely on', () => {
    const limiter = new ConcurrencyLimiter({ limit: 1 });
    expectTypeOf(limiter.acquire).returns.resolves.toEqualTypeOf<Permit>();
    expectTypeOf(limiter.tryAcquire).returns.toEqualTypeOf<Permit | undefined>();
    expectTypeOf(limiter.run<number>).returns.resolves.toBeNumber();
    expectTypeOf(limiter.acquire).parameter(0).toEqualTypeOf<AcquireOptions | undefined>();
  });

  it('rejects an unknown priority', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1 });
    await expect(limiter.acquire({ priority: 'urgent' as 'high' })).rejects.toThrow(/priority/);
    expect(() => limiter.tryAcquire('urgent' as 'high')).toThrow(/priority must be one of/);
    expect(limiter.inflight).toBe(0);
  });
});
