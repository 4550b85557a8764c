import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isShedError, type ShedError } from './errors.ts';
import { OutboundScheduler } from './scheduler.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

// bottleneck hops through a few timers of its own: let fake time run in small steps until `promise` settles.
async function until<T>(promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 2000 && !settled; i++) await vi.advanceTimersByTimeAsync(5);
  return promise;
}
const settle = () => vi.advanceTimersByTimeAsync(20);

describe('OutboundScheduler (bottleneck)', () => {
  it('spaces job starts by minTimeMs', async () => {
    const scheduler = new OutboundScheduler({ minTimeMs: 100 });
    const t0 = performance.now();
    const starts: number[] = [];
    const jobs = [0, 1, 2].map(() => scheduler.schedule(() => starts.push(performance.now() - t0)));
    await until(Promise.all(jobs));
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(99); // bottleneck rounds to whole ms
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(99); // bottleneck rounds to whole ms
    expect(starts[2]!).toBeLessThan(250);
    await until(scheduler.close());
  });

  it('caps concurrency and starts the highest priority first', async () => {
    const scheduler = new OutboundScheduler({ maxConcurrent: 1 });
    const order: string[] = [];
    let release!: () => void;
    const first = scheduler.schedule(() => new Promise<void>((r) => (release = r)));
    await settle();
    const low = scheduler.schedule(() => order.push('low'), { priority: 'low' });
    const normal = scheduler.schedule(() => order.push('normal'));
    const critical = scheduler.schedule(() => order.push('critical'), { priority: 'critical' });
    await settle();
    expect(scheduler.stats()).toMatchObject({ executing: 1, queued: 3 });
    release();
    await until(Promise.all([first, low, normal, critical]));
    expect(order).toEqual(['critical', 'normal', 'low']);
    await until(scheduler.close());
  });

  it('spends the reservoir and waits for its refresh', async () => {
    const scheduler = new OutboundScheduler({ reservoir: 2, reservoirRefreshAmount: 2, reservoirRefreshIntervalMs: 1000 });
    const done: number[] = [];
    const jobs = [1, 2, 3].map((i) => scheduler.schedule(() => done.push(i)));
    await vi.advanceTimersByTimeAsync(900);
    expect(done).toEqual([1, 2]);
    await until(Promise.all(jobs));
    expect(done).toEqual([1, 2, 3]);
    await until(scheduler.close());
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps a separate budget per key', async () => {
    const scheduler = new OutboundScheduler({ minTimeMs: 1000 });
    const t0 = performance.now();
    const starts: Record<string, number[]> = { a: [], b: [] };
    const jobs = ['a', 'b', 'a', 'b'].map((key) => scheduler.schedule(() => starts[key]!.push(performance.now() - t0), { key }));
    await vi.advanceTimersByTimeAsync(900);
    expect(starts.a).toHaveLength(1);
    expect(starts.b).toHaveLength(1);
    await until(Promise.all(jobs));
    expect(starts.a![1]! - starts.a![0]!).toBeGreaterThanOrEqual(999);
    expect(starts.b![1]! - starts.b![0]!).toBeGreaterThanOrEqual(999);
    expect(scheduler.stats().keys).toBe(2);
    await until(scheduler.close());
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sheds beyond highWater with a ShedError and a shed event', async () => {
    const scheduler = new OutboundScheduler({ maxConcurrent: 1, highWater: 1, strategy: 'overflow', name: 'github' });
    const shed: unknown[] = [];
    scheduler.on('shed', (e) => shed.push(e));
    let release!: () => void;
    const first = scheduler.schedule(() => new Promise<void>((r) => (release = r)));
    await settle();
    const queued = scheduler.schedule(() => 'queued');
    const dropped = scheduler.schedule(() => 'dropped').catch((e: ShedError) => e);
    await settle();
    const error = await until(dropped);
    expect(isShedError(error) && error.reason).toBe('queueFull');
    expect(shed).toEqual([{ name: 'github', key: undefined, reason: 'queueFull' }]);
    release();
    expect(await until(queued)).toBe('queued');
    await first;
    await until(scheduler.close());
  });

  it('an aborted job rejects at once and never runs its work', async () => {
    const scheduler = new OutboundScheduler({ maxConcurrent: 1 });
    let release!: () => void;
    const first = scheduler.schedule(() => new Promise<void>((r) => (release = r)));
    await settle();
    const controller = new AbortController();
    const work = vi.fn();
    const aborted = scheduler.schedule(work, { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    release();
    await until(first);
    await settle();
    expect(work).not.toHaveBeenCalled();
    await expect(scheduler.schedule(() => 1, { signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
    await until(scheduler.close());
  });

  it('close() drops waiting jobs as closed and refuses new ones', async () => {
    const scheduler = new OutboundScheduler({ maxConcurrent: 1 });
    let release!: () => void;
    const first = scheduler.schedule(() => new Promise<void>((r) => (release = r)));
    await settle();
    const waiting = scheduler.schedule(() => 'never').catch((e: ShedError) => e.reason);
    await settle();
    const closing = scheduler.close();
    expect(await until(waiting)).toBe('closed');
    release();
    await until(first);
    await until(closing);
    const error = await scheduler.schedule(() => 1).catch((e: ShedError) => e.reason);
    expect(error).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close() also stops the per-key limiters and their cleanup timer', async () => {
    const scheduler = new OutboundScheduler({ maxConcurrent: 1, minTimeMs: 10, keyIdleTimeoutMs: 60_000 });
    expect(await until(scheduler.schedule(() => 'a', { key: 'tenant-a' }))).toBe('a');
    expect(await until(scheduler.schedule(() => 'b', { key: 'tenant-b' }))).toBe('b');
    expect(scheduler.stats().keys).toBe(2);
    await until(scheduler.close());
    expect(vi.getTimerCount()).toBe(0);
    expect(await scheduler.schedule(() => 1, { key: 'tenant-a' }).catch((e: ShedError) => e.reason)).toBe('closed');
  });

  it('validates options', () => {
    expect(() => new OutboundScheduler({ minTimeMs: -1 })).toThrow(/minTimeMs/);
    expect(() => new OutboundScheduler({ maxConcurrent: 0 })).toThrow(/maxConcurrent/);
    expect(() => new OutboundScheduler({ strategy: 'random' as 'leak' })).toThrow(/strategy/);
    expect(() => new OutboundScheduler({ reservoirRefreshIntervalMs: 1000 })).toThrow(/reservoirRefreshAmount/);
  });
});
