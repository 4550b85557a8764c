import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BreakerRegistry, isBreakerDisposedError } from './index.ts';
import { expectInvalidOption } from './testing/invalid-option.ts';

const boom = async (): Promise<never> => {
  throw new Error('boom');
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('BreakerRegistry', () => {
  it('returns the same breaker for a key, named after it, and a different one per key', () => {
    const registry = new BreakerRegistry();
    const a = registry.get('a');
    expect(registry.get('a')).toBe(a);
    expect(a.name).toBe('a');
    expect(registry.get('b')).not.toBe(a);
    expect(registry.size).toBe(2);
    registry.close();
  });

  it('builds breakers from per-key options', () => {
    const registry = new BreakerRegistry({ breaker: (key) => ({ resetTimeout: key === 'slow' ? 30_000 : 1_000 }) });
    registry.get('slow').trip();
    registry.get('fast').trip();
    expect(registry.get('slow').retryAfterMs()).toBe(30_000);
    expect(registry.get('fast').retryAfterMs()).toBe(1_000);
    registry.close();
  });

  it('evicts the least recently used idle closed breaker when the cap is reached', () => {
    const registry = new BreakerRegistry({ maxBreakers: 3 });
    const evicted: string[] = [];
    registry.on('evict', ({ key, reason }) => evicted.push(`${key}:${reason}`));
    const a = registry.get('a');
    registry.get('b');
    registry.get('c');
    registry.get('a'); // a is now the most recent
    registry.get('d');
    expect(evicted).toEqual(['b:capacity']);
    expect([...registry].map(([key]) => key)).toEqual(['c', 'a', 'd']);
    expect(a.disposed).toBe(false);
    registry.close();
  });

  it('prefers keeping open breakers when evicting for room', () => {
    const registry = new BreakerRegistry({ maxBreakers: 2 });
    registry.get('open').trip();
    registry.get('closed');
    registry.get('new');
    expect(registry.peek('open')?.state).toBe('open');
    expect(registry.peek('closed')).toBeUndefined();
    expect(registry.stats()).toMatchObject({ size: 2, created: 3, evicted: { capacity: 1 } });
    registry.close();
  });

  it('never holds more than maxBreakers, whatever the keys', () => {
    const registry = new BreakerRegistry({ maxBreakers: 10 });
    for (let i = 0; i < 1_000; i++) registry.get(`tenant-${i}`).trip();
    expect(registry.size).toBe(10);
    registry.close();
  });

  it('evicts idle breakers, but not open ones nor ones with calls in flight', async () => {
    const registry = new BreakerRegistry({ idleTimeoutMs: 10_000, breaker: { timeout: false } });
    registry.get('idle');
    registry.get('open').trip();
    const busy = registry.get('busy');
    const pending = busy.execute(() => new Promise<never>(() => undefined)).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(6_000);
    registry.get('recent');
    await vi.advanceTimersByTimeAsync(9_000); // the sweep every 5 s runs at 15 s
    expect(registry.peek('idle')).toBeUndefined();
    expect(registry.peek('open')).toBeDefined();
    expect(registry.peek('busy')).toBeDefined();
    expect(registry.peek('recent')).toBeDefined();
    expect(registry.stats().evicted.idle).toBe(1);
    registry.close();
    await pending;
  });

  it('evicted breakers release their timers, whatever their state', async () => {
    const registry = new BreakerRegistry({ maxBreakers: 2, idleTimeoutMs: 10_000, breaker: { resetTimeout: 60_000 } });
    const first = registry.get('k0');
    first.trip();
    registry.get('k1').trip();
    const timers = vi.getTimerCount(); // sweeper, window rotation, two open periods
    for (let i = 2; i < 100; i++) registry.get(`k${i}`).trip();
    expect(vi.getTimerCount()).toBe(timers);
    expect(first.disposed).toBe(true);
    registry.delete('k98');
    registry.delete('k99');
    expect(vi.getTimerCount()).toBe(0);
    registry.close();
  });

  it('evicts an idle breaker that reopened only because no trial call came', async () => {
    const registry = new BreakerRegistry({
      idleTimeoutMs: 10_000,
      breaker: { resetTimeout: 3_000, halfOpenMaxDurationMs: 1_000 },
    });
    const reasons: string[] = [];
    registry.on('open', ({ reason }) => reasons.push(reason));
    registry.get('gone').trip();
    // open 3 s, half-open 1 s, open again for lack of trials: open at the sweep at 10 s
    await vi.advanceTimersByTimeAsync(9_999);
    expect(reasons).toEqual(['manual', 'halfOpenExpired', 'halfOpenExpired']);
    expect(registry.peek('gone')?.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(registry.peek('gone')).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    registry.close();
  });

  it('forwards state transitions with the key', async () => {
    const registry = new BreakerRegistry({ breaker: { volumeThreshold: 1, resetTimeout: 100 } });
    const events: string[] = [];
    registry.on('open', ({ key }) => events.push(`open:${key}`));
    registry.on('halfOpen', ({ key }) => events.push(`halfOpen:${key}`));
    await registry
      .get('upstream-1')
      .execute(boom)
      .catch(() => undefined);
    await vi.advanceTimersByTimeAsync(100);
    expect(events).toEqual(['open:upstream-1', 'halfOpen:upstream-1']);
    registry.close();
  });

  it('exports non-closed states and restores them on first use', async () => {
    const first = new BreakerRegistry({ breaker: { resetTimeout: 1_000 } });
    first.get('down').trip();
    first.get('fine');
    await vi.advanceTimersByTimeAsync(250);
    const saved = JSON.parse(JSON.stringify(first));
    first.close();
    expect(Object.keys(saved)).toEqual(['down']);
    const second = new BreakerRegistry({ breaker: { resetTimeout: 1_000 }, initialState: saved });
    expect(second.toJSON()).toMatchObject({ down: { state: 'open' } });
    const restored = second.get('down');
    expect(restored.state).toBe('open');
    expect(restored.retryAfterMs()).toBe(750);
    expect(second.get('fine').state).toBe('closed');
    second.close();
  });

  it('shares one bucket-rotation timer between breakers with the same window', () => {
    const registry = new BreakerRegistry();
    registry.get('a');
    const timers = vi.getTimerCount();
    for (let i = 0; i < 50; i++) registry.get(`k${i}`);
    expect(vi.getTimerCount()).toBe(timers);
    registry.close();
  });

  it('close() closes every breaker and leaves no timer; get() then throws', async () => {
    const registry = new BreakerRegistry();
    const a = registry.get('a');
    registry.get('b').trip();
    await a.execute(async () => 1);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    registry.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(a.disposed).toBe(true);
    expect(() => registry.get('c')).toThrow(expect.objectContaining({ code: 'ERR_BALLAST_BREAKER_DISPOSED' }));
    let error: unknown;
    try {
      registry.get('a');
    } catch (e) {
      error = e;
    }
    expect(isBreakerDisposedError(error)).toBe(true);
  });

  it('delete() evicts and closes one breaker', () => {
    const registry = new BreakerRegistry();
    const a = registry.get('a');
    expect(registry.delete('a')).toBe(true);
    expect(registry.delete('a')).toBe(false);
    expect(a.disposed).toBe(true);
    expect(registry.get('a')).not.toBe(a);
    registry.close();
  });

  it.each([
    [{ maxBreakers: 0 }, 'maxBreakers'],
    [{ idleTimeoutMs: -5 }, 'idleTimeoutMs'],
    [{ breaker: 3 }, 'breaker'],
  ])('rejects %j naming %s', (options, option) => {
    expectInvalidOption(() => new BreakerRegistry(options as never), option);
  });

  it('rejects an empty key', () => {
    const registry = new BreakerRegistry();
    expect(() => registry.get('')).toThrow(expect.objectContaining({ option: 'key' }));
    registry.close();
  });
});
